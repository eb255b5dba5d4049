"""The SMTP relay for the tests: the real relay.server.Relay on its own event loop in a thread of the
test process, in front of the test Dovecot's submission service (which checks XOAUTH2 tokens at the
test identity provider and relays to the in-test mail sink).

``relay`` is a running relay with a certificate from the test CA; ``start_relay(**config)`` runs
another with other settings. ``device`` is a relay client (a printer's user and password) sending
as ``mail_account``. Clients trust the test CA through ``relay_tls.ca``.
"""
import asyncio
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from relay import services
from relay.server import Relay, RelayConfig

FAST_FAILURE_DELAY = 0.01  # seconds: the throttle's first step, small so that tests of wrong passwords stay fast


@dataclass
class RelayTLS:
    certificate: str
    key: str
    ca: str

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca)


class RunningRelay:
    """A Relay served on its own loop in a thread; `starttls_port` and `tls_port` as bound."""

    def __init__(self, config, failure_delay=FAST_FAILURE_DELAY):
        self.relay = Relay(config, failure_delay=failure_delay)
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="smtp-relay", daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.addresses = self.loop.run_until_complete(self.relay.start())
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            self.error = error
            self.started.set()
            return
        self.started.set()
        self.loop.run_forever()
        self.loop.close()

    def start(self):
        self.thread.start()
        self.started.wait(10)
        if self.error:
            raise self.error
        return self

    def stop(self):
        if self.error is None:
            asyncio.run_coroutine_threadsafe(self.relay.stop(grace=5), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def port(self, kind):
        return next(port for _host, port, listener in self.addresses if listener == kind)

    @property
    def starttls_port(self):
        return self.port("STARTTLS")

    @property
    def tls_port(self):
        return self.port("TLS")

    @property
    def stats(self):
        return self.relay.upstream.stats


@pytest.fixture(scope="session")
def relay_tls(idp_server, tmp_path_factory):
    directory = tmp_path_factory.mktemp("relay-tls")
    certificate = idp_server.ca.issue_cert("127.0.0.1", "localhost")
    paths = RelayTLS(str(directory / "relay.pem"), str(directory / "relay.key"), str(directory / "ca.pem"))
    certificate.private_key_pem.write_to_path(paths.key)
    certificate.cert_chain_pems[0].write_to_path(paths.certificate)
    idp_server.ca.cert_pem.write_to_path(paths.ca)
    return paths


@pytest.fixture
def start_relay(transactional_db, dovecot, relay_tls):
    """``start_relay(**RelayConfig fields)``: a relay listening on free ports of 127.0.0.1."""
    running = []

    def start(failure_delay=FAST_FAILURE_DELAY, **fields):
        values = {"listen": [("127.0.0.1", 0)], "tls_listen": [("127.0.0.1", 0)], "certificate": relay_tls.certificate,
                  "key": relay_tls.key, "hostname": "relay.oauthmail.test", "upstream_timeout": 10.0, "workers": 4}
        values.update(fields)
        relay = RunningRelay(RelayConfig.from_settings(**values), failure_delay=failure_delay).start()
        running.append(relay)
        return relay

    yield start
    for relay in running:
        relay.stop()


@pytest.fixture
def relay(start_relay):
    return start_relay()


@dataclass
class Device:
    client: object
    username: str
    password: str


@pytest.fixture
def make_device(transactional_db):
    def make(account, name="Scanner 2nd floor", **fields):
        client, password = services.relay_client_create(name=name, account=account, actor="test", **fields)
        return Device(client, client.username, password)

    return make


@pytest.fixture
def device(mail_account, make_device):
    return make_device(mail_account)


def message(sender, to="customer@example.com", subject="Scan 0042", body="Your scan is attached.", **headers):
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    for name, value in headers.items():
        mail[name] = value
    mail.set_content(body)
    return mail


def smtp_session(relay, relay_tls, *, implicit=False, source="127.0.0.1"):
    """A logged-out client session on the relay, over TLS (STARTTLS, or implicit TLS)."""
    if implicit:
        client = smtplib.SMTP_SSL("127.0.0.1", relay.tls_port, timeout=20, context=relay_tls.client_context(),
                                  source_address=(source, 0))
    else:
        client = smtplib.SMTP("127.0.0.1", relay.starttls_port, timeout=20, source_address=(source, 0))
        client.starttls(context=relay_tls.client_context())
    return client


def send(relay, relay_tls, device, mail, *, implicit=False, source="127.0.0.1", **kwargs):
    """Log in as `device` and send `mail`, as a printer does; returns what the relay refused (as smtplib does)."""
    with smtp_session(relay, relay_tls, implicit=implicit, source=source) as client:
        client.login(device.username, device.password)
        return client.send_message(mail, **kwargs)


class ScriptedUpstream:
    """An SMTP server standing in for a provider's (STARTTLS, AUTH XOAUTH2 only), that checks each token
    with the test identity provider as Exchange Online does, app-only tokens included: a token is good
    for `user=` when the provider issued it to that user, or to an application (Add-MailboxPermission).
    `hang = True` makes it never answer the end of data."""

    def __init__(self, idp, context):
        from aiosmtpd.controller import Controller

        from tests.dovecot import free_port

        self.idp, self.port, self.messages, self.logins, self.hang = idp, free_port(), [], [], False
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=context,
                                      require_starttls=True, auth_required=True)

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()

    def account_fields(self):
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "starttls"}

    async def auth_XOAUTH2(self, server, args):
        import base64

        from aiosmtpd.smtp import AuthResult

        fields = dict(part.split("=", 1) for part in base64.b64decode(args[1]).decode().split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        grant = self.idp.valid_access_token(token)
        ok = grant is not None and grant["email"] in (None, fields.get("user"))
        self.logins.append((fields.get("user"), ok))
        if ok:
            return AuthResult(success=True, auth_data=fields.get("user"))
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        if self.hang:
            await asyncio.sleep(3600)
        self.messages.append(envelope)
        return "250 2.0.0 OK <queued@upstream.test>"


@pytest.fixture
def scripted_upstream(idp, relay_tls):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(relay_tls.certificate, relay_tls.key)
    upstream = ScriptedUpstream(idp, context).start()
    yield upstream
    upstream.stop()
