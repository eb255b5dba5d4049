"""create_relay_client and smtp_relay, run as an administrator runs them."""
import signal
import smtplib
import socket
from datetime import timedelta

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

pytest.register_assert_rewrite("tests.relay_support", "tests.fixtures_scale")
pytest_plugins = ["tests.relay_support", "tests.fixtures_scale"]

from accounts.models import TokenEvent  # noqa: E402
from relay import events, services  # noqa: E402
from relay.models import RelayClient  # noqa: E402
from tests.dovecot import free_port  # noqa: E402
from tests.factories import make_account, make_application  # noqa: E402
from tests.factories import run_command as run  # noqa: E402
from tests.fixtures_scale import make_world, wait_for  # noqa: E402
from tests.relay_support import message  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(idp):
    return make_account(make_application(idp))


def test_create_relay_client_prints_the_password_alone_and_once(account):
    out, err = run("create_relay_client", "Scanner 2nd floor", "--account", "accounting",
                   "--network", "192.168.10.0/24", "--network", "10.1.2.3", "--hourly-limit", "100")
    password = out.strip()
    client = RelayClient.objects.get(name="Scanner 2nd floor")
    assert len(password) == 24 and password not in err
    assert "scanner-2nd-floor" in err and "compta@contoso.com" in err
    assert (client.networks, client.hourly_limit, client.account) == ("192.168.10.0/24\n10.1.2.3", 100, account)
    assert services.relay_client_authenticate(username=client.username, password=password, address="10.1.2.3")
    assert not services.relay_client_authenticate(username=client.username, password=password, address="10.1.2.4")


@pytest.mark.parametrize(("arguments", "problem"), [
    (["--account", "nobody"], "No account with identifier “nobody”"),
    (["--account", "accounting", "--network", "printers"], "“printers” is not a network"),
    (["--account", "accounting", "--username", "a b"], "Use 1 to 63 letters"),
    (["--account", "accounting", "--hourly-limit", "0"], "--hourly-limit must be 1 or more"),
])
def test_create_relay_client_refuses_bad_input_in_plain_words(account, arguments, problem):
    with pytest.raises(CommandError, match=problem):
        run("create_relay_client", "Scanner", *arguments)
    assert not RelayClient.objects.exists()


def test_create_relay_client_refuses_a_taken_name(account):
    run("create_relay_client", "Scanner", "--account", "accounting")
    with pytest.raises(CommandError, match="already exists"):
        run("create_relay_client", "Scanner", "--account", "accounting")


def test_smtp_relay_will_not_start_without_a_certificate(settings):
    settings.OAUTHMAIL_RELAY_TLS_CERT = settings.OAUTHMAIL_RELAY_TLS_KEY = ""
    with pytest.raises(CommandError, match="Implicit TLS .* needs a certificate"):
        run("smtp_relay")
    settings.OAUTHMAIL_RELAY_TLS_LISTEN = []
    with pytest.raises(CommandError, match="no device could ever log in"):
        run("smtp_relay")


def test_smtp_relay_says_when_it_cannot_listen(settings, relay_tls):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings.OAUTHMAIL_RELAY_LISTEN = [taken.getsockname()]
        settings.OAUTHMAIL_RELAY_TLS_LISTEN = []
        settings.OAUTHMAIL_RELAY_TLS_CERT, settings.OAUTHMAIL_RELAY_TLS_KEY = relay_tls.certificate, relay_tls.key
        with pytest.raises(CommandError, match="cannot listen: .*address already in use"):
            run("smtp_relay")


def test_relay_message_counts_count_each_accounts_messages_sent_and_refused(account):
    other = make_account(account.application, identifier="sales", email="sales@contoso.com")
    for target, sent in [(account, True), (account, True), (account, False), (other, False)]:
        events.relay_event(account_id=target.pk, account_identifier=target.identifier, client_name="Scanner",
                           actor="relay:Scanner", sent=sent, mail_from=target.email, rcpt_tos=["a@example.com"],
                           size=100, reply="250 2.0.0 OK")
    since = timezone.now() - timedelta(hours=1)
    assert events.relay_message_counts(since=since) == {
        account.pk: {"sent": 2, "refused": 1}, other.pk: {"sent": 0, "refused": 1},
    }
    assert events.relay_message_counts(since=since, accounts=[other]) == {other.pk: {"sent": 0, "refused": 1}}
    assert events.relay_message_counts(since=timezone.now()) == {}
    assert TokenEvent.objects.filter(kind=TokenEvent.Kind.RELAY_SENT).count() == 2


def test_smtp_relay_runs_as_its_own_process_and_stops_cleanly_on_sigterm(
    shared_db, idp, dovecot, mail_sink, relay_tls
):
    world = make_world(shared_db, idp, count=1, prefix="scan")
    world.accounts().update(**dovecot.account_fields())
    password = shared_db.call("create_relay_client", "Scanner", "--account", world.identifiers[0]).strip()
    starttls, tls = free_port(), free_port()
    process = shared_db.start("smtp_relay", env=shared_db.env(
        OAUTHMAIL_RELAY_LISTEN=f"127.0.0.1:{starttls}", OAUTHMAIL_RELAY_TLS_LISTEN=f"127.0.0.1:{tls}",
        OAUTHMAIL_RELAY_TLS_CERT=relay_tls.certificate, OAUTHMAIL_RELAY_TLS_KEY=relay_tls.key,
    ))
    try:
        assert "listening on 127.0.0.1:" in process.stdout.readline()
        with smtplib.SMTP_SSL("127.0.0.1", tls, timeout=30, context=relay_tls.client_context()) as client:
            client.login("scanner", password)
            client.send_message(message("scan.0@contoso.com"))
        wait_for(lambda: len(mail_sink.messages) == 1, what="the message at the upstream's sink")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        stdout, stderr = process.communicate()
    assert "Stopping" in stdout, stderr
    assert world.statuses() == {world.identifiers[0]: "active"}  # its imported refresh token was used
