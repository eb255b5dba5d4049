"""Forwarding a message to its account's SMTP server, logged in with SASL XOAUTH2 (aiosmtplib).

- The server is the account's (`accounts.connection.mail_server`), its certificate checked as the
  account says (`ssl_context`); the token comes from `token_get`, the same claims and minimum
  validity as every other consumer (client credentials for an app-only account).
- Logged-in connections are kept per account for `idle` seconds and reused (RSET semantics: each
  message is its own MAIL transaction); at most `per_account` messages of one account are with its
  server at once (Exchange Online refuses a fourth with 432 4.3.2), the others wait their turn.
- A message is answered from the server's own reply to it: 250 only when the server said 250; its
  4xx and 5xx are passed on with its words. The whole exchange (waiting for a connection, logging
  in, the message) must end within `timeout` seconds, or the device is told to try again (451).
- When the server refuses a token, the account's token is refreshed once (at most once a minute per
  account) and the login tried again: a revoked grant turns the account `reauth_required` there.
"""
import asyncio
import base64
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

import aiosmtplib
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.connection import sasl_initial_response, ssl_context
from accounts.models import Account, Security
from accounts.services import TokenUnavailable, token_get, token_refresh
from providers.base import ProviderError

ACTOR = "smtp-relay"
RENEW_INTERVAL = 60  # seconds: a token the server refused is refreshed at most this often per account
# A kept connection is used for new messages at most this long after its login, and never once the
# token it logged in with has expired: a revoked grant is noticed within minutes.
MAX_CONNECTION_AGE = 300
REPLY_LENGTH = 400


@dataclass(frozen=True)
class Reply:
    """The answer for the device's end of data; `sent` when the server accepted the message."""

    code: int
    text: str
    sent: bool = False

    def __str__(self):
        return f"{self.code} {self.text}"


def passed_on(code, words):
    """A server's reply, as the device may be given it: one ASCII line; 421 (the server closing) and
    anything unexpected become 451, so the device keeps its connection and retries."""
    text = ascii_line(str(words))
    if code == 421 or not 400 <= code < 600:
        code = 451
    return Reply(code, text)


class _Failure(Exception):
    def __init__(self, reply):
        super().__init__(str(reply))
        self.reply = reply


class _Stale(Exception):
    """A kept connection turned out closed before this message was sent: open a new one."""


class _Connection:
    """A connection logged in to the provider, usable until `usable_until` (loop time)."""

    def __init__(self, smtp, loop, token_expires_at):
        self.smtp, self.loop, self.reused = smtp, loop, False
        self.last_used = loop.time()
        token_left = (token_expires_at - timezone.now()).total_seconds() if token_expires_at else 0
        self.usable_until = self.last_used + min(MAX_CONNECTION_AGE, token_left)

    def close(self):
        self.smtp.close()


# --- tokens, in the token worker threads ------------------------------------------------------------


_contexts = {}  # account id -> (the account's updated_at, its TLS context)


def _tls_context(account):
    """The account's TLS context (`ssl_context`), made again only when the account changes: making one
    loads every system CA certificate, some 40 ms of CPU, more than all the rest of a login."""
    updated_at, context = _contexts.get(account.pk, (None, None))
    if context is None or updated_at != account.updated_at:
        context = ssl_context(account=account)
        _contexts[account.pk] = (account.updated_at, context)
    return context


@sensitive_variables("token")
def _credentials(*, account_id):
    """(token, its expiry, TLS context) for logging in as the account; TokenUnavailable when there is none."""
    account = Account.objects.select_related("application").get(pk=account_id)
    token, expires_at = token_get(account=account, actor=ACTOR)
    return token, expires_at, _tls_context(account)


@sensitive_variables("stale")
def _renewed_credentials(*, account_id, stale):
    """The server refused `stale`: refresh the token, unless another process already did."""
    account = Account.objects.select_related("application").get(pk=account_id)
    if account.access_token == stale:
        try:
            token_refresh(account=account, actor=ACTOR)
        except ProviderError as error:  # recorded on the account: `reauth_required` for a revoked grant
            raise TokenUnavailable(str(error), code="reauth_required" if error.reauth else "provider_error") from None
    return _credentials(account_id=account_id)


