"""A token goes only to mail servers an administrator chose: operators cannot change them, and plaintext or
unverified TLS is refused everywhere (Test connection page, admin action, command, mail backend) unless an
administrator set it."""
import socket
import threading
import time
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.mail import send_mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from accounts.mail import OAuth2MailError
from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application, make_staff, save_account

pytestmark = pytest.mark.django_db

INSECURE = {"imap_host": "127.0.0.1", "imap_security": "none", "pop_host": "127.0.0.1", "pop_security": "none",
            "smtp_host": "127.0.0.1", "smtp_security": "none"}


class Trap:
    """A TCP server that only counts who connects, and hangs up: where an attacker would wait for a token."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _address = self.server.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def connections(self):
        time.sleep(0.05)  # let the thread count a connection that has just arrived
        return self.count


@pytest.fixture
def trap():
    trap = Trap()
    yield trap
    trap.server.close()


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


@pytest.fixture
def operator(client):
    client.force_login(make_staff("olivia", "Mailbox operators"))
    return client


@pytest.fixture
def administrator(client):
    client.force_login(make_staff("adam", "OAuth administrators"))
    return client


def aim_at(account, port, **fields):
    """Settings written without the admin: as an operator left them before this check existed."""
    values = {**INSECURE, "imap_port": port, "pop_port": port, "smtp_port": port, **fields}
    Account.objects.filter(pk=account.pk).update(**values)
    account.refresh_from_db()


def test_only_oauth_administrators_hold_the_permission():
    def holds(group):
        return Group.objects.get(name=group).permissions.filter(codename="change_mail_servers").exists()

    assert holds("OAuth administrators") and not holds("Mailbox operators")
    assert Permission.objects.get(codename="change_mail_servers").content_type.app_label == "accounts"


def test_an_operator_sees_the_mail_servers_read_only(operator, account):
    page = operator.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "Mail servers" in page
    for name in ("imap_host", "smtp_port", "pop_security", "verify_certificate"):
        assert f'name="{name}"' not in page


def test_a_crafted_post_by_an_operator_changes_no_mail_server(operator, account, trap):
    response = save_account(operator, account, name="Renamed", imap_host="evil.example", imap_port=trap.port,
                            imap_security="none", smtp_security="none", verify_certificate=False)
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed"
    assert (account.imap_host, account.imap_port, account.imap_security, account.smtp_security) == ("", None, "", "")
    assert account.verify_certificate is True
    assert not account.events.filter(kind=TokenEvent.Kind.MAIL_SERVERS).exists()


def test_an_administrator_sees_and_changes_them_and_the_event_names_old_new_and_who(administrator, account, trap):
    page = administrator.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert 'name="imap_host"' in page and 'name="verify_certificate"' in page
    response = save_account(administrator, account, imap_host="127.0.0.1", imap_port=trap.port,
                            imap_security="none")
    assert response.status_code == 302
    event = account.events.get(kind=TokenEvent.Kind.MAIL_SERVERS)
    assert event.actor == "adam"
    assert "IMAP host: (default) → 127.0.0.1" in event.text
    assert f"IMAP port: (default) → {trap.port}" in event.text
    assert "IMAP security: (default) → none" in event.text
    account.refresh_from_db()
    assert account.mail_servers_approved_by == "adam"


def test_test_connection_refuses_settings_no_administrator_set_and_sends_nothing(operator, account, trap):
    aim_at(account, trap.port)
    response = operator.post(reverse("admin:accounts_account_test_connection", args=[account.pk]),
                             {"imap": "on", "pop": "on", "smtp": "on", "mechanism": "XOAUTH2"})
    [report] = response.context["reports"]
    assert not report.ok
    for result in report.results:
        assert result.step == "connect" and "in clear text" in result.detail and "administrator" in result.detail
    assert trap.connections() == 0


def test_unverified_tls_is_refused_too(operator, account, trap):
    aim_at(account, trap.port, imap_security="tls", verify_certificate=False)
    response = operator.post(reverse("admin:accounts_account_test_connection", args=[account.pk]),
                             {"imap": "on", "mechanism": "XOAUTH2"})
    [result] = response.context["reports"][0].results
    assert "certificate checking off" in result.detail
    assert trap.connections() == 0


def test_the_admin_action_refuses_them(operator, account, trap):
    aim_at(account, trap.port)
    response = operator.post(reverse("admin:accounts_account_changelist"), {
        "action": "test_connection", "_selected_action": [account.pk]})
    [report] = response.context["reports"]
    assert all("Refused" in result.detail for result in report.results)
    assert trap.connections() == 0


def test_the_command_refuses_them(account, trap):
    aim_at(account, trap.port)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("test_connection", account.identifier, stdout=StringIO(), stderr=err)
    assert "in clear text" in err.getvalue()
    assert trap.connections() == 0


def test_the_mail_backend_refuses_them(account, trap, settings):
    aim_at(account, trap.port)
    settings.EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
    settings.OAUTHMAIL_EMAIL_ACCOUNT = account.identifier
    with pytest.raises(OAuth2MailError, match="in clear text"):
        send_mail("x", "y", account.email, ["someone@example.com"])
    assert trap.connections() == 0


def test_settings_an_administrator_saved_are_used(administrator, account, trap):
    save_account(administrator, account, **{**INSECURE, "imap_port": trap.port, "pop_port": trap.port,
                                            "smtp_port": trap.port})
    response = administrator.post(reverse("admin:accounts_account_test_connection", args=[account.pk]),
                                  {"imap": "on", "mechanism": "XOAUTH2"})
    [result] = response.context["reports"][0].results
    assert "Refused" not in result.detail
    assert trap.connections() == 1  # it did go there, as the administrator chose


def test_an_approval_lapses_when_the_settings_change_any_other_way(administrator, account, trap):
    save_account(administrator, account, imap_host="127.0.0.1", imap_port=trap.port, imap_security="none")
    Account.objects.filter(pk=account.pk).update(imap_host="evil.example")
    account.refresh_from_db()
    response = administrator.post(reverse("admin:accounts_account_test_connection", args=[account.pk]),
                                  {"imap": "on", "mechanism": "XOAUTH2"})
    [result] = response.context["reports"][0].results
    assert "Refused" in result.detail


def test_an_administrator_approves_settings_left_from_before_with_a_tick(administrator, account, trap):
    aim_at(account, trap.port)
    page = administrator.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "Not approved by an administrator" in page and 'name="approve_mail_servers"' in page
    save_account(administrator, account, approve_mail_servers="on")
    account.refresh_from_db()
    assert account.mail_servers_approved_by == "adam"
    assert account.events.filter(kind=TokenEvent.Kind.MAIL_SERVERS, actor="adam").exists()
    page = administrator.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "approved by adam" in page


def test_saving_other_fields_does_not_approve_anything(administrator, account, trap):
    aim_at(account, trap.port)
    save_account(administrator, account, name="Renamed")
    account.refresh_from_db()
    assert account.name == "Renamed" and not account.mail_servers_approved_by


def test_an_operator_cannot_approve_with_a_crafted_tick(operator, account, trap):
    aim_at(account, trap.port)
    save_account(operator, account, approve_mail_servers="on")
    account.refresh_from_db()
    assert not account.mail_servers_approved_by
