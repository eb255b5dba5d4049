"""OAUTHMAIL_HTTP_TIMEOUT bounds whole dialogues: an identity provider or a mail server that answers one
byte at a time (each byte well within any read timeout) is given up on after about the timeout, with
words that say it took too long. Times are scaled down: a 1-second timeout, a byte every 0.3 s, and
answers that would take a minute or more to trickle in."""
import json
import time
from datetime import timedelta

import pytest
from django.core.mail import send_mail
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from accounts.mail import OAuth2MailError
from accounts.models import Account, InitRequest
from alerts.models import Channel, Delivery
from providers.models import Application
from tests.factories import make_account, make_application, make_google_application, run_command
from tests.slowdrip import SlowServer, google_authority, http_answer, microsoft_authority

pytest.register_assert_rewrite("tests.fixtures_scale")
pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

from tests.fixtures_scale import make_world, wait_for  # noqa: E402

pytestmark = pytest.mark.django_db

TIMEOUT = 1
SLACK = 2  # seconds allowed beyond the timeout on a busy machine; the slow answers take a minute or more


@pytest.fixture(autouse=True)
def short_timeout(settings):
    settings.OAUTHMAIL_HTTP_TIMEOUT = TIMEOUT
    settings.OAUTHMAIL_RETRY_ATTEMPTS = 1


class Clock:
    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.monotonic() - self.started


def point_at(application, server):
    application.authority_url = server.url
    application.save()


# --- identity providers -------------------------------------------------------------------------


def test_show_token_gives_up_on_a_token_answer_that_trickles_in(idp, sign_in):
    account = sign_in(make_account(make_application(idp)))
    Account.objects.filter(pk=account.pk).update(access_token_expires_at=timezone.now())
    with microsoft_authority(idp.ca) as slow:
        point_at(account.application, slow)
        with Clock() as clock, pytest.raises(CommandError, match="took too long to answer"):
            run_command("show_token", account.identifier)
        [exchange] = slow.dripped()
    assert clock.seconds < TIMEOUT + SLACK
    assert exchange.form["grant_type"] == "refresh_token"
    account.refresh_from_db()
    assert account.status == Account.Status.FAILING and "took too long" in account.last_error


def test_init_token_gives_up_on_a_device_code_start_that_trickles_in(admin_client, idp):
    account = make_account(make_application(idp))
    with microsoft_authority(idp.ca) as slow:
        point_at(account.application, slow)
        with Clock() as clock:
            response = admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]),
                                         follow=True)
        assert [exchange.path for exchange in slow.dripped()] == ["/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"]
    assert clock.seconds < TIMEOUT + SLACK
    assert "took too long to answer" in response.content.decode()
    assert InitRequest.objects.get().status == InitRequest.Status.FAILED