class _Tokens:
    """One token request at a time per account in this process; callers arriving meanwhile share it."""

    def __init__(self, blocking):
        self._blocking, self._pending, self._renewed_at = blocking, {}, {}

    async def get(self, account_id):
        return await self._shared(("get", account_id), _credentials, account_id=account_id)

    def may_renew(self, account_id, now):
        last = self._renewed_at.get(account_id)
        return last is None or now - last >= RENEW_INTERVAL

    async def renew(self, account_id, stale, now):
        self._renewed_at[account_id] = now
        return await self._shared(("renew", account_id), _renewed_credentials, account_id=account_id, stale=stale)

    def _done(self, key, future):
        if self._pending.get(key) is future:
            del self._pending[key]
        if not future.cancelled():
            future.exception()  # retrieved here too: every waiter may have given up (timed out) meanwhile

    async def _shared(self, key, function, **kwargs):
        future = self._pending.get(key)
        if future is None:
            future = asyncio.ensure_future(self._blocking.run_token(function, **kwargs))
            self._pending[key] = future
            future.add_done_callback(lambda done: self._done(key, done))
        try:
            return await asyncio.shield(future)
        except TokenUnavailable as error:
            raise _Failure(Reply(451, "4.7.0 " + ascii_line(
                f"oauthmail has no valid token for this mailbox, try again later: {error}"
            ))) from None


def ascii_line(text):
    """One line of ASCII for an SMTP reply (RFC 5321), not too long: accents dropped, other letters "?"."""
    text = "".join(c for c in unicodedata.normalize("NFKD", " ".join(text.split())) if not unicodedata.combining(c))
    return text.encode("ascii", "replace").decode()[:REPLY_LENGTH]


# --- the pool -----------------------------------------------------------------------------------------


