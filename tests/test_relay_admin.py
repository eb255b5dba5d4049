"""Relay clients in the admin (administrators only): the password is shown once at creation, Revoke
refuses it from then on; who an account may send as is the administrators' to say."""
import re

import pytest
from django.urls import reverse

from relay import services
from relay.models import RelayClient
from tests.factories import make_account, make_application, make_staff

pytestmark = pytest.mark.django_db

ADD = reverse("admin:relay_relayclient_add")
PASSWORD = re.compile(r'id="relay-password"[^>]*>([A-Za-z0-9]{24})<')


@pytest.fixture
def account(idp):
    return make_account(make_application(idp))


def add_client(client, account, **fields):
    data = {"name": "Scanner 2nd floor", "username": "", "account": account.pk, "networks": "192.168.10.0/24",
            "hourly_limit": "", "is_active": "on", "comments": "", **fields}
    return client.post(ADD, data)


def login(username, password, address="192.168.10.7"):
    return services.relay_client_authenticate(username=username, password=password, address=address)


def test_the_password_is_shown_once_after_creation_and_works(admin_client, account):
    response = add_client(admin_client, account)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    [password] = PASSWORD.findall(page)
    relay_client = RelayClient.objects.get(name="Scanner 2nd floor")
    assert relay_client.username == "scanner-2nd-floor" and relay_client.created_by == "admin"
    assert "scanner-2nd-floor" in page and account.email in page
    assert password not in relay_client.password_hash
    assert login("scanner-2nd-floor", password).client_id == relay_client.pk
    change_page = admin_client.get(reverse("admin:relay_relayclient_change", args=[relay_client.pk])).content.decode()
    assert password not in change_page
    assert password not in admin_client.get(reverse("admin:relay_relayclient_changelist")).content.decode()


def test_a_bad_network_or_username_is_refused_in_plain_words(admin_client, account):
    page = add_client(admin_client, account, networks="192.168.10.0/24\nprinters", username="scan ner").content
    assert "“printers” is not a network".encode() in page
    assert b"Use 1 to 63 letters, digits" in page
    assert not RelayClient.objects.exists()


def test_revoke_action_refuses_the_password_from_then_on(admin_client, account):
    [password] = PASSWORD.findall(add_client(admin_client, account).content.decode())
    relay_client = RelayClient.objects.get()
    admin_client.post(reverse("admin:relay_relayclient_changelist"), {
        "action": "revoke", "_selected_action": [relay_client.pk],
    })
    relay_client.refresh_from_db()
    assert not relay_client.is_active and relay_client.revoked_by == "admin"
    assert login(relay_client.username, password) is None


def test_oauth_administrators_manage_relay_clients_and_mailbox_operators_cannot(client, account):
    client.force_login(make_staff("boss", "OAuth administrators"))
    assert add_client(client, account).status_code == 200
    assert RelayClient.objects.count() == 1
    client.force_login(make_staff("operator", "Mailbox operators"))
    assert client.get(ADD).status_code == 403
    assert client.get(reverse("admin:relay_relayclient_changelist")).status_code == 403


def test_send_as_addresses_are_changed_by_administrators_only(client, account):
    url = reverse("admin:accounts_account_change", args=[account.pk])
    client.force_login(make_staff("boss", "OAuth administrators"))
    assert b'name="send_as_addresses"' in client.get(url).content
    client.force_login(make_staff("operator", "Mailbox operators"))
    page = client.get(url).content
    assert b'name="send_as_addresses"' not in page and b"send-as addresses" in page.lower()


def test_send_as_addresses_must_be_addresses(account):
    from django.core.exceptions import ValidationError

    account.send_as_addresses = "scans@contoso.com\nnot an address"
    with pytest.raises(ValidationError, match="“not” is not a valid e-mail address"):
        account.full_clean()
    account.send_as_addresses = "scans@contoso.com, reception@contoso.com"
    account.full_clean()
    assert account.sender_addresses == ["compta@contoso.com", "scans@contoso.com", "reception@contoso.com"]
