"""Test connection in the admin, against a real Dovecot whose passdb oauth2 asks the test identity provider."""
import json

import pytest
from django.urls import reverse

from accounts.models import Account, TokenEvent
from tests.dovecot import free_port
from tests.factories import make_account, make_application, make_staff, save_account

pytestmark = pytest.mark.django_db

ALL = {"imap": "on", "pop": "on", "smtp": "on", "send_to": "", "mechanism": "XOAUTH2"}


def page_url(account):
    return reverse("admin:accounts_account_test_connection", args=[account.pk])


def run(client, account, **overrides):
    data = {**ALL, **overrides}
    return client.post(page_url(account), {k: v for k, v in data.items() if v is not None})


def results(response):
    [report] = response.context["reports"]
    return {result.protocol: result for result in report.results}


def test_imap_pop_and_smtp_succeed_with_the_facts(admin_client, mail_account, dovecot):
    dovecot.deliver(mail_account.email, b"Subject: one\r\n\r\nhello\r\n")
    response = run(admin_client, mail_account)
    found = results(response)
    assert all(result.ok for result in found.values()), found
    assert "INBOX holds 1 message." in found["imap"].detail
    assert "holds 1 message " in found["pop"].detail
    assert f"MAIL FROM:<{mail_account.email}>" in found["smtp"].detail
    assert "INBOX holds 1 message." in response.content.decode()


def test_the_page_offers_protocols_address_and_mechanism(admin_client, mail_account):
    page = admin_client.get(page_url(mail_account)).content.decode()
    for name in ("imap", "pop", "smtp", "send_to", "mechanism", "OAUTHBEARER"):
        assert name in page


def test_the_change_page_has_a_test_connection_button(admin_client, mail_account):
    page = admin_client.get(reverse("admin:accounts_account_change", args=[mail_account.pk])).content.decode()
    assert page_url(mail_account) in page


def test_a_test_message_reaches_the_relay(admin_client, mail_account, mail_sink):
    found = results(run(admin_client, mail_account, imap=None, pop=None, send_to="someone@example.com"))
    assert found["smtp"].ok, found["smtp"].detail
    [message] = mail_sink.messages
    assert message.mail_from == mail_account.email
    assert message.rcpt_tos == ["someone@example.com"]
    assert b"oauthmail test message" in message.content


def test_oauthbearer_logs_in_to_every_protocol(admin_client, mail_account):
    found = results(run(admin_client, mail_account, mechanism="OAUTHBEARER"))
    assert all(result.ok for result in found.values()), found
    assert "OAUTHBEARER" in found["imap"].detail


def test_a_revoked_token_is_refused_in_the_servers_own_words(admin_client, mail_account, idp):
    idp.reset()  # the provider forgets every token it issued: Dovecot's introspection says "not active"
    found = results(run(admin_client, mail_account))
    assert not any(result.ok for result in found.values())
    assert found["imap"].step == "authenticate"
    assert "[AUTHENTICATIONFAILED] Authentication failed." in found["imap"].detail
    assert "[AUTH] Authentication failed." in found["pop"].detail
    assert "535 5.7.8 Authentication failed." in found["smtp"].detail


def test_smtp_fails_when_the_server_accepts_auth_but_refuses_mail_from(admin_client, mail_account, mail_sink):
    mail_sink.refuse_senders.add(mail_account.email)
    found = results(run(admin_client, mail_account, imap=None, pop=None))
    assert not found["smtp"].ok
    assert found["smtp"].step == "mail_from", found["smtp"].detail
    assert "5.7.60" in found["smtp"].detail


def test_a_wrong_port_gives_a_clear_message(admin_client, mail_account):
    closed = free_port()
    Account.objects.filter(pk=mail_account.pk).update(imap_port=closed)
    found = results(run(admin_client, mail_account, pop=None, smtp=None))
    assert found["imap"].step == "connect"
    assert f"refused the connection on port {closed}" in found["imap"].detail


