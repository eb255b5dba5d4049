"""API clients in the admin: the key is shown once at creation, Revoke refuses it from then on."""
import re

import pytest
from django.urls import reverse

from api.models import ApiClient
from tests.factories import make_account, make_application, make_staff

pytestmark = pytest.mark.django_db

ADD = reverse("admin:api_apiclient_add")
KEY = re.compile(r"om_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


def add_client(admin_client, account, name="erp"):
    response = admin_client.post(ADD, {"name": name, "accounts": [account.pk], "is_active": "on", "comments": ""})
    assert response.status_code == 200
    return response


def read(client, account, key):
    return client.get(f"/api/v1/accounts/{account.identifier}/token", HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_key_is_shown_once_after_creation_and_works(admin_client, client, account):
    page = add_client(admin_client, account).content.decode()
    [key] = KEY.findall(page)
    api_client = ApiClient.objects.get(name="erp")
    assert api_client.created_by == "admin"
    assert list(api_client.accounts.all()) == [account]
    assert read(client, account, key).status_code == 200
    change_page = admin_client.get(reverse("admin:api_apiclient_change", args=[api_client.pk])).content.decode()
    assert key not in change_page
    assert api_client.key_prefix in change_page
    assert not KEY.search(admin_client.get(reverse("admin:api_apiclient_changelist")).content.decode())


def test_revoke_action_refuses_the_key_from_then_on(admin_client, client, account):
    [key] = KEY.findall(add_client(admin_client, account).content.decode())
    api_client = ApiClient.objects.get(name="erp")
    admin_client.post(reverse("admin:api_apiclient_changelist"), {
        "action": "revoke", "_selected_action": [api_client.pk],
    })
    api_client.refresh_from_db()
    assert not api_client.is_active
    assert api_client.revoked_by == "admin"
    assert read(client, account, key).status_code == 401


def test_mailbox_operators_cannot_manage_api_clients(client):
    client.force_login(make_staff("operator", "Mailbox operators"))
    assert client.get(ADD).status_code == 403


def test_oauth_administrators_can(client, account):
    client.force_login(make_staff("boss", "OAuth administrators"))
    assert client.get(ADD).status_code == 200
