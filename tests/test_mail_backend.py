"""accounts.mail.OAuth2EmailBackend: Django's e-mail over the account's SMTP server with XOAUTH2 (real Dovecot)."""
import smtplib

import pytest
from django.core.mail import EmailMessage, get_connection, send_mail

from accounts.mail import OAuth2MailError
from tests.factories import make_account, make_application

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend(settings, mail_account):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = mail_account.identifier
    return mail_account


def test_send_mail_goes_out_through_the_accounts_smtp_server(backend, mail_sink):
    sent = send_mail("Invoice", "Please find it attached.", backend.email, ["customer@example.com"])
    assert sent == 1
    [message] = mail_sink.messages
    assert message.mail_from == backend.email
    assert message.rcpt_tos == ["customer@example.com"]
    assert b"Subject: Invoice" in message.content


def test_one_connection_sends_several_messages(backend, mail_sink):
    messages = [EmailMessage(f"n{i}", "body", backend.email, ["a@example.com"]) for i in range(3)]
    with get_connection() as connection:
        assert connection.send_messages(messages) == 3
    assert len(mail_sink.messages) == 3


def test_a_refused_token_raises_the_servers_words(backend, idp):
    idp.reset()  # the provider forgets every token: Dovecot refuses the login
    with pytest.raises(smtplib.SMTPAuthenticationError, match="Authentication failed"):
        send_mail("x", "y", backend.email, ["a@example.com"])


def test_fail_silently_sends_nothing_and_raises_nothing(backend, idp, mail_sink):
    idp.reset()
    assert send_mail("x", "y", backend.email, ["a@example.com"], fail_silently=True) == 0
    assert mail_sink.messages == []


def test_an_account_without_a_token_says_to_run_init_token(settings, idp, dovecot):
    account = make_account(make_application(idp), **dovecot.account_fields())
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = account.identifier
    with pytest.raises(OAuth2MailError, match="Init. Token"):
        send_mail("x", "y", account.email, ["a@example.com"])


def test_an_unknown_account_is_named(settings):
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = "nobody"
    with pytest.raises(OAuth2MailError, match="nobody"):
        send_mail("x", "y", "a@example.com", ["b@example.com"])
