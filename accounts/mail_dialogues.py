"""The IMAP, POP and SMTP dialogues of Test connection: connect, secure, SASL login, then the next command.

`run_check()` never raises for what a server or the network does: it returns (ok, step, facts),
where facts (oauthmail/texts.py) say what passed, else hold the server's own words (`detail`) or
what the network did (a `message` code and its parameters).
"""
import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from oauthmail import deadlines

from .models import Security

MECHANISMS = ("XOAUTH2", "OAUTHBEARER")


class _Sasl:
    """Answers a SASL exchange: the initial response first, then the reply an error challenge needs."""

    def __init__(self, mechanism, initial):
        self.mechanism, self.initial, self.sent, self.error_challenge = mechanism, initial, False, ""

    def __call__(self, challenge=None):
        """smtplib's authobject (and imaplib's, through `imap`): text in, text out."""
        if not self.sent and not challenge:
            self.sent = True
            return self.initial
        if isinstance(challenge, bytes):
            challenge = challenge.decode("utf-8", "replace")
        self.error_challenge = " ".join((challenge or "").split())
        return "\x01" if self.mechanism == "OAUTHBEARER" else ""  # RFC 7628 3.2.3; XOAUTH2: empty

    def imap(self, challenge):
        return self(challenge).encode()

    def with_challenge(self, words):
        return f"{words} {self.error_challenge}".strip() if self.error_challenge else words


class _Failed(Exception):
    """A step answered, but not with success: its words are the server's."""


# --- the three protocols ------------------------------------------------------------------------


def _check_imap(check, server, context, sasl, timeout):
    check.step = "connect"
    if server.security == Security.TLS:
        client = deadlines.IMAP4_SSL(server.host, server.port, ssl_context=context, timeout=timeout)
    else:
        client = deadlines.IMAP4(server.host, server.port, timeout=timeout)
    check.client = client
    if server.security == Security.STARTTLS:
        check.step = "starttls"
        client.starttls(ssl_context=context)
    check.step = "authenticate"
    try:
        client.authenticate(sasl.mechanism, sasl.imap)
    except imaplib.IMAP4.error as error:
        raise _Failed(sasl.with_challenge(_words(error))) from None
    check.step = "select"
    status, data = client.select("INBOX")  # SELECT, as a mail client does; nothing is changed or fetched
    if status != "OK":
        raise _Failed(_words(data[-1] if data else status))
    count = int(data[0]) if data and data[0] and data[0].isdigit() else 0
    return {"message": "check.imap_ok", "mechanism": sasl.mechanism, "count": count}


def _check_pop(check, server, context, sasl, timeout):
    check.step = "connect"
    if server.security == Security.TLS:
        client = deadlines.POP3_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        client = deadlines.POP3(server.host, server.port, timeout=timeout)
    check.client = client
    if server.security == Security.STARTTLS:
        check.step = "starttls"
        client.stls(context=context)
    check.step = "authenticate"
    # Two steps (no initial response on the AUTH line): long tokens, and Microsoft's documented exchange.
    reply = client._shortcmd(f"AUTH {sasl.mechanism}")
    if not _continues(reply):
        raise _Failed(_words(reply))
    reply = client._shortcmd(_b64(sasl()))
    if _continues(reply):  # an error challenge: answer it, and the server's -ERR follows
        client._putcmd(_b64(sasl(base64.b64decode(reply[2:]))))
        try:
            reply = client._getresp()
        except poplib.error_proto as error:
            raise _Failed(sasl.with_challenge(_words(error))) from None
        raise _Failed(sasl.with_challenge(_words(reply)))
    check.step = "stat"
    count, size = client.stat()
    return {"message": "check.pop_ok", "mechanism": sasl.mechanism, "count": count, "size": size}


def _continues(reply):
    return reply == b"+" or reply.startswith(b"+ ")


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _check_smtp(check, server, context, sasl, timeout, *, email, send_to, actor):
    check.step = "connect"
    if server.security == Security.TLS:
        client = deadlines.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        client = deadlines.SMTP(server.host, server.port, timeout=timeout)
    check.client = client
    client.ehlo()
    if server.security == Security.STARTTLS:
        check.step = "starttls"
        client.starttls(context=context)
        client.ehlo()
    check.step = "authenticate"
    try:
        client.auth(sasl.mechanism, sasl)
    except smtplib.SMTPAuthenticationError as error:
        raise _Failed(sasl.with_challenge(_words(error))) from None
    if send_to:
        check.step = "send"
        client.send_message(_test_message(email=email, send_to=send_to, actor=actor))
        return {"message": "check.smtp_sent", "mechanism": sasl.mechanism, "address": send_to}
    check.step = "mail_from"
    code, words = client.mail(email)
    if code != 250:
        raise _Failed(f"{code} {_words(words)}")
    client.rset()
    return {"message": "check.smtp_mail_from", "mechanism": sasl.mechanism, "email": email}


