"""The SMTP relay as a device sees it (Python's smtplib): TLS, logging in, what it may send, and that the
message reaches the account's SMTP server (the test Dovecot's submission, XOAUTH2 checked at the test
identity provider)."""
import email.policy
import smtplib
import ssl
import time

import pytest

pytest.register_assert_rewrite("tests.relay_support")
pytest_plugins = ["tests.relay_support"]

from accounts.models import TokenEvent  # noqa: E402
from relay.models import RelayClient  # noqa: E402
from tests.relay_support import message, send, smtp_session  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def events(account, kind):
    return [event.text for event in account.events.filter(kind=kind)]


def test_a_printer_sends_over_starttls_and_the_message_reaches_the_accounts_server(
    relay, relay_tls, device, mail_account, mail_sink
):
    refused = send(relay, relay_tls, device, message(mail_account.email, to="customer@example.com"))
    assert refused == {}
    [received] = mail_sink.messages
    assert received.mail_from == mail_account.email
    assert received.rcpt_tos == ["customer@example.com"]
    assert b"Subject: Scan 0042" in received.content and b"Your scan is attached." in received.content
    [outcome] = events(mail_account, TokenEvent.Kind.RELAY_SENT)
    assert "Scanner 2nd floor" in outcome and "<compta@contoso.com> to <customer@example.com>" in outcome
    assert "250" in outcome and "bytes" in outcome and "Your scan" not in outcome  # never the content
    device.client.refresh_from_db()
    assert device.client.last_used_at is not None and device.client.last_used_from == "127.0.0.1"


def test_the_message_arrives_byte_for_byte_with_its_dot_lines(relay, relay_tls, device, mail_account, mail_sink):
    body = "Regards.\n.hidden line\n..two dots\n.\nend\n" + ("x" * 70 + "\n") * 4000
    mail = message(mail_account.email, body=body)
    send(relay, relay_tls, device, mail)
    [received] = mail_sink.messages
    assert received.content.replace(b"\r\n", b"\n").endswith(body.encode())


def test_implicit_tls_listener(relay, relay_tls, device, mail_account, mail_sink):
    assert send(relay, relay_tls, device, message(mail_account.email), implicit=True) == {}
    assert len(mail_sink.messages) == 1


def test_ehlo_offers_starttls_and_size_and_login_only_once_tls_is_on(relay, relay_tls, settings):
    with smtplib.SMTP("127.0.0.1", relay.starttls_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        assert int(client.esmtp_features["size"]) == 35 * 1024 * 1024
        code, words = client.docmd("AUTH", "PLAIN AHVzZXIAcGFzc3dvcmQ=")
        assert code == 538  # encryption required
        client.starttls(context=relay_tls.client_context())
        client.ehlo()
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_a_device_that_offers_only_tls_1_1_is_refused_and_the_journal_says_why(relay, relay_tls, caplog):
    old_device = relay_tls.client_context()
    old_device.minimum_version, old_device.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    old_device.set_ciphers("DEFAULT:@SECLEVEL=0")  # what this machine's OpenSSL would refuse as a client
    client = smtplib.SMTP("127.0.0.1", relay.starttls_port, timeout=10)
    try:
        with pytest.raises(ssl.SSLError, match="EOF occurred"):  # the relay hangs up in the handshake
            client.starttls(context=old_device)
    finally:
        client.close()
    with pytest.raises(ssl.SSLError, match="EOF occurred"):  # implicit TLS: the same
        smtplib.SMTP_SSL("127.0.0.1", relay.tls_port, timeout=10, context=old_device)
    deadline = time.monotonic() + 10
    while "STARTTLS with 127.0.0.1 failed" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.02)
    [line] = [record.getMessage() for record in caplog.records if "STARTTLS" in record.getMessage()]
    assert "UNSUPPORTED_PROTOCOL" in line and "TLS 1.2 or later" in line and "needs newer firmware" in line
    assert not any(record.exc_info for record in caplog.records)  # one line, not a traceback


def test_auth_login_works_as_well_as_auth_plain(relay, relay_tls, device, mail_account, mail_sink):
    with smtp_session(relay, relay_tls) as client:
        client.ehlo()
        client.user, client.password = device.username, device.password
        code, _words = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235
        client.send_message(message(mail_account.email))
    assert len(mail_sink.messages) == 1


def test_mail_before_logging_in_is_refused(relay, relay_tls, mail_account):
    with smtp_session(relay, relay_tls) as client:
        client.ehlo()
        code, words = client.mail(mail_account.email)
        assert (code, words) == (530, b"5.7.0 Authentication required")


def test_plaintext_login_only_from_a_listed_network(start_relay, device, mail_account, mail_sink):
    import ipaddress

    relay = start_relay(plaintext_networks=[ipaddress.ip_network("127.0.0.1/32")])
    with smtplib.SMTP("127.0.0.1", relay.starttls_port, timeout=10) as client:
        client.login(device.username, device.password)
        client.send_message(message(mail_account.email))
    assert len(mail_sink.messages) == 1
    with smtplib.SMTP("127.0.0.1", relay.starttls_port, timeout=10, source_address=("127.0.0.2", 0)) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "LOGIN")[0] == 538


def login_reply(relay, relay_tls, username, password, source="127.0.0.1"):
    """One AUTH PLAIN (smtplib's login() would try LOGIN after it: two failures)."""
    with smtp_session(relay, relay_tls, source=source) as client:
        client.ehlo()
        client.user, client.password = username, password
        try:
            client.auth("PLAIN", client.auth_plain)
        except smtplib.SMTPAuthenticationError as error:
            return error.smtp_code, error.smtp_error
        return 235, b""


