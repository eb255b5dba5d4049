"""Debian's msmtp and swaks against the real relay, configured as a printer is: host, port, TLS, a user
and a password, the device's address. (`make test` installs msmtp, swaks and libnet-ssleay-perl.)"""
import shutil
import subprocess

import pytest

pytest.register_assert_rewrite("tests.relay_support")
pytest_plugins = ["tests.relay_support"]

from accounts.models import TokenEvent  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)
PACKAGES = "msmtp swaks libnet-ssleay-perl"


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {PACKAGES}")
    return path


def msmtp(relay, relay_tls, device, account, tmp_path, *, implicit=False, source=None, password=None):
    config = tmp_path / "msmtprc"
    config.write_text("\n".join([
        "account printer",
        "host 127.0.0.1",
        f"port {relay.tls_port if implicit else relay.starttls_port}",
        "tls on",
        f"tls_starttls {'off' if implicit else 'on'}",
        f"tls_trust_file {relay_tls.ca}",
        "auth on",
        f"user {device.username}",
        f"password {password or device.password}",
        f"from {account.email}",
        *([f"source_ip {source}"] if source else []),
        "",
    ]))
    config.chmod(0o600)
    mail = f"From: Scanner <{account.email}>\nTo: customer@example.com\nSubject: Scan from msmtp\n\nPage 1 of 1.\n"
    return subprocess.run([tool("msmtp"), "-C", str(config), "-a", "printer", "customer@example.com"],
                          input=mail, capture_output=True, text=True, timeout=60)


def swaks(relay, relay_tls, device, account, *options):
    return subprocess.run([
        tool("swaks"), "--server", "127.0.0.1", "--from", account.email, "--to", "customer@example.com",
        "--auth-user", device.username, "--auth-password", device.password, "--header", "Subject: Scan from swaks",
        "--body", "Page 1 of 1.", "--tls-verify", "--tls-ca-path", relay_tls.ca, "--timeout", "30", *options,
    ], capture_output=True, text=True, timeout=60)


def test_msmtp_sends_over_starttls(relay, relay_tls, device, mail_account, mail_sink, tmp_path):
    result = msmtp(relay, relay_tls, device, mail_account, tmp_path)
    assert result.returncode == 0, result.stderr
    [received] = mail_sink.messages
    assert received.mail_from == mail_account.email and b"Subject: Scan from msmtp" in received.content


def test_msmtp_sends_over_implicit_tls(relay, relay_tls, device, mail_account, mail_sink, tmp_path):
    result = msmtp(relay, relay_tls, device, mail_account, tmp_path, implicit=True)
    assert result.returncode == 0, result.stderr
    assert len(mail_sink.messages) == 1


def test_msmtp_with_a_wrong_password_is_told_535(relay, relay_tls, device, mail_account, mail_sink, tmp_path):
    result = msmtp(relay, relay_tls, device, mail_account, tmp_path, password="Wrong-Password-123")
    assert result.returncode != 0
    assert "535 5.7.8 Authentication credentials invalid" in result.stderr
    assert mail_sink.messages == []


def test_swaks_auth_login_over_starttls_checking_the_certificate(relay, relay_tls, device, mail_account, mail_sink):
    result = swaks(relay, relay_tls, device, mail_account, "--port", str(relay.starttls_port), "--tls",
                   "--auth", "LOGIN")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "235 2.7.0 Authentication successful" in result.stdout
    assert "250 2.0.0" in result.stdout  # the upstream server's own answer to the end of data
    assert len(mail_sink.messages) == 1
    assert mail_account.events.filter(kind=TokenEvent.Kind.RELAY_SENT).count() == 1


def test_swaks_auth_plain_over_implicit_tls(relay, relay_tls, device, mail_account, mail_sink):
    result = swaks(relay, relay_tls, device, mail_account, "--port", str(relay.tls_port), "--tls-on-connect",
                   "--auth", "PLAIN")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(mail_sink.messages) == 1


def test_swaks_from_a_network_the_client_may_not_use_is_refused(
    relay, relay_tls, mail_account, make_device, mail_sink
):
    device = make_device(mail_account, name="Front desk", networks="192.168.10.0/24, 127.0.0.1")
    result = swaks(relay, relay_tls, device, mail_account, "--port", str(relay.starttls_port), "--tls",
                   "--auth", "PLAIN", "--local-interface", "127.0.0.2")
    assert result.returncode != 0
    assert "535 5.7.8 Authentication credentials invalid" in result.stdout
    assert mail_sink.messages == []