def _test_message(*, email, send_to, actor):
    message = EmailMessage()
    message["From"] = email
    message["To"] = send_to
    message["Subject"] = _("oauthmail test message")
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=email.rpartition("@")[2] or None)
    message.set_content(
        _("This message was sent by oauthmail's Test connection for %(email)s, by %(actor)s at %(when)s.")
        % {"email": email, "actor": actor, "when": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S %Z")}
    )
    return message


# --- running them -------------------------------------------------------------------------------


class _Check:
    step = "connect"
    client = None


def _close(protocol, client):
    if client is None:
        return
    try:
        {"imap": lambda: client.logout(), "pop": lambda: client.quit(), "smtp": lambda: client.quit()}[protocol]()
    except (OSError, EOFError, imaplib.IMAP4.error, poplib.error_proto):
        try:
            (client.shutdown if protocol == "imap" else client.close)()
        except OSError:
            pass


@sensitive_variables("initial", "sasl")
def run_check(protocol, *, server, context, mechanism, initial, timeout, email, send_to=None, actor=""):
    """One protocol's check; `initial` is the SASL initial response, not yet base64-encoded. The whole
    dialogue, from connecting to logging out, ends within `timeout` seconds (oauthmail/deadlines.py)."""
    sasl, check = _Sasl(mechanism, initial), _Check()
    with deadlines.Deadline(timeout) as deadline:
        try:
            if protocol == "imap":
                facts = _check_imap(check, server, context, sasl, timeout)
            elif protocol == "pop":
                facts = _check_pop(check, server, context, sasl, timeout)
            else:
                facts = _check_smtp(check, server, context, sasl, timeout, email=email, send_to=send_to,
                                    actor=actor)
            return True, check.step, facts
        except (_Failed, OSError, EOFError, ValueError, OverflowError, imaplib.IMAP4.error,
                poplib.error_proto) as error:
            if deadline.expired:  # whatever the cut-off connection raised, the cause is the deadline
                error = deadlines.DeadlineExceeded(str(error), seconds=timeout)
            return False, check.step, _describe(error, server, timeout)
        finally:
            _close(protocol, check.client)


# --- words --------------------------------------------------------------------------------------


def _words(value):
    """The server's own words, as text."""
    if isinstance(value, smtplib.SMTPResponseException):
        return f"{value.smtp_code} {_words(value.smtp_error)}"
    if isinstance(value, BaseException):
        value = value.args[0] if len(value.args) == 1 else " ".join(str(arg) for arg in value.args)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())


def _describe(error, server, timeout):
    """What went wrong, as facts: the server's words when it spoke, else what the network did."""
    values = {"host": server.host, "port": server.port, "server": str(server), "seconds": timeout,
              "reason": _words(getattr(error, "reason", None) or getattr(error, "strerror", None) or error)}
    if isinstance(error, _Failed | imaplib.IMAP4.error | poplib.error_proto):
        return {"detail": _words(error)}
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return {"detail": "; ".join(f"{address}: {code} {_words(words)}"
                                    for address, (code, words) in error.recipients.items())}
    if isinstance(error, smtplib.SMTPResponseException):
        return {"detail": _words(error)}
    if isinstance(error, smtplib.SMTPNotSupportedError | smtplib.SMTPException) and not isinstance(
        error, smtplib.SMTPServerDisconnected
    ):
        return {"detail": _words(error)}
    if isinstance(error, ssl.SSLCertVerificationError):
        values["reason"] = _words(error.verify_message or error)
    return {"message": _network_message(error), **values}


def _network_message(error):
    for kind, message in (
        (deadlines.DeadlineExceeded, "net.too_slow"),
        (socket.gaierror, "net.host_not_found"),
        (ConnectionRefusedError, "net.refused"),
        (TimeoutError, "net.timeout"),
        (ssl.SSLCertVerificationError, "net.certificate"),
        (ssl.SSLError, "net.tls"),
        (smtplib.SMTPServerDisconnected | EOFError | ConnectionResetError, "net.closed"),
        (ValueError, "net.value"),
    ):
        if isinstance(error, kind):
            return message
    return "net.other"
