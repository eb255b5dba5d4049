"""The relay and the account's SMTP server: a device is answered from the server's own reply, the token
comes from token_get, and a refused token turns the account `reauth_required`."""
import smtplib
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

pytest.register_assert_rewrite("tests.relay_support")
pytest_plugins = ["tests.relay_support"]

from accounts.models import Account, TokenEvent  # noqa: E402
from tests.factories import make_account, make_application  # noqa: E402
from tests.relay_support import message, send  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def kinds(account):
    return list(account.events.filter(kind__startswith="relay").order_by("id").values_list("kind", flat=True))


def test_a_temporary_upstream_refusal_reaches_the_device_as_4xx_and_its_retry_goes_through(
    relay, relay_tls, device, mail_account, mail_sink
):
    mail_sink.fail_next(1, "451 4.3.0 Mail server temporarily rejected message")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451 and b"temporarily rejected" in refused.value.smtp_error
    assert mail_sink.messages == []
    assert send(relay, relay_tls, device, message(mail_account.email)) == {}  # the device retries
    assert len(mail_sink.messages) == 1
    assert kinds(mail_account) == [TokenEvent.Kind.RELAY_REFUSED, TokenEvent.Kind.RELAY_SENT]
    refused_event = mail_account.events.get(kind=TokenEvent.Kind.RELAY_REFUSED)
    assert "451" in refused_event.text and "temporarily rejected" in refused_event.text


def test_a_permanent_upstream_refusal_reaches_the_device_as_5xx_with_the_servers_words(
    relay, relay_tls, device, mail_account, mail_sink
):
    mail_sink.refuse_senders.add(mail_account.email)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 550
    assert b"Client does not have permissions to send as this sender" in refused.value.smtp_error
    assert kinds(mail_account) == [TokenEvent.Kind.RELAY_REFUSED]


def test_a_revoked_grant_is_a_clear_temporary_error_and_the_account_turns_reauth_required(
    relay, relay_tls, device, mail_account, mail_sink, idp
):
    idp.revoke(mail_account.email, access_tokens=True)  # the user's sessions are revoked at the provider
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451
    assert b"no valid token" in refused.value.smtp_error and b"signed in again" in refused.value.smtp_error
    mail_account.refresh_from_db()
    assert mail_account.status == Account.Status.REAUTH_REQUIRED
    assert mail_sink.messages == []
    with pytest.raises(smtplib.SMTPDataError, match="Init. Token"):  # and so on, without asking the provider
        send(relay, relay_tls, device, message(mail_account.email))


def test_an_expiring_token_is_refreshed_first_and_a_revoked_refresh_token_says_so(
    relay, relay_tls, device, mail_account, mail_sink, idp
):
    Account.objects.filter(pk=mail_account.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    assert send(relay, relay_tls, device, message(mail_account.email)) == {}  # refreshed, then sent
    assert mail_account.events.filter(kind=TokenEvent.Kind.REFRESH, actor="smtp-relay").count() == 1
    Account.objects.filter(pk=mail_account.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    idp.revoke(mail_account.email)
    relay.relay.upstream._idle.clear()  # a new login (a kept connection would still be logged in)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451
    mail_account.refresh_from_db()
    assert mail_account.status == Account.Status.REAUTH_REQUIRED
    assert len(mail_sink.messages) == 1


def test_fifty_devices_sending_at_once_all_get_through_with_at_most_three_upstream_logins(
    relay, relay_tls, mail_account, make_device, mail_sink
):
    devices = [make_device(mail_account, name=f"Printer {n:02d}") for n in range(50)]
    results, start = {}, threading.Barrier(50)

    def run(device):
        start.wait()
        try:
            results[device.username] = send(relay, relay_tls, device, message(mail_account.email,
                                                                              subject=device.username))
        except (smtplib.SMTPException, OSError) as error:
            results[device.username] = error

    threads = [threading.Thread(target=run, args=(device,)) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert list(results.values()) == [{}] * 50
    assert sorted(m.content.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for m in mail_sink.messages) == sorted(
        d.username for d in devices)
    assert relay.stats["logins"] <= 3  # Exchange Online's limit per mailbox; the others waited their turn
    assert mail_account.events.filter(kind=TokenEvent.Kind.RELAY_SENT).count() == 50


def test_a_logged_in_upstream_connection_is_used_again_for_the_next_message(
    relay, relay_tls, device, mail_account, mail_sink
):
    for _ in range(3):
        send(relay, relay_tls, device, message(mail_account.email))
    assert len(mail_sink.messages) == 3
    assert relay.stats["logins"] == 1 and relay.stats["reused"] == 2


def test_an_unreachable_upstream_is_a_temporary_error(relay, relay_tls, device, mail_account):
    from tests.dovecot import free_port

    Account.objects.filter(pk=mail_account.pk).update(smtp_port=free_port())
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451 and b"Could not log in to 127.0.0.1" in refused.value.smtp_error


def test_an_upstream_that_never_answers_is_given_up_after_the_timeout(
    start_relay, relay_tls, device, mail_account, scripted_upstream
):
    relay = start_relay(upstream_timeout=1.0)
    Account.objects.filter(pk=mail_account.pk).update(**scripted_upstream.account_fields())
    scripted_upstream.hang = True
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451 and b"No answer from 127.0.0.1" in refused.value.smtp_error
    assert mail_account.events.get(kind=TokenEvent.Kind.RELAY_REFUSED)


def test_an_app_only_account_sends_with_its_client_credentials_token(
    relay, relay_tls, idp, make_device, scripted_upstream
):
    application = make_application(idp, identifier="apponly", secret="app-secret")
    account = make_account(application, identifier="invoices", email="invoices@contoso.com",
                           flow="client_credentials", **scripted_upstream.account_fields())
    device = make_device(account, name="ERP")
    assert send(relay, relay_tls, device, message(account.email)) == {}
    assert scripted_upstream.logins == [("invoices@contoso.com", True)]
    assert [m.mail_from for m in scripted_upstream.messages] == ["invoices@contoso.com"]
    assert idp.token_requests[-1]["grant_type"] == "client_credentials"
