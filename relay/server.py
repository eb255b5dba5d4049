"""The SMTP relay server: aiosmtpd on one asyncio event loop, one protocol object per connection (no
thread per connection), listening for STARTTLS (587-style) and implicit TLS (465-style).

A device must log in (AUTH PLAIN or LOGIN) before MAIL FROM, and may do so only over TLS, unless it
connects from a network listed in OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS. Every refused login gets the
same 535 whatever the reason, later and later for an address that keeps failing (relay/throttle.py).
"""
import asyncio
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, AuthResult, Session, TLSSetupException
from django.conf import settings
from django.utils.translation import gettext as _

from . import services
from .blocking import Blocking
from .handler import RelayHandler
from .models import in_networks
from .throttle import FailureThrottle
from .upstream import UpstreamPool

log = logging.getLogger("relay")
INVALID = "535 5.7.8 Authentication credentials invalid"
MAX_FAILED_LOGINS = 3  # per connection, then it is closed
IDLE_TIMEOUT = 300  # seconds a device may stay silent (RFC 5321's 5 minutes)
SIZE_PARAMETER = re.compile(r"\bSIZE=(\d+)", re.IGNORECASE)
DATA_PIECE = 256 * 1024  # bytes of a message read at once


class RelayConfigError(Exception):
    pass


@dataclass
class RelayConfig:
    listen: list = field(default_factory=list)  # [(host, port)]: STARTTLS offered when there is a certificate
    tls_listen: list = field(default_factory=list)  # [(host, port)]: implicit TLS
    certificate: str = ""
    key: str = ""
    plaintext_networks: list = field(default_factory=list)
    hostname: str = ""
    max_size: int = 35 * 1024 * 1024
    upstream_timeout: float = 60.0
    upstream_connections: int = 3
    upstream_idle: float = 10.0
    workers: int = 8

    @classmethod
    def from_settings(cls, **overrides):
        values = {
            "listen": settings.OAUTHMAIL_RELAY_LISTEN, "tls_listen": settings.OAUTHMAIL_RELAY_TLS_LISTEN,
            "certificate": settings.OAUTHMAIL_RELAY_TLS_CERT, "key": settings.OAUTHMAIL_RELAY_TLS_KEY,
            "plaintext_networks": settings.OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS,
            "hostname": settings.OAUTHMAIL_RELAY_HOSTNAME,
            "max_size": int(settings.OAUTHMAIL_RELAY_MAX_MESSAGE_MB * 1024 * 1024),
            "upstream_timeout": settings.OAUTHMAIL_RELAY_UPSTREAM_TIMEOUT,
            "upstream_connections": settings.OAUTHMAIL_RELAY_UPSTREAM_CONNECTIONS,
            "upstream_idle": settings.OAUTHMAIL_RELAY_UPSTREAM_IDLE,
            "workers": settings.OAUTHMAIL_RELAY_WORKERS,
        }
        values.update(overrides)
        return cls(**values)

    def tls_context(self):
        """The server's TLS context from the certificate and key files; None without a certificate."""
        if not self.certificate and not self.key:
            if self.tls_listen:
                raise RelayConfigError(_("Implicit TLS (OAUTHMAIL_RELAY_TLS_LISTEN) needs a certificate: set "
                                         "OAUTHMAIL_RELAY_TLS_CERT and OAUTHMAIL_RELAY_TLS_KEY."))
            if not self.plaintext_networks:
                raise RelayConfigError(_("Without a certificate no device could ever log in: set "
                                         "OAUTHMAIL_RELAY_TLS_CERT and OAUTHMAIL_RELAY_TLS_KEY (or, for devices on "
                                         "trusted networks only, OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS)."))
            return None
        if not self.certificate or not self.key:
            raise RelayConfigError(_("Set both OAUTHMAIL_RELAY_TLS_CERT and OAUTHMAIL_RELAY_TLS_KEY."))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        load_certificate(context, self.certificate, self.key)
        return context

    def check(self):
        if not self.listen and not self.tls_listen:
            raise RelayConfigError(_("Nothing to listen on: set OAUTHMAIL_RELAY_LISTEN or OAUTHMAIL_RELAY_TLS_LISTEN."))
        if self.max_size <= 0 or self.upstream_timeout <= 0 or self.upstream_connections < 1 or self.workers < 1:
            raise RelayConfigError(_("OAUTHMAIL_RELAY_MAX_MESSAGE_MB, OAUTHMAIL_RELAY_UPSTREAM_TIMEOUT, "
                                     "OAUTHMAIL_RELAY_UPSTREAM_CONNECTIONS and OAUTHMAIL_RELAY_WORKERS must be "
                                     "positive."))


