"""What the relay does with each message of a logged-in device (aiosmtpd's MAIL, RCPT and DATA hooks).

The envelope sender and every From (and Sender) address must be the account's own or one of its
send-as addresses; the hourly limit is counted; the message then goes to the account's server, and
the device's end of data is answered with that server's reply. Every message sent or refused is a
token event on the account (relay/events.py).

Replies to devices are SMTP protocol text: English and ASCII (RFC 5321 allows nothing else without
SMTPUTF8), with enhanced status codes, and not translated; the events the admin shows are.
"""
import email.policy
import logging
from email.parser import BytesHeaderParser

from . import events, services
from .upstream import ascii_line

log = logging.getLogger("relay")
MAX_RECIPIENTS = 500  # Exchange Online's limit per message
ADDRESSES_NAMED = 3
HEADER_LIMIT = 256 * 1024


def header_addresses(content, names=("From", "Sender")):
    """The addresses in the message's From and Sender headers (None for a header that holds no address)."""
    end = content.find(b"\r\n\r\n", 0, HEADER_LIMIT)
    head = content[: end + 2] if end >= 0 else content[:HEADER_LIMIT]
    message = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    found = {}
    for name in names:
        for header in message.get_all(name, []):
            addresses = [address.addr_spec for address in getattr(header, "addresses", ()) if address.addr_spec]
            found.setdefault(name, []).extend(addresses or [None])
    return found


class RelayHandler:
    def __init__(self, relay):
        self.relay = relay

    # --- MAIL FROM, RCPT TO -------------------------------------------------------------------------

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        identity = session.auth_data
        try:
            sending = await self.relay.blocking.run(services.relay_sending, identity=identity)
        except services.RelayRefusal as refusal:
            await self._event(identity, sent=False, mail_from=address, reply=refusal.reply)
            return refusal.reply
        if not sending.allows(address):
            return await self._refuse(sending, address, (), None, ascii_line(
                f"550 5.7.1 Sender address <{address}> is not allowed for relay client {identity.name}: "
                f"send as {_named(sending.allowed)}"
            ))
        limit = sending.hourly_limit
        if limit is not None and not await self.relay.blocking.run(
            services.relay_quota_left, client_id=identity.client_id, limit=limit
        ):
            return await self._refuse(sending, address, (), None, _limit_reply(limit))
        envelope.mail_from, envelope.sending = address, sending
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return f"452 4.5.3 Too many recipients: at most {MAX_RECIPIENTS} a message"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    # --- DATA ---------------------------------------------------------------------------------------

    async def handle_DATA(self, server, session, envelope):
        self.relay.busy += 1
        try:
            return await self._deliver(envelope.sending, envelope)
        finally:
            self.relay.busy -= 1

    async def _deliver(self, sending, envelope):
        content, identity = envelope.original_content, sending.identity
        size, rcpt_tos = len(content), list(envelope.rcpt_tos)
        refusal = ascii_line(self._check_headers(sending, content))
        if refusal:
            return await self._refuse(sending, envelope.mail_from, rcpt_tos, size, refusal)
        counted = sending.hourly_limit is not None
        if counted and not await self.relay.blocking.run(
            services.relay_quota_take, client_id=identity.client_id, limit=sending.hourly_limit
        ):
            return await self._refuse(sending, envelope.mail_from, rcpt_tos, size, _limit_reply(sending.hourly_limit))
        reply = await self.relay.upstream.send(sending=sending, mail_from=envelope.mail_from, rcpt_tos=rcpt_tos,
                                               content=content, options=envelope.mail_options)
        if counted and not reply.sent:
            try:
                await self.relay.blocking.run(services.relay_quota_give_back, client_id=identity.client_id)
            except Exception:
                log.exception("Could not give back a message of %s's hourly limit", identity.name)
        await self._event(identity, sent=reply.sent, mail_from=envelope.mail_from, rcpt_tos=rcpt_tos, size=size,
                          reply=str(reply))
        log.info("%s for %s: <%s> to %d recipient(s), %d bytes: %s", "Relayed" if reply.sent else "Refused",
                 identity.name, envelope.mail_from, len(rcpt_tos), size, reply)
        return str(reply)

    def _check_headers(self, sending, content):
        found = header_addresses(content)
        if not found.get("From"):
            return f"550 5.6.0 The message has no From header: it must be From: {sending.email}"
        for name in ("From", "Sender"):
            for address in found.get(name, []):
                if address is None:
                    return f"550 5.6.0 The {name} header holds no address: it must be {sending.email}"
                if not sending.allows(address):
                    return (f"550 5.7.1 {name} address <{address}> is not allowed for relay client "
                            f"{sending.identity.name}: send as {_named(sending.allowed)}")
        return ""

    async def refused_locally(self, session, envelope, reply, mail_from=None):
        """The SMTP layer refused a message of a logged-in device itself (too big)."""
        if session.authenticated:
            await self._event(session.auth_data, sent=False, mail_from=mail_from or envelope.mail_from,
                              rcpt_tos=envelope.rcpt_tos, reply=reply)

    # --- refusals and events ------------------------------------------------------------------------

    async def _refuse(self, sending, mail_from, rcpt_tos, size, reply):
        await self._event(sending.identity, sent=False, mail_from=mail_from, rcpt_tos=rcpt_tos, size=size, reply=reply)
        log.info("Refused message for %s: <%s>: %s", sending.identity.name, mail_from, reply)
        return reply

    async def _event(self, identity, *, sent, mail_from, reply, rcpt_tos=(), size=None):
        """Record the event; a failure to record it never changes the device's answer (a message the
        provider accepted must not be refused, or the device would send it twice)."""
        try:
            await self.relay.blocking.run(
                events.relay_event, account_id=identity.account_id, account_identifier=identity.account_identifier,
                client_name=identity.name, actor=identity.actor, sent=sent, mail_from=mail_from,
                rcpt_tos=list(rcpt_tos), size=size, reply=reply,
            )
        except Exception:
            log.exception("Could not record the relay event of %s: <%s>: %s", identity.name, mail_from, reply)

    async def handle_exception(self, error):
        log.exception("SMTP relay: unexpected error", exc_info=error)
        return "451 4.3.0 Local error in processing; try again later"


def _named(addresses):
    named = ", ".join(addresses[:ADDRESSES_NAMED])
    return named + (f" (or {len(addresses) - ADDRESSES_NAMED} more)" if len(addresses) > ADDRESSES_NAMED else "")


def _limit_reply(limit):
    return f"451 4.7.1 This relay client may send {limit} messages an hour and has sent them: try again later"
