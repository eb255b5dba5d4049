"""The token API: GET /api/v1/accounts/<identifier>/token with an API client's key."""
import base64
import hashlib
import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Account, TokenEvent
from api.models import ApiClient
from tests.factories import make_account, make_application

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # api/lookup.py: SQL by hand


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


def create_client(name, *identifiers):
    out, err = StringIO(), StringIO()
    args = [arg for identifier in identifiers for arg in ("--account", identifier)]
    call_command("create_api_client", name, *args, stdout=out, stderr=err)
    return out.getvalue().strip()


@pytest.fixture
def key(account):
    return create_client("erp", account.identifier)


def get(client, identifier, key=None, **headers):
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.get(f"/api/v1/accounts/{identifier}/token", **headers)


def test_the_answer_has_the_token_its_expiry_email_scopes_and_xoauth2_string(client, account, key):
    response = get(client, account.identifier, key)
    assert response.status_code == 200
    body = response.json()
    account.refresh_from_db()
    assert body["access_token"] == account.access_token
    assert body["token_type"] == "Bearer"
    assert parse_datetime(body["expires_at"]) == account.access_token_expires_at
    assert body["email"] == account.email
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in body["scopes"]
    sasl = f"user={account.email}\x01auth=Bearer {account.access_token}\x01\x01"
    assert base64.b64decode(body["xoauth2"]).decode() == sasl
    assert response["Cache-Control"].startswith("max-age=0")


def test_each_read_is_an_event_naming_the_client(client, account, key):
    get(client, account.identifier, key)
    event = TokenEvent.objects.filter(account=account, kind=TokenEvent.Kind.READ).get()
    assert event.actor == "api:erp"
    assert event.code == "token.read" and "erp" in event.text
    assert ApiClient.objects.get(name="erp").last_used_at is not None


def test_a_token_expiring_within_the_minimum_validity_is_refreshed_first(client, account, key, idp):
    old = account.access_token
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=4))
    body = get(client, account.identifier, key).json()
    assert body["access_token"] != old
    assert idp.valid_access_token(body["access_token"])["email"] == account.email
    assert TokenEvent.objects.filter(account=account, kind=TokenEvent.Kind.REFRESH, actor="api:erp").exists()


def test_no_key_is_401(client, account):
    response = get(client, account.identifier)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("bad", ["nonsense", "om_0000_abc", "Basic dXNlcjpwYXNz"])
def test_a_bad_key_is_401(client, account, key, bad):
    assert get(client, account.identifier, bad).status_code == 401


def test_the_right_prefix_with_a_wrong_secret_is_401(client, account, key):
    tag, prefix, _secret = key.split("_", 2)
    assert get(client, account.identifier, f"{tag}_{prefix}_{'x' * 43}").status_code == 401


def test_an_account_the_key_may_not_read_is_403(client, account, key):
    other = make_account(account.application, identifier="sales", email="sales@contoso.com")
    response = get(client, other.identifier, key)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_no_such_account_is_the_same_403_as_an_account_the_key_may_not_read(client, account, key):
    make_account(account.application, identifier="sales", email="sales@contoso.com")
    missing, forbidden = get(client, "nobody", key), get(client, "sales", key)
    assert missing.status_code == forbidden.status_code == 403
    assert missing.json() == {"error": "forbidden", "message": forbidden.json()["message"].replace("sales", "nobody")}


def test_an_account_needing_reauthorisation_is_409_reauth_required(client, account, key, idp):
    idp.revoke(account.email)
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    response = get(client, account.identifier, key)
    assert response.status_code == 409
    assert response.json()["error"] == "reauth_required"
    assert "AADSTS50173" in response.json()["message"]


def test_an_account_never_initialised_is_409_not_initialized(client, idp):
    account = make_account(make_application(idp))
    key = create_client("crm", account.identifier)
    response = get(client, account.identifier, key)
    assert response.status_code == 409
    assert response.json()["error"] == "not_initialized"


def test_a_provider_failure_is_502(client, account, key, idp):
    idp.fail_next(10, status=503)
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    response = get(client, account.identifier, key)
    assert response.status_code == 502
    assert response.json()["error"] == "provider_error"


def test_only_get_is_allowed(client, account, key):
    response = client.post(f"/api/v1/accounts/{account.identifier}/token", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_the_key_is_stored_only_as_a_hash(account, key):
    api_client = ApiClient.objects.get(name="erp")
    assert api_client.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"om_{api_client.key_prefix}_")
    for value in ApiClient.objects.values().get():
        assert key != value
    assert list(api_client.accounts.all()) == [account]


def test_create_api_client_refuses_an_unknown_account(account):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        create_client("erp", account.identifier, "nobody")
    assert not ApiClient.objects.exists()


def test_neither_key_nor_token_reaches_a_log(client, account, key, caplog):
    caplog.set_level(logging.DEBUG)
    get(client, account.identifier, key)
    get(client, "nobody", key)
    get(client, account.identifier, key + "x")
    token = Account.objects.get(pk=account.pk).access_token
    secret = key.split("_", 2)[2]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert token not in record.getMessage()