def test_init_token_gives_up_on_a_poll_whose_answer_trickles_in(admin_client, idp):
    account = make_account(make_application(idp))
    admin_client.post(reverse("admin:accounts_account_init_token", args=[account.pk]))
    init_request = InitRequest.objects.get()
    idp.approve(init_request.user_code, account.email)
    InitRequest.objects.filter(pk=init_request.pk).update(next_poll_at=None)
    with microsoft_authority(idp.ca) as slow:
        point_at(account.application, slow)
        with Clock() as clock:
            result = admin_client.post(reverse("admin:accounts_account_init_status", args=[init_request.pk])).json()
        assert slow.dripped()[0].form["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    assert clock.seconds < TIMEOUT + SLACK
    assert result["status"] == "failed"
    assert "took too long" in InitRequest.objects.get().error


def test_google_browser_sign_in_gives_up_on_a_code_exchange_that_trickles_in(admin_client, idp):
    from tests.test_browser_sign_in import go_to_provider, provider_redirects_back

    account = make_account(make_google_application(idp), flow="authorization_code")
    callback = provider_redirects_back(go_to_provider(admin_client, account))
    with google_authority(idp.ca) as slow:
        point_at(account.application, slow)
        with Clock() as clock:
            page = admin_client.get(callback, follow=True).content.decode()
        assert slow.dripped()[0].form["grant_type"] == "authorization_code"
    assert clock.seconds < TIMEOUT + SLACK
    assert "took too long to answer" in page


@pytest.mark.postgres
def test_refresh_workers_each_give_up_on_their_own_slow_answer_and_no_other(shared_db, idp):
    """Eight worker threads, half of them held by a provider that trickles its answers: each slow
    request is cut off after the timeout, the others are not disturbed."""
    fast = make_world(shared_db, idp, count=4, prefix="fast")
    slow_world = make_world(shared_db, idp, count=4, prefix="slow")
    with microsoft_authority(idp.ca) as slow:
        Application.objects.using(shared_db.alias).filter(pk=slow_world.application.pk).update(
            authority_url=slow.url)
        env = shared_db.env(OAUTHMAIL_HTTP_TIMEOUT=TIMEOUT, OAUTHMAIL_RETRY_ATTEMPTS=1)
        with Clock() as clock:
            result = shared_db.run("refresh_tokens", "--workers", "8", "--json", env=env, check=False)
        assert len(slow.dripped()) == 4
    report = json.loads(result.stdout)
    assert report["summary"] == {"refreshed": 4, "failed": 4, "skipped": 0}
    assert {entry["account"] for entry in report["refreshed"]} == set(fast.identifiers)
    assert all("took too long" in entry["error"] for entry in report["failed"])
    assert clock.seconds < 4 + TIMEOUT + SLACK  # Python and Django start in about 2 s, then 1 s for everything


# --- mail servers -------------------------------------------------------------------------------

GREETINGS = {"imap": b"* OK [CAPABILITY IMAP4rev1] " + b"slow " * 40 + b"ready\r\n",
             "pop": b"+OK " + b"slow " * 40 + b"ready\r\n",
             "smtp": b"220 mail.example.com ESMTP " + b"slow " * 40 + b"ready\r\n"}


@pytest.fixture
def slow_mail_servers(idp):
    """IMAP over TLS, POP and SMTP before STARTTLS: each drips its greeting."""
    servers = {"imap": SlowServer(ca=idp.ca, greeting=GREETINGS["imap"]),
               "pop": SlowServer(greeting=GREETINGS["pop"]), "smtp": SlowServer(greeting=GREETINGS["smtp"])}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def slow_mail_account(idp, sign_in, slow_mail_servers):
    return sign_in(make_account(make_application(idp), **{
        "imap_host": "127.0.0.1", "imap_port": slow_mail_servers["imap"].port, "imap_security": "tls",
        "pop_host": "127.0.0.1", "pop_port": slow_mail_servers["pop"].port, "pop_security": "starttls",
        "smtp_host": "127.0.0.1", "smtp_port": slow_mail_servers["smtp"].port, "smtp_security": "starttls",
    }))


def test_test_connection_gives_up_on_greetings_that_trickle_in(admin_client, slow_mail_account, slow_mail_servers):
    url = reverse("admin:accounts_account_test_connection", args=[slow_mail_account.pk])
    with Clock() as clock:
        response = admin_client.post(url, {"imap": "on", "pop": "on", "smtp": "on", "send_to": "",
                                           "mechanism": "XOAUTH2"})
    [report] = response.context["reports"]
    assert clock.seconds < 3 * TIMEOUT + SLACK
    assert [(result.protocol, result.ok) for result in report.results] == [
        ("imap", False), ("pop", False), ("smtp", False)]
    for result in report.results:  # (poplib takes a greeting cut short for a whole one: it fails at STLS)
        assert f"took too long: the dialogue did not end within {TIMEOUT} seconds" in result.detail
    assert all(server.exchanges[0].closed for server in slow_mail_servers.values())


def test_the_mail_backend_gives_up_on_a_greeting_that_trickles_in(settings, slow_mail_account):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = slow_mail_account.identifier
    with Clock() as clock, pytest.raises(OAuth2MailError, match="took too long"):
        send_mail("Invoice", "Attached.", slow_mail_account.email, ["customer@example.com"])
    assert clock.seconds < TIMEOUT + SLACK


def test_the_mail_backend_fails_silently_on_a_slow_greeting_when_asked(settings, slow_mail_account):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = slow_mail_account.identifier
    with Clock() as clock:
        assert send_mail("Invoice", "Attached.", slow_mail_account.email, ["customer@example.com"],
                         fail_silently=True) == 0
    assert clock.seconds < TIMEOUT + SLACK



# --- alert webhooks -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["send_alerts", "refresh_tokens"])
def test_an_alert_webhook_that_trickles_its_answer_is_given_up_on_and_tried_again_later(idp, settings, command):
    """send_alerts, and refresh_tokens which sends the alerts after each run: neither waits for the answer."""
    settings.OAUTHMAIL_RETRY_ATTEMPTS = 3  # a request that ran out of time is not retried at once
    app = make_application(idp, secret="s3cret")
    Application.objects.filter(pk=app.pk).update(client_secret_expires_on=timezone.localdate() + timedelta(days=5))
    with SlowServer(ca=idp.ca, answer=http_answer({"ok": True})) as slow:
        channel = Channel(name="Teams", kind="webhook", url=f"{slow.url}/hooks/oauthmail")
        channel.secret = "hook-secret"
        channel.save()
        with Clock() as clock:
            if command == "send_alerts":
                with pytest.raises(SystemExit):  # exit status 1: a delivery failed
                    run_command(command)
            else:
                run_command(command)
        [exchange] = slow.dripped()
        wait_for(lambda: exchange.closed, timeout=5, what="the webhook's connection to be closed")
    assert clock.seconds < TIMEOUT + SLACK
    assert exchange.method == "POST" and exchange.closed - exchange.opened < TIMEOUT + SLACK
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)  # tried again at a later run
    assert f"took too long to answer: no complete answer within {TIMEOUT} seconds" in delivery.error_text