def load_certificate(context, certificate, key):
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as error:
        raise RelayConfigError(_("Cannot use the certificate %(certificate)s with the key %(key)s: %(error)s") % {
            "certificate": certificate, "key": key, "error": error,
        }) from None


class _Session(Session):
    login_data = None  # aiosmtpd 1.4 sets it at every login, through a property that warns it is deprecated


class RelaySMTP(SMTP):
    """One device's connection."""

    def __init__(self, relay, *, implicit_tls):
        self.relay, self.implicit_tls, self.failed_logins = relay, implicit_tls, 0
        super().__init__(
            relay.handler, data_size_limit=relay.config.max_size, hostname=relay.hostname, ident="ESMTP oauthmail",
            tls_context=None if implicit_tls else relay.tls_context, auth_required=True, auth_require_tls=True,
            timeout=IDLE_TIMEOUT, loop=relay.loop,
        )

    def _create_session(self):
        return _Session(self.loop)

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first:  # not the STARTTLS upgrade of the same connection
            self.relay.sessions.add(self)
            plaintext = in_networks(self.session.peer[0], self.relay.config.plaintext_networks)
            self._auth_require_tls = not (self.implicit_tls or plaintext)

    def connection_lost(self, error):
        self.relay.sessions.discard(self)
        super().connection_lost(error)

    async def handle_exception(self, error):
        if isinstance(error, TLSSetupException):  # one line for the journal, not a traceback
            log.warning("STARTTLS with %s failed: %s. The relay accepts TLS 1.2 or later: a device that offers only "
                        "TLS 1.0 or 1.1 needs newer firmware.", self.session.peer[0], error.__cause__ or error)
            return "454 4.7.0 TLS not available"  # never sent: aiosmtpd closes the connection
        return await super().handle_exception(error)

    # --- AUTH: aiosmtpd reads the credentials; they are checked off the event loop --------------------

    def _authenticate(self, mechanism, auth_data):
        return AuthResult(success=True, auth_data=auth_data)  # only collects them: _check does the checking

    async def auth_PLAIN(self, _, args):
        return await self._check(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _, args):
        return await self._check(await super().auth_LOGIN(_, args))

    async def _check(self, collected):
        if not collected.success:  # a malformed answer or '*': aiosmtpd has replied already
            return collected
        address = self.session.peer[0]
        try:
            username = collected.auth_data.login.decode()
            password = collected.auth_data.password.decode()
        except UnicodeDecodeError:
            identity = None
        else:
            identity = await self.relay.blocking.run(
                services.relay_client_authenticate, username=username, password=password, address=address
            )
        if identity is not None:
            return AuthResult(success=True, auth_data=identity, message="235 2.7.0 Authentication successful")
        self.failed_logins += 1
        await asyncio.sleep(self.relay.throttle.failed(address))
        if self.failed_logins < MAX_FAILED_LOGINS or self.transport is None:
            return AuthResult(success=False, handled=False, message=INVALID)
        await self.push(INVALID)
        self.transport.close()
        return AuthResult(success=False, handled=True)

    # --- messages aiosmtpd refuses itself are events too ----------------------------------------------

    async def smtp_MAIL(self, arg):
        size = SIZE_PARAMETER.search(arg or "")
        if size and int(size.group(1)) > self.data_size_limit and self.session.authenticated:
            address, _params = self._getaddr(self._strip_command_keyword("FROM:", arg) or "")
            await self.event_handler.refused_locally(
                self.session, self.envelope, f"552 5.3.4 Message too big: at most {self.data_size_limit} bytes",
                mail_from=address,
            )
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg):
        """aiosmtpd's DATA, reading the message in large pieces (aiosmtpd reads a line at a time: a 100 KB
        scan is 1,300 trips through Python) within the size limit."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        if arg:
            return await self.push("501 Syntax: DATA")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await self._read_data()
        except asyncio.IncompleteReadError:  # the device hung up
            self.transport.close()
            return
        if content is None:
            reply = f"552 5.3.4 Message too big: at most {self.data_size_limit} bytes"
            await self.event_handler.refused_locally(self.session, self.envelope, reply)
            self._set_post_data_state()
            return await self.push(reply)
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def _read_data(self):
        """The message up to the line holding a single dot, dot-unstuffed; None when it is over the limit."""
        reader, pieces, size, tail, end = self._reader, [], 0, b"\r\n", False
        saved, reader._limit = reader._limit, DATA_PIECE
        try:
            while not end:
                try:
                    piece = await reader.readuntil(b".\r\n")
                except asyncio.LimitOverrunError as error:  # no ".\r\n" in this piece yet: keep it, read on
                    piece = await reader.readexactly(error.consumed)
                else:
                    end = _last(tail, piece, 5)[:2] == b"\r\n"  # the dot begins a line: the end of the data
                    piece = piece[:-3] if end else piece
                size += len(piece)
                tail = _last(tail, piece, 2)
                if pieces is not None and size > self.data_size_limit:
                    pieces = None  # too big: the rest is read and dropped
                elif pieces is not None:
                    pieces.append(piece)
        finally:
            reader._limit = saved
        if pieces is None:
            return None
        content = b"".join(pieces)
        content = content[1:] if content.startswith(b".") else content  # RFC 5321 4.5.2
        return content.replace(b"\r\n.", b"\r\n")


def _last(before, piece, count):
    """The last `count` bytes of `before` followed by `piece`, without copying a large piece."""
    return piece[-count:] if len(piece) >= count else (before + piece)[-count:]


class Relay:
    """The running relay: its listeners, the worker threads, the upstream connections."""

    def __init__(self, config, *, failure_delay=0.5):
        config.check()
        self.config = config
        self.tls_context = config.tls_context()
        self.hostname = config.hostname or socket.getfqdn()
        self.throttle = FailureThrottle(base=failure_delay)
        self.blocking = Blocking(workers=config.workers, token_workers=max(2, config.workers // 2))
        self.upstream = UpstreamPool(
            blocking=self.blocking, local_hostname=self.hostname, timeout=config.upstream_timeout,
            per_account=config.upstream_connections, idle=config.upstream_idle,
        )
        self.handler = RelayHandler(self)
        self.sessions, self.busy, self.servers, self.addresses, self.loop = set(), 0, [], [], None

    async def start(self):
        """Listen on every configured address; returns [(host, port, "STARTTLS" | "TLS")], ports as bound."""
        self.loop = asyncio.get_running_loop()
        self.upstream.start()
        listeners = [(host, port, False) for host, port in self.config.listen]
        listeners += [(host, port, True) for host, port in self.config.tls_listen]
        try:
            for host, port, implicit in listeners:
                server = await self.loop.create_server(
                    lambda implicit=implicit: RelaySMTP(self, implicit_tls=implicit), host, port,
                    ssl=self.tls_context if implicit else None, reuse_address=True,
                )
                self.servers.append(server)
                bound = server.sockets[0].getsockname()
                self.addresses.append((bound[0], bound[1], "TLS" if implicit else "STARTTLS"))
        except OSError:
            await self.stop(grace=0)
            raise
        return self.addresses

    def reload_certificate(self):
        """Read the certificate and key files again (after a renewal): new connections use them."""
        if self.tls_context is not None:
            load_certificate(self.tls_context, self.config.certificate, self.config.key)

    async def stop(self, grace=30):
        """Stop listening, let the messages being forwarded finish (at most `grace` seconds), then close."""
        for server in self.servers:
            server.close()
        deadline = self.loop.time() + grace
        while self.busy and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        await self.upstream.close()
        await asyncio.sleep(0)  # let the closed connections' callbacks run
        await self.loop.run_in_executor(None, self.blocking.shutdown)