def test_tls_to_a_starttls_port_says_to_check_the_security(admin_client, mail_account, dovecot):
    Account.objects.filter(pk=mail_account.pk).update(pop_security="tls")
    found = results(run(admin_client, mail_account, imap=None, smtp=None))
    assert not found["pop"].ok
    assert "TLS or STARTTLS" in found["pop"].detail


def test_an_unknown_host_gives_a_clear_message(admin_client, mail_account):
    Account.objects.filter(pk=mail_account.pk).update(smtp_host="no-such-host.invalid")
    found = results(run(admin_client, mail_account, imap=None, pop=None))
    assert "no-such-host.invalid could not be found" in found["smtp"].detail


def test_each_result_is_logged_without_the_token(admin_client, mail_account):
    token = mail_account.access_token
    run(admin_client, mail_account)
    events = TokenEvent.objects.filter(account=mail_account, kind=TokenEvent.Kind.CONNECTION_TEST)
    assert events.count() == 3
    assert all(event.actor == "admin" for event in events)
    for event in events:
        assert event.code == "connection.ok" and event.text.startswith(("IMAP", "POP", "SMTP"))
        assert token not in event.text and token not in json.dumps(event.params)
    page = admin_client.get(reverse("admin:accounts_account_change", args=[mail_account.pk])).content.decode()
    assert token not in page


def test_an_account_without_a_token_says_so_for_each_protocol(admin_client, idp, dovecot):
    account = make_account(make_application(idp), **dovecot.account_fields())
    found = results(run(admin_client, account))
    assert {result.step for result in found.values()} == {"token"}
    assert "Init. Token" in found["imap"].detail


def test_the_admin_action_tests_every_selected_account(admin_client, mail_account, idp, dovecot):
    other = make_account(mail_account.application, identifier="sales", email="sales@contoso.com")
    response = admin_client.post(reverse("admin:accounts_account_changelist"), {
        "action": "test_connection", "_selected_action": [mail_account.pk, other.pk],
    })
    reports = {report.account.identifier: report for report in response.context["reports"]}
    assert reports["accounting"].ok
    assert not reports["sales"].ok


@pytest.mark.parametrize("group, allowed", [("Mailbox operators", True), ("OAuth administrators", True)])
def test_both_groups_may_test_a_connection(client, mail_account, group, allowed):
    client.force_login(make_staff("someone", group))
    assert client.get(page_url(mail_account)).status_code == 200


def test_staff_without_the_permission_may_not(client, mail_account):
    from django.contrib.auth.models import User

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(page_url(mail_account)).status_code == 403


@pytest.mark.parametrize("provider, expected", [
    ("microsoft", ["outlook.office365.com:993 (TLS)", "outlook.office365.com:995 (TLS)",
                   "smtp.office365.com:587 (STARTTLS)"]),
    ("google", ["imap.gmail.com:993 (TLS)", "pop.gmail.com:995 (TLS)", "smtp.gmail.com:587 (STARTTLS)"]),
])
def test_blank_servers_are_the_providers_defaults(idp, provider, expected):
    from accounts.connection import mail_server

    account = make_account(make_application(idp), identifier="plain")
    account.application.provider = provider
    assert [str(mail_server(account=account, protocol=p)) for p in ("imap", "pop", "smtp")] == expected


def test_a_set_host_keeps_the_providers_port_and_security(idp):
    from accounts.connection import mail_server

    account = make_account(make_application(idp), imap_host="imap.contoso.com")
    assert str(mail_server(account=account, protocol="imap")) == "imap.contoso.com:993 (TLS)"


def test_an_untrusted_certificate_is_refused_with_a_clear_message(admin_client, mail_account, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")  # the system CAs only
    found = results(run(admin_client, mail_account, pop=None, smtp=None))
    assert found["imap"].step == "connect"
    assert "certificate could not be verified" in found["imap"].detail


def test_verification_off_set_by_an_administrator_accepts_an_untrusted_certificate(admin_client, mail_account,
                                                                                   monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    assert save_account(admin_client, mail_account, verify_certificate=False).status_code == 302
    found = results(run(admin_client, mail_account, pop=None, smtp=None))
    assert found["imap"].ok, found["imap"].detail
