"""init_token, refresh_tokens and show_token, driven as a terminal user and cron drive them."""
import base64
import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts import services
from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application
from tests.factories import run_command as run

pytestmark = pytest.mark.django_db


def approve_when_shown(idp, email, *, action="approve"):
    """Play the user: wait for the device code to appear, then sign in (or decline)."""

    def user():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            codes = idp.pending_user_codes()
            if codes:
                getattr(idp, action)(*([codes[0], email] if action == "approve" else [codes[0]]))
                return
            time.sleep(0.05)

    thread = threading.Thread(target=user, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def app(idp):
    return make_application(idp)


@pytest.fixture
def active(app, sign_in):
    """An account initialised by a real device-code sign-in: the sign_in fixture's, which does not wait out the
    provider's polling interval as init_token must (its own tests, below, do)."""
    return sign_in(make_account(app))


# --- init_token --------------------------------------------------------------------------------


def test_init_token_prints_the_sign_in_message_and_waits_for_it(idp, app):
    account = make_account(app)
    approve_when_shown(idp, account.email)
    out, _ = run("init_token", account.identifier)
    assert f"{idp.url}/devicelogin" in out and "is initialised" in out
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and account.refresh_token


def test_init_token_fails_clearly_when_the_user_declines(idp, app):
    account = make_account(app)
    approve_when_shown(idp, account.email, action="decline")
    with pytest.raises(CommandError, match="declined.*AADSTS70000"):
        run("init_token", account.identifier)


def test_init_token_gives_a_client_credentials_account_its_token_without_waiting(idp):
    account = make_account(make_application(idp, secret="s3cret"), flow="client_credentials")
    started = time.monotonic()
    run("init_token", account.identifier)
    assert time.monotonic() - started < 5
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE


def test_init_token_for_an_unknown_account_says_so():
    with pytest.raises(CommandError, match="No account"):
        run("init_token", "nobody")


# --- refresh_tokens ----------------------------------------------------------------------------


def expire_soon(account, minutes=5):
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=minutes))


def test_refresh_tokens_refreshes_a_due_account_and_saves_the_rotated_refresh_token(idp, active):
    old_refresh = active.refresh_token
    expire_soon(active)
    out, _ = run("refresh_tokens")
    assert "1 refreshed, 0 failed" in out
    active.refresh_from_db()
    assert active.refresh_token != old_refresh
    assert active.access_token_expires_at > timezone.now() + timedelta(minutes=50)
    assert active.last_refreshed_at is not None
    assert active.events.filter(kind=TokenEvent.Kind.REFRESH, actor="cron").exists()
    assert idp.refresh_token_reuse == 0


def test_refresh_tokens_leaves_an_account_that_is_not_due(idp, active):
    out, _ = run("refresh_tokens", "--within", "15")
    assert "0 refreshed" in out
    assert not [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]


def test_refresh_tokens_keeps_an_unused_refresh_token_alive_after_7_days(idp, active):
    Account.objects.filter(pk=active.pk).update(token_initialized_at=timezone.now() - timedelta(days=8))
    out, _ = run("refresh_tokens")
    assert "1 refreshed" in out


def test_invalid_grant_marks_the_account_reauth_required_with_the_code(idp, active):
    idp.revoke(active.email)
    expire_soon(active)
    with pytest.raises(SystemExit) as exit_:
        out, err = run("refresh_tokens")
    assert exit_.value.code == 1
    active.refresh_from_db()
    assert active.status == Account.Status.REAUTH_REQUIRED
    assert "AADSTS50173" in active.last_error
    assert active.events.filter(kind=TokenEvent.Kind.REAUTH_REQUIRED).exists()


def test_a_5xx_is_retried_then_succeeds(idp, active):
    expire_soon(active)
    idp.fail_next(1, status=503)
    out, _ = run("refresh_tokens")
    assert "1 refreshed, 0 failed" in out
    active.refresh_from_db()
    assert active.status == Account.Status.ACTIVE


def test_persistent_5xx_marks_the_account_failing_and_exits_non_zero(idp, active, capsys):
    expire_soon(active)
    idp.fail_next(10, status=503)
    with pytest.raises(SystemExit):
        run("refresh_tokens")
    active.refresh_from_db()
    assert active.status == Account.Status.FAILING and "503" in active.last_error


def test_retry_after_is_honoured(idp, active, settings):
    expire_soon(active)
    idp.fail_next(1, status=429, retry_after=1)
    started = time.monotonic()
    run("refresh_tokens")
    assert time.monotonic() - started >= 1


def test_refresh_tokens_json_report(idp, active):
    expire_soon(active)
    idp.revoke(active.email)
    with pytest.raises(SystemExit):
        call_command("refresh_tokens", "--json", stdout=(out := __import__("io").StringIO()))
    report = json.loads(out.getvalue())
    assert report["summary"] == {"refreshed": 0, "failed": 1, "skipped": 0}
    assert report["failed"][0]["account"] == active.identifier
    assert report["failed"][0]["status"] == "reauth_required"


def test_refresh_tokens_skips_an_account_another_process_holds(idp, active):
    from accounts.claims import try_claim

    expire_soon(active)
    assert try_claim(active.pk)
    out, _ = run("refresh_tokens")
    assert "1 skipped" in out
    assert not [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]


def test_refresh_tokens_renews_an_app_only_token(idp):
    account = make_account(make_application(idp, secret="s"), flow="client_credentials")
    services.account_init_start(account=account, actor="test")
    expire_soon(account)
    out, _ = run("refresh_tokens")
    assert "1 refreshed" in out


# --- show_token --------------------------------------------------------------------------------


def test_show_token_prints_the_current_token_without_refreshing(idp, active):
    out, _ = run("show_token", active.identifier)
    assert out.strip() == active.access_token
    assert idp.valid_access_token(out.strip())["email"] == active.email
    assert not [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]


def test_show_token_refreshes_a_token_expiring_within_the_minimum_validity(idp, active):
    expire_soon(active, minutes=4)
    out, _ = run("show_token", active.identifier)
    assert out.strip() != active.access_token
    assert idp.valid_access_token(out.strip())


def test_show_token_xoauth2_prints_the_sasl_string(idp, active):
    out, _ = run("show_token", active.identifier, "--xoauth2")
    decoded = base64.b64decode(out.strip()).decode()
    assert decoded == f"user={active.email}\x01auth=Bearer {active.access_token}\x01\x01"


def test_show_token_for_an_account_never_initialised_fails_clearly(app):
    account = make_account(app)
    with pytest.raises(CommandError, match="Init. Token"):
        run("show_token", account.identifier)


def test_show_token_for_a_revoked_account_fails_clearly(idp, active):
    idp.revoke(active.email)
    expire_soon(active, minutes=1)
    with pytest.raises(CommandError, match="signed in again"):
        run("show_token", active.identifier)