def test_wrong_password_unknown_user_revoked_client_and_wrong_network_all_get_the_same_535(
    relay, relay_tls, mail_account, make_device
):
    device = make_device(mail_account)
    office = make_device(mail_account, name="Office printer", networks="127.0.0.5/32")
    revoked = make_device(mail_account, name="Old scanner")
    RelayClient.objects.filter(pk=revoked.client.pk).update(is_active=False)
    replies = {
        login_reply(relay, relay_tls, device.username, device.password + "x", source="127.0.0.11"),
        login_reply(relay, relay_tls, "nobody", device.password, source="127.0.0.12"),
        login_reply(relay, relay_tls, revoked.username, revoked.password, source="127.0.0.13"),
        login_reply(relay, relay_tls, office.username, office.password, source="127.0.0.14"),
    }
    assert replies == {(535, b"5.7.8 Authentication credentials invalid")}
    assert login_reply(relay, relay_tls, office.username, office.password, source="127.0.0.5") == (235, b"")
    assert login_reply(relay, relay_tls, device.username, device.password, source="127.0.0.11") == (235, b"")


def test_repeated_failures_from_one_address_are_answered_ever_more_slowly(
    start_relay, relay_tls, device
):
    relay = start_relay(failure_delay=0.2)
    took = []
    for _attempt in range(4):
        started = time.monotonic()
        assert login_reply(relay, relay_tls, device.username, "wrong", source="127.0.0.21")[0] == 535
        took.append(time.monotonic() - started)
    assert took[3] >= 1.6 > took[0]  # 0.2, 0.4, 0.8, 1.6 s
    started = time.monotonic()  # another address is not slowed down, nor a correct login
    assert login_reply(relay, relay_tls, device.username, "wrong", source="127.0.0.22")[0] == 535
    assert login_reply(relay, relay_tls, device.username, device.password, source="127.0.0.21")[0] == 235
    assert time.monotonic() - started < 1.2  # 0.2 s of delay, the rest is two TLS sessions


def test_three_failed_logins_end_the_connection(relay, relay_tls, device):
    with smtp_session(relay, relay_tls) as client:
        client.ehlo()
        client.user, client.password = device.username, "wrong"
        for _attempt in range(3):
            with pytest.raises(smtplib.SMTPAuthenticationError, match="5.7.8 Authentication credentials invalid"):
                client.auth("PLAIN", client.auth_plain)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()


def test_a_forged_envelope_sender_is_refused_naming_the_allowed_address(
    relay, relay_tls, device, mail_account, mail_sink
):
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(relay, relay_tls, device, message("ceo@contoso.com"))
    assert refused.value.smtp_code == 550
    assert b"<ceo@contoso.com> is not allowed" in refused.value.smtp_error
    assert b"send as compta@contoso.com" in refused.value.smtp_error
    assert mail_sink.messages == []
    [outcome] = events(mail_account, TokenEvent.Kind.RELAY_REFUSED)
    assert "<ceo@contoso.com>" in outcome and "550 5.7.1" in outcome


def test_a_forged_from_header_is_refused(relay, relay_tls, device, mail_account, mail_sink):
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay, relay_tls, device, message('"The CEO" <ceo@contoso.com>'), from_addr=mail_account.email)
    assert refused.value.smtp_code == 550
    assert b"From address <ceo@contoso.com> is not allowed" in refused.value.smtp_error
    assert mail_sink.messages == []
    [outcome] = events(mail_account, TokenEvent.Kind.RELAY_REFUSED)
    assert "to <customer@example.com>" in outcome and "550 5.7.1" in outcome


def test_a_forged_sender_header_is_refused_too(relay, relay_tls, device, mail_account, mail_sink):
    with pytest.raises(smtplib.SMTPDataError, match="Sender address <ceo@contoso.com>"):
        send(relay, relay_tls, device, message(mail_account.email, Sender="ceo@contoso.com"),
             from_addr=mail_account.email)
    assert mail_sink.messages == []


def test_a_send_as_address_listed_on_the_account_may_be_used(relay, relay_tls, device, mail_account, mail_sink):
    mail_account.send_as_addresses = "Scans@Contoso.com\nreception@contoso.com"
    mail_account.save()
    assert send(relay, relay_tls, device, message("Scanner <scans@contoso.com>")) == {}
    assert mail_sink.messages[0].mail_from == "scans@contoso.com"


def test_a_message_over_the_size_limit_is_refused(start_relay, relay_tls, device, mail_account, mail_sink):
    relay = start_relay(max_size=20_000)
    big = message(mail_account.email, body=("x" * 70 + "\n") * 430)
    with smtp_session(relay, relay_tls) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "20000"
        client.login(device.username, device.password)
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # smtplib declares SIZE=
            client.send_message(big)
        assert declared.value.smtp_code == 552
        client.rset()
        client.mail(mail_account.email)  # a device that does not declare the size
        client.rcpt("customer@example.com")
        code, _words = client.data(big.as_bytes(policy=email.policy.SMTP))
        assert code == 552
    assert mail_sink.messages == []
    assert len(events(mail_account, TokenEvent.Kind.RELAY_REFUSED)) == 2


def test_the_hourly_limit_refuses_with_a_temporary_error(relay, relay_tls, mail_account, make_device, mail_sink):
    device = make_device(mail_account, hourly_limit=2)
    for _ in range(2):
        send(relay, relay_tls, device, message(mail_account.email))
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(relay, relay_tls, device, message(mail_account.email))
    assert refused.value.smtp_code == 451 and b"2 messages an hour" in refused.value.smtp_error
    assert len(mail_sink.messages) == 2
