"""`manage.py test_connection` against the real Dovecot: one line per protocol, non-zero exit on failure."""
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Account, TokenEvent

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    try:
        call_command("test_connection", *args, stdout=out, stderr=err)
    except CommandError as error:  # manage.py exits 1 with this message
        return 1, out.getvalue(), err.getvalue() + str(error)
    return 0, out.getvalue(), err.getvalue()


def test_all_three_protocols_succeed_and_print_one_line_each(mail_account):
    status, out, err = run(mail_account.identifier)
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["IMAP", "POP", "SMTP"]
    assert all(": OK." in line for line in lines)


def test_only_the_chosen_protocols_are_tested(mail_account):
    status, out, _err = run(mail_account.identifier, "--pop")
    assert status == 0
    assert out.startswith("POP ") and len(out.splitlines()) == 1


def test_oauthbearer_is_used_when_asked(mail_account):
    status, out, err = run(mail_account.identifier, "--imap", "--oauthbearer")
    assert status == 0, err
    assert "OAUTHBEARER" in out


def test_send_to_sends_a_test_message(mail_account, mail_sink):
    status, out, err = run(mail_account.identifier, "--smtp", "--send-to", "it@example.com")
    assert status == 0, err
    assert [message.rcpt_tos for message in mail_sink.messages] == [["it@example.com"]]


def test_a_failure_exits_non_zero_with_the_servers_words(mail_account, idp):
    idp.reset()  # every token the provider issued is now unknown to it
    status, out, err = run(mail_account.identifier, "--imap")
    assert status == 1
    assert "[AUTHENTICATIONFAILED]" in err
    assert "The connection test of accounting failed." in err


def test_a_wrong_port_exits_non_zero_with_a_clear_message(mail_account):
    from tests.dovecot import free_port

    closed = free_port()
    Account.objects.filter(pk=mail_account.pk).update(smtp_port=closed)
    status, _out, err = run(mail_account.identifier, "--smtp")
    assert status == 1
    assert f"refused the connection on port {closed}" in err
    assert "Traceback" not in err


def test_the_event_names_the_cli_user_and_never_the_token(mail_account):
    run(mail_account.identifier, "--imap")
    event = TokenEvent.objects.get(account=mail_account, kind=TokenEvent.Kind.CONNECTION_TEST)
    assert event.actor.endswith("(cli)")
    assert event.code == "connection.ok" and "INBOX" in event.text
    assert mail_account.access_token not in event.text + json.dumps(event.params)


def test_an_unknown_account_says_so():
    status, _out, err = run("nobody")
    assert status == 1
    assert "No account with identifier" in err