class UpstreamPool:
    def __init__(self, *, blocking, local_hostname, timeout, per_account, idle):
        self._tokens = _Tokens(blocking)
        self._hostname, self._timeout, self._per_account, self._idle_limit = local_hostname, timeout, per_account, idle
        self._idle = defaultdict(list)  # (account id, e-mail, server) -> [_Connection], most recent last
        self._turns = {}  # account id -> asyncio.Semaphore(per_account)
        self._reaper, self._quitting = None, set()
        self.stats = Counter()  # logins, messages, reused, stale

    def start(self):
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close(self):
        if self._reaper:
            self._reaper.cancel()
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def send(self, *, sending, mail_from, rcpt_tos, content, options):
        """Send one message as `sending` (a relay.services.Sending); returns the Reply for the device."""
        server = sending.server
        if server is None:
            return Reply(451, "4.3.5 " + ascii_line(sending.server_problem))
        turn = self._turns.setdefault(sending.account_id, asyncio.Semaphore(self._per_account))
        try:
            async with asyncio.timeout(self._timeout), turn:
                return await self._send(sending, mail_from, rcpt_tos, content, options)
        except _Failure as failure:
            return failure.reply
        except TimeoutError:
            return Reply(451, f"4.4.2 No answer from {server} within {self._timeout:g} seconds; try again later")
        except (aiosmtplib.SMTPException, OSError) as error:
            return Reply(451, "4.4.2 " + ascii_line(f"The connection to {server} failed: {error}; try again later"))

    async def _send(self, sending, mail_from, rcpt_tos, content, options):
        key = (sending.account_id, sending.email, sending.server)
        connection = self._take_idle(key)
        if connection is not None:
            try:
                return await self._transaction(key, connection, mail_from, rcpt_tos, content, options)
            except _Stale:
                self.stats["stale"] += 1
        connection = await self._open(sending)
        return await self._transaction(key, connection, mail_from, rcpt_tos, content, options)

    def _take_idle(self, key):
        connections = self._idle.get(key)
        while connections:
            connection = connections.pop()
            if connection.smtp.is_connected and self._usable(connection):
                connection.reused = True
                self.stats["reused"] += 1
                return connection
            connection.close()
        return None

    def _usable(self, connection):
        now = connection.loop.time()
        return now - connection.last_used < self._idle_limit and now < connection.usable_until

    async def _transaction(self, key, connection, mail_from, rcpt_tos, content, options):
        keep = False
        try:
            reply, keep = await self._exchange(connection, mail_from, rcpt_tos, content, options)
            self.stats["messages"] += 1
            return reply
        finally:
            if keep:
                connection.last_used = connection.loop.time()
                self._idle[key].append(connection)
            else:
                connection.close()

    async def _exchange(self, connection, mail_from, rcpt_tos, content, options):
        """(Reply, whether the connection may be kept). MAIL, every RCPT, then DATA only if all were accepted."""
        smtp = connection.smtp
        wanted = [option for option in options if option.startswith("BODY=") and smtp.supports_extension("8bitmime")]
        if smtp.supports_extension("size"):
            wanted.append(f"SIZE={len(content)}")
        try:
            await smtp.mail(mail_from, options=wanted)
        except aiosmtplib.SMTPServerDisconnected:
            if connection.reused:
                raise _Stale from None
            raise
        except aiosmtplib.SMTPResponseException as error:
            if connection.reused and error.code in (421, 503):
                raise _Stale from None
            return passed_on(error.code, error.message), error.code != 421
        refused = []
        for address in rcpt_tos:
            try:
                await smtp.rcpt(address)
            except aiosmtplib.SMTPRecipientRefused as error:
                refused.append((address, error))
        if refused:
            await smtp.rset()
            temporary = [error for _address, error in refused if error.code < 500]
            code = (temporary or [refused[0][1]])[0].code
            words = "; ".join(f"<{address}>: {error.code} {error.message}" for address, error in refused)
            return passed_on(code, f"Not sent to anyone: the server refused {words}"), True
        try:
            response = await smtp.data(content)
        except aiosmtplib.SMTPResponseException as error:
            return passed_on(error.code, error.message), error.code != 421
        return Reply(response.code, ascii_line(response.message), sent=True), True

    async def _open(self, sending):
        """A new connection, logged in as the account; raises _Failure with the reply for the device."""
        now = asyncio.get_running_loop().time()
        token, expires_at, context = await self._tokens.get(sending.account_id)
        reply, smtp = await self._login(sending, token, context)
        if reply.code != 235 and self._tokens.may_renew(sending.account_id, now):
            smtp.close()
            token, expires_at, context = await self._tokens.renew(sending.account_id, token, now)
            reply, smtp = await self._login(sending, token, context)
        if reply.code != 235:
            smtp.close()
            code = 554 if 500 <= reply.code < 600 else 451
            raise _Failure(Reply(code, f"{code // 100}.7.0 " + ascii_line(
                f"{sending.server} refused oauthmail's login as {sending.email}: {reply}"
            )))
        return _Connection(smtp, asyncio.get_running_loop(), expires_at)

    @sensitive_variables("token", "initial")
    async def _login(self, sending, token, context):
        server = sending.server
        smtp = aiosmtplib.SMTP(
            hostname=server.host, port=server.port, use_tls=server.security == Security.TLS,
            start_tls=server.security == Security.STARTTLS, tls_context=context,
            local_hostname=self._hostname, timeout=self._timeout,
        )
        self.stats["logins"] += 1
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:  # again after STARTTLS (RFC 3207)
                await smtp.ehlo()
            initial = sasl_initial_response(mechanism="XOAUTH2", email=sending.email, token=token, server=server)
            response = await smtp.execute_command(b"AUTH", b"XOAUTH2", base64.b64encode(initial.encode()))
            if response.code == 334:  # an error challenge: an empty answer brings the final reply
                response = await smtp.execute_command(b"")
        except (aiosmtplib.SMTPException, OSError) as error:
            smtp.close()
            words = ascii_line(f"Could not log in to {server}: {error}; try again later")
            raise _Failure(Reply(451, f"4.4.1 {words}")) from None
        return passed_on(response.code, response.message) if response.code != 235 else Reply(235, ""), smtp

    async def _reap(self):
        """Close connections kept longer than `idle` seconds without a message."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(1.0, self._idle_limit / 2))
            for key, connections in list(self._idle.items()):
                fresh = [connection for connection in connections if self._usable(connection)]
                for connection in connections:
                    if connection not in fresh:
                        task = loop.create_task(_quit(connection))
                        self._quitting.add(task)  # a reference, until it is done
                        task.add_done_callback(self._quitting.discard)
                if fresh:
                    self._idle[key] = fresh
                else:
                    del self._idle[key]


async def _quit(connection):
    try:
        async with asyncio.timeout(5):
            await connection.smtp.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        connection.close()
