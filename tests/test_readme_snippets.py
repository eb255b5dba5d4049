"""The README's snippets, read out of README.md and run with the real programs (Debian's msmtp, mbsync,
curl, jq, bash, python) against the test Dovecot and oauthmail served by gunicorn over HTTPS.

Only what must differ on a test machine is replaced: the mail servers' host and port, oauthmail's
address (https://127.0.0.1:PORT for https://oauthmail.example.com), /opt/oauthmail (this checkout and
its venv), mbsync's ~/Mail folder; and the test CA is trusted: through SSL_CERT_FILE for Python (set
by the idp_server fixture) and CURL_CA_BUNDLE for curl, one added ``tls_trust_file`` line for msmtp
and one ``CertificateFile`` line for mbsync (GnuTLS and mbsync read no such variable). mbsync reaches
Dovecot as ``localhost``: isync 1.4 matches a certificate's DNS names only, never an IP address.
The accounts are the README's own (``accounting`` <compta@contoso.com>, and ``sales``), with refresh
tokens the test identity provider issued.
"""
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.db import connection

pytest.register_assert_rewrite("tests.fixtures_scale", "tests.gunicorn")
pytest_plugins = ["tests.fixtures_scale"]  # shared_db

from tests.fixtures_scale import SharedDatabase, database_url, make_world  # noqa: E402
from tests.gunicorn import WebServer, production_env  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
README = BASE_DIR / "README.md"
MAILBOXES = [("accounting", "compta@contoso.com"), ("sales", "ventes@contoso.com")]
MESSAGE = "From: compta@contoso.com\nTo: customer@example.com\nSubject: Invoice\n\nPlease find it attached.\n"


