"""Alerts: what triggers them, sent once until it changes, by e-mail and by signed webhook."""
import hashlib
import hmac
from datetime import timedelta

import pytest
import trustme
from django.utils import timezone

from accounts.models import Account, RefreshRun
from alerts.models import Alert, Channel, Delivery
from providers.models import Application
from tests.factories import make_account, make_application, make_google_application
from tests.factories import run_command as run
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def refresh_ran():
    """refresh_tokens ran a moment ago (its absence is an alert of its own)."""
    return RefreshRun.objects.create(finished_at=timezone.now(), duration=1)


@pytest.fixture
def email_channel():
    return Channel.objects.create(name="IT team", kind="email", email_to="it@contoso.com, oncall@contoso.com")


@pytest.fixture
def receiver(idp_server):
    receiver = WebhookReceiver(idp_server.ca).start()  # the tests trust the identity provider's CA
    yield receiver
    receiver.stop()


@pytest.fixture
def webhook_channel(receiver):
    channel = Channel(name="Teams", kind="webhook", url=receiver.url)
    channel.secret = "hook-secret"
    channel.save()
    return channel


@pytest.fixture
def active(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


def send():
    return run("send_alerts")[0]


def refresh_tokens():
    try:
        run("refresh_tokens")
    except SystemExit:  # exit status 1: an account failed, which these tests cause on purpose
        pass


def expire_soon(account):
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))


def secret_expiring_in(app, days):
    Application.objects.filter(pk=app.pk).update(client_secret_expires_on=timezone.localdate() + timedelta(days=days))


# --- what triggers an alert ------------------------------------------------------------------------


def test_a_revoked_account_is_emailed_once_with_advice_at_the_end_of_refresh_tokens(
        idp, active, email_channel, mailoutbox):
    idp.revoke(active.email)
    expire_soon(active)
    refresh_tokens()
    [message] = mailoutbox
    assert message.to == ["it@contoso.com", "oncall@contoso.com"]
    assert message.subject == f"[oauthmail] {active.identifier} must be signed in again (Init. Token)"
    assert "AADSTS50173" in message.body
    assert "password" in message.body and "What to do:" in message.body  # the advice for 50173
    refresh_tokens()
    send()
    assert len(mailoutbox) == 1  # nothing new: no alert storm at every run


def test_an_account_that_works_again_is_announced(idp, active, sign_in, email_channel, mailoutbox):
    idp.revoke(active.email)
    expire_soon(active)
    refresh_tokens()
    sign_in(active)  # Init. Token again
    send()
    assert [m.subject for m in mailoutbox][-1] == f"[oauthmail] {active.identifier} works again"
    send()
    assert len(mailoutbox) == 2


def test_a_failing_account_turning_reauth_required_is_alerted_again(idp, active, email_channel, mailoutbox):
    expire_soon(active)
    idp.fail_next(3, status=503)  # every attempt of this run
    refresh_tokens()
    assert "could not be refreshed" in mailoutbox[-1].subject and "HTTP 503" in mailoutbox[-1].body
    idp.revoke(active.email)
    expire_soon(active)
    refresh_tokens()
    assert "must be signed in again" in mailoutbox[-1].subject
    assert len(mailoutbox) == 2


@pytest.mark.parametrize("kind", ["client_secret", "certificate"])
def test_an_expiring_credential_is_announced_at_30_14_7_and_1_days_then_expired(idp, email_channel, mailoutbox, kind):
    app = make_application(idp, secret="s3cret")
    subjects = []
    for days in (25, 20, 10, 9, 6, 1, 0, -1, -3):
        if kind == "client_secret":
            secret_expiring_in(app, days)
        else:
            app.certificate_key = "key"
            app.certificate_expires_at = timezone.now() + timedelta(days=days)
            app.save()
        before = len(mailoutbox)
        send()
        subjects += [m.subject for m in mailoutbox[before:]]
    label = "client secret" if kind == "client_secret" else "certificate"
    assert subjects == [
        f"[oauthmail] contoso: the {label} expires in 25 days",
        f"[oauthmail] contoso: the {label} expires in 10 days",
        f"[oauthmail] contoso: the {label} expires in 6 days",
        f"[oauthmail] contoso: the {label} expires in 1 day",
        f"[oauthmail] contoso: the {label} has expired",
    ]


def test_a_renewed_secret_is_announced_anew_when_it_nears_its_own_expiry(idp, email_channel, mailoutbox):
    app = make_application(idp, secret="s3cret")
    secret_expiring_in(app, 3)
    send()
    secret_expiring_in(app, 400)  # a new secret
    send()
    secret_expiring_in(app, 29)
    send()
    assert [m.subject for m in mailoutbox] == [
        "[oauthmail] contoso: the client secret expires in 3 days",
        "[oauthmail] contoso: the client secret expires in 29 days",
    ]


