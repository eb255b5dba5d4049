"""The relay's token events: one per message relayed or refused, on the account it was sent as.

The facts (client, envelope, size, the answer) are separate values here and become one line of
text only in `_outcome`; never a byte of the message's content. `relay_message_counts` gives the
dashboard and the metrics what they count.
"""
from django.db.models import Count, Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Account, TokenEvent
from accounts.services import log_event

RECIPIENTS_SHOWN = 5


def _outcome(*, client_name, mail_from, rcpt_tos, size, reply):
    recipients = ", ".join(f"<{address}>" for address in rcpt_tos[:RECIPIENTS_SHOWN])
    if len(rcpt_tos) > RECIPIENTS_SHOWN:
        more = len(rcpt_tos) - RECIPIENTS_SHOWN
        recipients += " " + ngettext("and %(count)d more", "and %(count)d more", more) % {"count": more}
    values = {"client": client_name, "sender": mail_from or "", "recipients": recipients or "-",
              "size": "-" if size is None else size, "reply": " ".join(reply.split())}
    return _("Relay client %(client)s: <%(sender)s> to %(recipients)s, %(size)s bytes. Answer: %(reply)s") % values


def relay_event(*, account_id, account_identifier, client_name, actor, sent, mail_from, rcpt_tos=(), size=None,
                reply):
    """Record one message the relay sent (`sent`) or refused, with the answer the device was given."""
    kind = TokenEvent.Kind.RELAY_SENT if sent else TokenEvent.Kind.RELAY_REFUSED
    outcome = _outcome(client_name=client_name, mail_from=mail_from, rcpt_tos=list(rcpt_tos), size=size,
                       reply=reply)
    account = Account(pk=account_id, identifier=account_identifier)  # all an event needs: no query
    return log_event(account=account, actor=actor, kind=kind, outcome=outcome)


def relay_message_counts(*, since, until=None, accounts=None):
    """{account id: {"sent": n, "refused": n}} for messages relayed between `since` and `until` (now)."""
    events = TokenEvent.objects.filter(
        at__gte=since, kind__in=[TokenEvent.Kind.RELAY_SENT, TokenEvent.Kind.RELAY_REFUSED]
    )
    if until is not None:
        events = events.filter(at__lt=until)
    if accounts is not None:
        events = events.filter(account__in=accounts)
    rows = events.values("account_id").annotate(
        sent=Count("id", filter=Q(kind=TokenEvent.Kind.RELAY_SENT)),
        refused=Count("id", filter=Q(kind=TokenEvent.Kind.RELAY_REFUSED)),
    )
    return {row["account_id"]: {"sent": row["sent"], "refused": row["refused"]} for row in rows}
