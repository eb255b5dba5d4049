"""Administrators do everything; operators manage accounts and Init. Token but not applications."""
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Account
from tests.factories import make_account, make_application, make_staff, restore_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    client.force_login(make_staff("olivia", "Mailbox operators"))
    return client


@pytest.fixture
def administrator_client(client):
    client.force_login(make_staff("adam", "OAuth administrators"))
    return client


def test_operator_can_add_an_account(operator_client, idp):
    app = make_application(idp)
    response = operator_client.post(reverse("admin:accounts_account_add"), {
        "application": app.pk, "identifier": "support", "name": "Support", "email": "support@contoso.com",
        "flow": "device_code", "verify_certificate": "on",
    })
    assert response.status_code == 302
    assert Account.objects.filter(identifier="support").exists()


def test_operator_can_init_a_token(operator_client, idp):
    account = make_account(make_application(idp, secret="s3cret-value"), flow="client_credentials")
    operator_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


def test_operator_cannot_change_an_application_or_its_secret(operator_client, idp):
    app = make_application(idp, secret="s3cret-value")
    url = reverse("admin:providers_application_change", args=[app.pk])
    page = operator_client.get(url).content.decode()
    assert "new_client_secret" not in page and "s3cret-value" not in page
    response = operator_client.post(url, {"name": "hijacked", "new_client_secret": "mine"})
    assert response.status_code == 403
    app.refresh_from_db()
    assert app.name != "hijacked" and app.client_secret == "s3cret-value"


def test_operator_cannot_add_an_application(operator_client):
    assert operator_client.get(reverse("admin:providers_application_add")).status_code == 403


def test_staff_without_the_permission_cannot_init_a_token(client, idp):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user("vic", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_account"))
    client.force_login(viewer)
    account = make_account(make_application(idp, secret="s"), flow="client_credentials")
    response = client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.status == Account.Status.NEW


def test_administrator_can_change_an_application_secret(administrator_client, idp):
    app = make_application(idp, secret="old")
    url = reverse("admin:providers_application_change", args=[app.pk])
    response = administrator_client.post(url, {
        "name": app.name, "provider": "microsoft", "tenant": app.tenant, "client_id": app.client_id,
        "new_client_secret": "new-secret", "authority_url": app.authority_url,
    })
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.client_secret == "new-secret"


def role_permissions():
    return {group.name: sorted(group.permissions.values_list("content_type__app_label", "codename"))
            for group in Group.objects.all()}


def test_make_staff_writes_the_roles_again_after_a_transactional_test_emptied_them():
    """Browser and multi-process tests end by emptying every table, the migrations' groups too."""
    migrated = role_permissions()
    Group.objects.all().delete()
    make_staff("olivia", "Mailbox operators")
    assert role_permissions() == migrated
    restore_roles()  # and again changes nothing
    assert role_permissions() == migrated