def readme_block(containing):
    """The one fenced code block of README.md that contains ``containing``."""
    blocks = re.findall(r"^```\w*\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"{len(found)} blocks of README.md contain {containing!r}"
    return found[0]


def replace(text, old, new):
    assert text.count(old) >= 1, f"{old!r} is not in the snippet any more"
    return text.replace(old, new)


def on_this_machine(text):
    """/opt/oauthmail is this checkout, its venv's python the one running the tests."""
    return replace(text, "/opt/oauthmail/.venv/bin/python", sys.executable).replace("/opt/oauthmail", str(BASE_DIR))


def run(argv, env, **kwargs):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture
def env(shared_db, idp):
    """The environment of a program on the oauthmail machine: .env's settings (the test's database and
    keys) and the test CA trusted; the README's accounts exist, each with a refresh token."""
    make_world(shared_db, idp, mailboxes=MAILBOXES)
    return production_env(shared_db, CURL_CA_BUNDLE=os.environ["SSL_CERT_FILE"])


# --- on the oauthmail machine: show_token ----------------------------------------------------------------


def test_the_msmtp_snippet_sends_a_message_with_a_token_from_show_token(env, dovecot, mail_sink, tmp_path):
    config = readme_block("passwordeval")
    config = replace(config, "smtp.office365.com", "127.0.0.1")
    config = replace(config, "587", str(dovecot.submission_port))
    config = on_this_machine(config) + f"tls_trust_file {dovecot.root / 'ca.pem'}\n"
    msmtprc = tmp_path / "msmtprc"
    msmtprc.write_text(config)
    msmtprc.chmod(0o600)

    result = run(["msmtp", "-C", str(msmtprc), "-a", "accounting", "customer@example.com"], env, input=MESSAGE)

    assert result.returncode == 0, result.stderr + dovecot.log()
    [sent] = mail_sink.messages
    assert (sent.mail_from, sent.rcpt_tos) == ("compta@contoso.com", ["customer@example.com"])
    assert b"Subject: Invoice" in sent.content


def test_the_mbsync_snippet_syncs_the_inbox_with_a_token_from_show_token(env, dovecot, tmp_path):
    subject = f"Invoice {uuid.uuid4()}"  # the session's Dovecot may hold other tests' messages too
    dovecot.deliver("compta@contoso.com", MESSAGE.replace("Invoice", subject).encode())
    mail = tmp_path / "Mail"
    (mail / "accounting").mkdir(parents=True)
    config = readme_block("PassCmd")
    config = replace(config, "Host outlook.office365.com", "Host localhost")  # mbsync 1.4 checks DNS names only
    config = replace(config, "Port 993", f"Port {dovecot.imaps_port}")
    config = replace(config, "~/Mail", str(mail))
    config = replace(config, "SSLType IMAPS", f"SSLType IMAPS\nCertificateFile {dovecot.root / 'ca.pem'}")
    mbsyncrc = tmp_path / "mbsyncrc"
    mbsyncrc.write_text(on_this_machine(config))

    result = run(["mbsync", "-c", str(mbsyncrc), "accounting"], env)

    assert result.returncode == 0, result.stdout + result.stderr + dovecot.log()
    synced = [path.read_text() for path in (mail / "accounting" / "INBOX").glob("*/*")]
    assert any(f"Subject: {subject}" in message for message in synced)


def test_the_python_snippet_reads_a_token_from_show_token(env):
    code = on_this_machine(readme_block("subprocess.check_output")) + "print(repr(access_token))"
    result = run([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    token = eval(result.stdout)  # the repr of a str
    assert token and token == token.strip()


# --- from anywhere: the token API -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(django_db_setup, django_db_blocker, idp_server, tmp_path_factory):
    """oauthmail served over HTTPS by gunicorn (the web unit's command), started once for this module: it
    reads the test database, whose rows each test makes anew."""
    with django_db_blocker.unblock():
        database = SharedDatabase("default", database_url(connection.settings_dict))
    server = WebServer(tmp_path_factory.mktemp("gunicorn"))
    try:
        yield server.start(env=production_env(database), tls_cert=idp_server.ca.issue_cert("127.0.0.1"))
    finally:
        server.stop()


@pytest.fixture
def api(env, api_server):
    """The server, and a key from the README's create_api_client snippet."""
    server = api_server
    script = on_this_machine(readme_block("create_api_client erp")) + 'printf "%s" "$KEY"'
    created = run(["bash", "-c", script], env)
    assert created.returncode == 0, created.stderr
    return server, created.stdout


def curl_script(containing, server):
    return replace(readme_block(containing), "https://oauthmail.example.com", server.url)


def test_the_curl_snippets_print_the_token_answer_and_set_the_token(api, env, idp):
    server, key = api
    printed = run(["bash", "-c", curl_script("| jq .", server)], {**env, "KEY": key})
    assert printed.returncode == 0, printed.stderr + server.log()
    answer = json.loads(printed.stdout)
    assert answer["email"] == "compta@contoso.com"
    assert idp.valid_access_token(answer["access_token"])["email"] == "compta@contoso.com"

    script = curl_script("TOKEN=$(", server) + 'printf "%s" "$TOKEN"'
    token = run(["bash", "-c", script], {**env, "KEY": key})
    assert token.returncode == 0, token.stderr
    assert idp.valid_access_token(token.stdout)["email"] == "compta@contoso.com"


def test_the_curl_snippets_fail_loudly_with_the_reason_when_there_is_no_token(api, env):
    server, key = api
    printed = run(["bash", "-c", curl_script("| jq .", server)], {**env, "KEY": "not-a-key"})
    assert printed.returncode == 22  # curl's "HTTP error", through pipefail
    assert '"error": "unauthorized"' in printed.stdout  # the body, not nothing

    script = curl_script("TOKEN=$(", server).replace("accounts/accounting/", "accounts/nobody/")
    stopped = run(["bash", "-c", script + '\necho "went on with [$TOKEN]"'], {**env, "KEY": key})
    assert stopped.returncode != 0
    assert "went on" not in stopped.stdout
    assert "nobody" in stopped.stderr  # jq prints the API's message


def test_the_python_snippet_reads_mail_and_sends_with_a_token_from_the_api(api, env, dovecot, mail_sink):
    server, key = api
    dovecot.deliver("compta@contoso.com", MESSAGE.encode())
    code = readme_block("imaplib.IMAP4_SSL")
    code = replace(code, "https://oauthmail.example.com", server.url)
    code = replace(code, '"outlook.office365.com", 993', f'"127.0.0.1", {dovecot.imaps_port}')
    code = replace(code, '"smtp.office365.com", 587', f'"127.0.0.1", {dovecot.submission_port}')
    result = run([sys.executable, "-c", code], {**env, "OAUTHMAIL_API_KEY": key})
    assert result.returncode == 0, result.stderr + dovecot.log()
    maildir = dovecot.root / "mail" / "compta@contoso.com" / "Maildir"
    assert result.stdout == f"INBOX holds {len(list(maildir.glob('[cn][ue][rw]/*')))} messages\n"
    [sent] = mail_sink.messages
    assert (sent.mail_from, sent.rcpt_tos) == ("compta@contoso.com", ["customer@example.com"])