def test_a_refresh_token_near_its_idle_limit_is_announced(idp, active, email_channel, mailoutbox):
    Account.objects.filter(pk=active.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=14))
    send()
    [message] = mailoutbox
    assert message.subject == f"[oauthmail] {active.identifier}: the refresh token ends soon unless it is used"


def test_a_google_testing_apps_token_nearing_7_days_is_announced(idp, email_channel, mailoutbox):
    app = make_google_application(idp, google_testing=True)
    account = make_account(app, flow="authorization_code", email="s@contoso.com", status="active")
    Account.objects.filter(pk=account.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=3))
    send()
    assert mailoutbox == []  # 4 days left of 7: not yet
    Account.objects.filter(pk=account.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=1))
    send()
    [message] = mailoutbox
    assert "Google app in Testing" in message.subject and "publish the app" in message.body


def test_refresh_tokens_overdue_is_announced_then_its_return(idp, active, email_channel, mailoutbox, settings):
    settings.OAUTHMAIL_REFRESH_OVERDUE_MINUTES = 30
    RefreshRun.objects.all().delete()
    send()
    assert mailoutbox[-1].subject == "[oauthmail] refresh_tokens has never run"
    refresh_tokens()
    assert mailoutbox[-1].subject == "[oauthmail] refresh_tokens runs again"
    RefreshRun.objects.update(finished_at=timezone.now() - timedelta(minutes=45))
    send()
    assert mailoutbox[-1].subject.startswith("[oauthmail] refresh_tokens has not run since ")
    assert len(mailoutbox) == 3


# --- channels --------------------------------------------------------------------------------------


def test_a_webhook_gets_signed_json_with_a_teams_and_slack_text(idp, active, webhook_channel, receiver):
    idp.revoke(active.email)
    expire_soon(active)
    refresh_tokens()
    [request] = receiver.requests
    expected = hmac.new(b"hook-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Oauthmail-Signature"] == f"sha256={expected}"
    payload = request.json
    assert payload["text"].startswith(f"{active.identifier} must be signed in again")
    [alert] = payload["alerts"]
    assert alert["kind"] == "account_status" and alert["state"] == "reauth_required"
    assert alert["facts"]["error"]["provider_code"] == "AADSTS50173"
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_webhook_answering_503_is_retried_with_backoff(idp, active, webhook_channel, receiver):
    receiver.answers = [503, 503]
    Account.objects.filter(pk=active.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=1))
    send()
    assert len(receiver.requests) == 3
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_webhook_that_keeps_failing_is_recorded_and_tried_again_at_a_later_run(
        idp, active, webhook_channel, receiver, admin_client):
    receiver.answers = [500, 500, 500]
    Account.objects.filter(pk=active.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=1))
    with pytest.raises(SystemExit):
        send()
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING and delivery.attempts == 1
    assert "HTTP 500" in delivery.error_text
    assert "HTTP 500" in admin_client.get("/admin/alerts/delivery/").content.decode()
    send()
    assert len(receiver.requests) == 3  # not yet: the next attempt is minutes away
    Delivery.objects.update(next_attempt_at=timezone.now())
    send()
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert len(receiver.requests) == 4


def test_a_webhook_whose_certificate_is_not_trusted_is_never_sent_to(idp, active):
    untrusted = WebhookReceiver(trustme.CA()).start()
    try:
        channel = Channel(name="evil", kind="webhook", url=untrusted.url)
        channel.secret = "s"
        channel.save()
        Account.objects.filter(pk=active.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=1))
        with pytest.raises(SystemExit):
            send()
        assert untrusted.requests == []
        assert "SSLError" in Delivery.objects.get().error_text
    finally:
        untrusted.stop()


def test_alerts_are_e_mailed_through_the_oauth2_backend(settings, mail_account, mail_sink):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = mail_account.identifier
    settings.DEFAULT_FROM_EMAIL = mail_account.email
    Channel.objects.create(name="IT", kind="email", email_to="it@contoso.com")
    Account.objects.filter(pk=mail_account.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=2))
    send()
    [message] = mail_sink.messages
    assert message.rcpt_tos == ["it@contoso.com"]
    assert b"the refresh token ends soon" in message.content
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_no_channel_still_records_the_alert(idp, active):
    Account.objects.filter(pk=active.pk).update(refresh_token_expires_at=timezone.now() + timedelta(days=1))
    send()
    assert Alert.objects.get().deliveries.count() == 0


def test_many_alerts_make_one_message_per_channel(idp, email_channel, mailoutbox):
    app = make_application(idp)
    for n in range(3):
        make_account(app, identifier=f"box{n}", email=f"box{n}@contoso.com", status="failing", last_error="down")
    send()
    [message] = mailoutbox
    assert message.subject == "[oauthmail] 3 alerts"
    assert all(f"box{n}" in message.body for n in range(3))
