"""Registering applications and accounts in the admin: validation, write-only secret, who/when."""
import uuid

import pytest
from django.urls import reverse

from accounts.models import Account
from oauthmail.validators import FORBIDDEN_IDENTIFIER_CHARACTERS
from providers.models import Application

pytestmark = pytest.mark.django_db

ADD_APPLICATION = reverse("admin:providers_application_add")
ADD_ACCOUNT = reverse("admin:accounts_account_add")


def application_form(**overrides):
    data = {
        "identifier": "contoso", "name": "Contoso", "provider": "microsoft", "tenant": "contoso.onmicrosoft.com",
        "client_id": str(uuid.uuid4()), "new_client_secret": "", "client_secret_expires_on": "",
        "authority_url": "", "scopes": "", "comments": "",
    }
    data.update(overrides)
    return data


def account_form(application, **overrides):
    data = {"application": application.pk, "identifier": "sales", "name": "Sales", "email": "sales@contoso.com",
            "flow": "device_code", "comments": ""}
    data.update(overrides)
    return data


def errors_of(response):
    return response.context["adminform"].form.errors


@pytest.mark.parametrize("char", list(FORBIDDEN_IDENTIFIER_CHARACTERS))
def test_application_identifier_refuses_each_forbidden_character_by_name(admin_client, char):
    response = admin_client.post(ADD_APPLICATION, application_form(identifier=f"con{char}toso"))
    assert response.status_code == 200
    message = " ".join(errors_of(response)["identifier"])
    assert ("a space" if char == " " else f"“{char}”") in message
    assert not Application.objects.exists()


@pytest.mark.parametrize("char", list(FORBIDDEN_IDENTIFIER_CHARACTERS))
def test_account_identifier_refuses_each_forbidden_character_by_name(admin_client, char):
    app = Application.objects.create(identifier="contoso", name="C", tenant="common", client_id=str(uuid.uuid4()))
    response = admin_client.post(ADD_ACCOUNT, account_form(app, identifier=f"sa{char}les"))
    assert response.status_code == 200
    assert ("a space" if char == " " else f"“{char}”") in " ".join(errors_of(response)["identifier"])
    assert not Account.objects.exists()


@pytest.mark.parametrize("tenant", ["contoso", "not a tenant", "common2", "1234-5678", "https://contoso.com"])
def test_bad_tenant_is_refused(admin_client, tenant):
    response = admin_client.post(ADD_APPLICATION, application_form(tenant=tenant))
    assert "tenant" in errors_of(response)


@pytest.mark.parametrize(
    "tenant", ["common", "organizations", "consumers", "contoso.onmicrosoft.com", str(uuid.uuid4())]
)
def test_good_tenants_are_accepted(admin_client, tenant):
    response = admin_client.post(ADD_APPLICATION, application_form(tenant=tenant))
    assert response.status_code == 302
    assert Application.objects.get().tenant == tenant


def test_microsoft_client_id_must_be_a_guid(admin_client):
    response = admin_client.post(ADD_APPLICATION, application_form(client_id="my-app"))
    assert "client_id" in errors_of(response)


def test_authority_must_be_https(admin_client):
    response = admin_client.post(ADD_APPLICATION, application_form(authority_url="http://login.example.com"))
    assert "authority_url" in errors_of(response)


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "x@@contoso.com", ""])
def test_account_email_is_validated(admin_client, email):
    app = Application.objects.create(identifier="contoso", name="C", tenant="common", client_id=str(uuid.uuid4()))
    response = admin_client.post(ADD_ACCOUNT, account_form(app, email=email))
    assert "email" in errors_of(response)


def test_identifier_is_read_only_after_creation(admin_client):
    admin_client.post(ADD_APPLICATION, application_form())
    app = Application.objects.get()
    change = reverse("admin:providers_application_change", args=[app.pk])
    admin_client.post(change, application_form(identifier="renamed", name="Renamed"))
    app.refresh_from_db()
    assert (app.identifier, app.name) == ("contoso", "Renamed")


def test_client_secret_is_write_only_and_kept_when_left_blank(admin_client):
    admin_client.post(ADD_APPLICATION, application_form(new_client_secret="Sup3r~Secret.Value"))
    app = Application.objects.get()
    assert app.client_secret == "Sup3r~Secret.Value"
    change = reverse("admin:providers_application_change", args=[app.pk])
    page = admin_client.get(change).content.decode()
    assert "Sup3r~Secret.Value" not in page
    admin_client.post(change, application_form(name="Renamed"))
    app.refresh_from_db()
    assert app.client_secret == "Sup3r~Secret.Value"


def test_client_secret_can_be_removed(admin_client):
    admin_client.post(ADD_APPLICATION, application_form(new_client_secret="s3cret"))
    app = Application.objects.get()
    admin_client.post(reverse("admin:providers_application_change", args=[app.pk]),
                      application_form(clear_client_secret="on"))
    app.refresh_from_db()
    assert not app.has_client_secret


def test_admin_shows_days_left_on_the_client_secret(admin_client):
    import datetime

    expiry = datetime.date.today() + datetime.timedelta(days=40)
    admin_client.post(ADD_APPLICATION, application_form(new_client_secret="s", client_secret_expires_on=expiry))
    page = admin_client.get(reverse("admin:providers_application_changelist")).content.decode()
    assert "expires in 40 days" in page


def test_who_and_when_are_recorded(admin_client, admin_user):
    admin_client.post(ADD_APPLICATION, application_form())
    app = Application.objects.get()
    assert app.created_by == admin_user and app.updated_by == admin_user and app.created_at


def test_application_in_use_cannot_be_deleted(admin_client):
    app = Application.objects.create(identifier="contoso", name="C", tenant="common", client_id=str(uuid.uuid4()))
    admin_client.post(ADD_ACCOUNT, account_form(app))
    response = admin_client.post(reverse("admin:providers_application_delete", args=[app.pk]), {"post": "yes"})
    assert Application.objects.filter(pk=app.pk).exists()
    assert "protected" in response.content.decode().lower()


def test_scopes_default_to_the_provider_and_are_shown(admin_client):
    admin_client.post(ADD_APPLICATION, application_form())
    app = Application.objects.get()
    assert app.delegated_scopes() == [
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
    ]
    page = admin_client.get(reverse("admin:providers_application_change", args=[app.pk])).content.decode()
    assert "https://outlook.office.com/SMTP.Send" in page and "https://outlook.office365.com/.default" in page
