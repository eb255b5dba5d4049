"""Test connection: log in to an account's IMAP, POP and SMTP servers with a fresh token.

Called alike by the admin page, the admin action and `manage.py test_connection`. Each protocol
gives a `ProtocolResult`: success with facts, or the step that failed and the server's own words.
A check passes only after the command that follows the login succeeds (a server may accept AUTH
and still refuse the next command): IMAP `SELECT INBOX`, POP `STAT`, SMTP `MAIL FROM` + `RSET`
(or the test message). Every result is logged as a `connection_test` event, never the token.
"""
import base64
import ssl
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from oauthmail.texts import LABELS, facts_text, render

from . import mail_servers, services
from .mail_dialogues import MECHANISMS, run_check
from .models import Security, TokenEvent

PROTOCOLS = LABELS["protocol"]
STEPS = LABELS["step"]


SECURITY_SHORT = {Security.TLS: "TLS", Security.STARTTLS: "STARTTLS", Security.NONE: gettext_lazy("no TLS")}


class NoMailServer(Exception):
    def __init__(self, facts):
        self.facts = facts  # see oauthmail/texts.py
        super().__init__(facts_text(facts))


class InsecureMailServer(NoMailServer):
    """Plaintext or unverified TLS that no administrator set: no token goes there."""


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    security: str

    def __str__(self):
        return f"{self.host}:{self.port} ({SECURITY_SHORT.get(self.security, self.security)})"


@dataclass
class ProtocolResult:
    protocol: str
    ok: bool
    server: MailServer | None = None
    step: str = ""  # the step that failed (or the last one passed)
    facts: dict = field(default_factory=dict)  # what passed; on failure the server's words or what went wrong

    @property
    def protocol_label(self):
        return str(PROTOCOLS[self.protocol])

    @property
    def detail(self):
        return facts_text(self.facts)

    @property
    def event_code(self):
        return "connection.ok" if self.ok else "connection.failed"

    def event_params(self):
        return {"protocol": self.protocol, "server": str(self.server or ""), "step": self.step, "detail": self.facts}

    def summary(self):
        return render(self.event_code, self.event_params())


@dataclass
class ConnectionTestResult:
    account: object
    mechanism: str
    results: list = field(default_factory=list)

    @property
    def ok(self):
        return bool(self.results) and all(result.ok for result in self.results)


def mail_server(*, account, protocol):
    """The account's server for `protocol`: its own host/port/security, else the provider's defaults.

    Every path that sends a token to an account's mail server asks here first: plaintext (security
    "none") and unverified TLS raise InsecureMailServer unless an administrator set them.
    """
    if refusal := mail_servers.refusal(account, protocol):
        raise InsecureMailServer(refusal)
    defaults = getattr(account.application.adapter, "mail_servers", {})
    default_host, default_port, default_security = defaults.get(protocol, ("", None, ""))
    host = getattr(account, f"{protocol}_host") or default_host
    port = getattr(account, f"{protocol}_port") or default_port
    security = getattr(account, f"{protocol}_security") or default_security or Security.TLS
    if not host or not port:
        raise NoMailServer({"message": "check.no_server", "protocol": protocol})
    return MailServer(host=host, port=int(port), security=str(security))


def ssl_context(*, account):
    """Certificates are verified unless the account says otherwise (for a local test server only)."""
    context = ssl.create_default_context()
    if not account.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def timeout_seconds():
    return settings.OAUTHMAIL_HTTP_TIMEOUT


@sensitive_variables("token", "initial")
def sasl_initial_response(*, mechanism, email, token, server):
    """The client's first SASL message (not yet base64-encoded) for XOAUTH2 or OAUTHBEARER (RFC 7628)."""
    if mechanism == "OAUTHBEARER":
        authzid = email.replace("=", "=3D").replace(",", "=2C")
        return f"n,a={authzid},\x01host={server.host}\x01port={server.port}\x01auth=Bearer {token}\x01\x01"
    return services.xoauth2_payload(email=email, token=token)


@sensitive_variables("token", "initial")
def _run_one(protocol, *, account, server, token, mechanism, send_to, actor):
    initial = sasl_initial_response(mechanism=mechanism, email=account.email, token=token, server=server)
    ok, step, facts = run_check(
        protocol, server=server, context=ssl_context(account=account), mechanism=mechanism, initial=initial,
        timeout=timeout_seconds(), email=account.email, send_to=send_to, actor=actor,
    )
    return ProtocolResult(protocol, ok=ok, server=server, step=step, facts=_scrub(facts, token, initial))


@sensitive_variables("token")
def connection_test(*, account, actor, imap=True, pop=True, smtp=True, send_to=None, mechanism="XOAUTH2"):
    """Log in to the chosen protocols with a fresh token; returns a ConnectionTestResult.

    Never raises for what the servers or the network do: every problem is a failed ProtocolResult.
    """
    mechanism = mechanism.upper()
    if mechanism not in MECHANISMS:
        raise ValueError(mechanism)
    report = ConnectionTestResult(account=account, mechanism=mechanism)
    protocols = [name for name, wanted in (("imap", imap), ("pop", pop), ("smtp", smtp)) if wanted]
    if send_to:
        try:
            validate_email(send_to)
        except ValidationError:
            protocols = [name for name in protocols if name != "smtp"]
            report.results.append(ProtocolResult(
                "smtp", ok=False, step="send", facts={"message": "check.bad_address", "address": send_to},
            ))
    servers = {}
    for protocol in protocols:  # before any token: a refused server needs none
        try:
            servers[protocol] = mail_server(account=account, protocol=protocol)
        except NoMailServer as error:
            report.results.append(ProtocolResult(protocol, ok=False, step="connect", facts=error.facts))
    if servers:
        try:
            token, _expires_at = services.token_get(account=account, actor=actor)
        except services.TokenUnavailable as error:
            for protocol in servers:
                report.results.append(ProtocolResult(protocol, ok=False, step="token", facts=error.facts))
            servers = {}
    for protocol, server in servers.items():
        report.results.append(_run_one(protocol, account=account, server=server, token=token, mechanism=mechanism,
                                       send_to=send_to, actor=actor))
    report.results.sort(key=lambda result: list(PROTOCOLS).index(result.protocol))
    for result in report.results:
        services.log_event(account=account, actor=actor, kind=TokenEvent.Kind.CONNECTION_TEST,
                           code=result.event_code, params=result.event_params())
    return report


def _scrub(facts, *secrets):
    """A server that echoes what it was sent must not put a token into a page or an event."""
    forms = [form for secret in secrets if secret
             for form in (secret, base64.b64encode(secret.encode()).decode())]
    scrubbed = {}
    for name, value in facts.items():
        if isinstance(value, str):
            for form in forms:
                value = value.replace(form, "[…]")
        scrubbed[name] = value
    return scrubbed
