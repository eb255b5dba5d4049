"""Which token consumers get: at least OAUTHMAIL_MIN_TOKEN_VALIDITY left, else refreshed first; and when
that refresh fails for a passing reason (the provider down, slow or busy), the stored token while it is
still valid, rather than nothing. A provider's refusal (the grant revoked) is never papered over."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.mail import send_mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application, run_command
from tests.slowdrip import microsoft_authority
from tests.test_api import create_client, get

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


def expires_in(account, **delta):
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now() + timedelta(**delta))
    account.refresh_from_db()
    return account.access_token


def refreshes(idp):
    return [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]


# --- the minimum validity -------------------------------------------------------------------------


def test_by_default_a_token_with_less_than_10_minutes_left_is_refreshed_first(account, idp):
    stored = expires_in(account, minutes=8)
    out, _err = run_command("show_token", account.identifier)
    assert out.strip() != stored and idp.valid_access_token(out.strip())
    assert len(refreshes(idp)) == 1


def test_the_minimum_validity_is_a_setting(account, idp, settings, client):
    settings.OAUTHMAIL_MIN_TOKEN_VALIDITY = 3
    stored = expires_in(account, minutes=4)
    assert run_command("show_token", account.identifier)[0].strip() == stored
    assert get(client, account.identifier, create_client("erp", account.identifier)).json()["access_token"] == stored
    settings.OAUTHMAIL_MIN_TOKEN_VALIDITY = 5
    assert run_command("show_token", account.identifier)[0].strip() != stored
    assert len(refreshes(idp)) == 1


def test_the_api_refreshes_a_token_with_less_than_the_minimum_validity(account, idp, client):
    stored = expires_in(account, minutes=8)
    body = get(client, account.identifier, create_client("erp", account.identifier)).json()
    assert body["access_token"] != stored and "warning" not in body


def test_cron_refreshes_ahead_of_the_minimum_validity_by_default(account, idp, settings):
    settings.OAUTHMAIL_MIN_TOKEN_VALIDITY = 20
    expires_in(account, minutes=22)
    out, err = run_command("refresh_tokens")
    assert out.startswith("1 refreshed") and not err


def test_cron_warns_when_told_to_refresh_later_than_consumers_would(account):
    out, err = run_command("refresh_tokens", "--within", "5")
    assert "--within is not more than OAUTHMAIL_MIN_TOKEN_VALIDITY (10 minutes)" in err


# --- a refresh that fails ------------------------------------------------------------------------


def test_show_token_hands_out_the_stored_token_when_the_provider_is_down(account, idp):
    stored = expires_in(account, minutes=4)
    idp.fail_next(10, status=503)
    out, err = StringIO(), StringIO()
    call_command("show_token", account.identifier, stdout=out, stderr=err)
    assert out.getvalue().strip() == stored
    assert "The last refresh failed" in err.getvalue() and "503" in err.getvalue()
    account.refresh_from_db()
    assert account.status == Account.Status.FAILING and "503" in account.last_error  # the refresh did fail
    kinds = list(account.events.order_by("id").values_list("kind", flat=True))
    assert kinds[-2:] == [TokenEvent.Kind.FAILURE, TokenEvent.Kind.FALLBACK]
    assert idp.valid_access_token(stored)


def test_the_api_hands_out_the_stored_token_with_a_warning_when_the_provider_is_down(account, idp, client):
    stored = expires_in(account, minutes=4)
    key = create_client("erp", account.identifier)
    idp.fail_next(10, status=429, retry_after=0)
    response = get(client, account.identifier, key)
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"] == stored and "429" in body["warning"]
    assert account.events.filter(kind=TokenEvent.Kind.FALLBACK, actor="api:erp").exists()


def test_a_provider_too_slow_to_answer_also_leaves_consumers_the_stored_token(account, idp, settings):
    settings.OAUTHMAIL_HTTP_TIMEOUT, settings.OAUTHMAIL_RETRY_ATTEMPTS = 1, 1
    stored = expires_in(account, minutes=4)
    with microsoft_authority(idp.ca) as slow:
        account.application.authority_url = slow.url
        account.application.save()
        out, err = run_command("show_token", account.identifier)
    assert out.strip() == stored and "took too long" in err


def test_the_mail_backend_sends_with_the_stored_token_when_the_provider_is_down(settings, mail_account, idp,
                                                                                mail_sink):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = mail_account.identifier
    expires_in(mail_account, minutes=4)
    idp.fail_next(10, status=503)
    assert send_mail("Invoice", "Attached.", mail_account.email, ["customer@example.com"]) == 1
    assert len(mail_sink.messages) == 1
    assert mail_account.events.filter(kind=TokenEvent.Kind.FALLBACK, actor="mail-backend").exists()


def test_a_token_about_to_expire_is_not_handed_out_when_its_refresh_fails(account, idp, client):
    expires_in(account, seconds=40)
    idp.fail_next(10, status=503)
    with pytest.raises(CommandError, match="503"):
        run_command("show_token", account.identifier)
    response = get(client, account.identifier, create_client("erp", account.identifier))
    assert response.status_code == 502 and response.json()["error"] == "provider_error"
    assert not account.events.filter(kind=TokenEvent.Kind.FALLBACK).exists()


def test_a_revoked_grant_never_hands_out_the_stored_token(account, idp, client):
    stored = expires_in(account, minutes=4)
    idp.revoke(account.email)
    with pytest.raises(CommandError, match="signed in again"):
        run_command("show_token", account.identifier)
    account.refresh_from_db()
    assert account.status == Account.Status.REAUTH_REQUIRED
    response = get(client, account.identifier, create_client("erp", account.identifier))
    assert response.status_code == 409 and response.json()["error"] == "reauth_required"
    assert stored not in response.content.decode()
    assert idp.valid_access_token(stored)  # it would still have worked: it is withheld on purpose


def test_after_the_provider_is_back_the_account_is_active_again(account, idp, settings):
    expires_in(account, minutes=4)
    idp.fail_next(settings.OAUTHMAIL_RETRY_ATTEMPTS, status=503)  # every attempt of one refresh
    assert "The last refresh failed" in run_command("show_token", account.identifier)[1]
    _out, err = run_command("show_token", account.identifier)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and not account.last_error and not err
