"""The relay's token events: one per message relayed or refused, on the account it was sent as.

Stored as a code and its facts (client, envelope, size, the answer), never a byte of the message's
content. `relay_message_counts` and `relay_message_totals` count them for the dashboard and the
account's page. The metrics' totals (`oauthmail_relay_messages_total`) cannot be counted from the
events, which prune_events deletes: each event adds one to a `Counter` row (accounts/services/runs.py)
in the event's own transaction, so no message costs a commit more.
"""
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q

from accounts.models import Account, TokenEvent
from accounts.services import log_event
from accounts.services.runs import counter_add

SENT_TOTAL, REFUSED_TOTAL = "relay_sent", "relay_refused"  # Counter names
RECENT = timedelta(hours=24)  # what the dashboard and an account's page count

RECIPIENTS_SHOWN = 5


def _recipients(rcpt_tos):
    shown = ", ".join(f"<{address}>" for address in rcpt_tos[:RECIPIENTS_SHOWN])
    more = len(rcpt_tos) - RECIPIENTS_SHOWN
    return f"{shown} (+{more})" if more > 0 else shown or "-"


def relay_event(*, account_id, account_identifier, client_name, actor, sent, mail_from, rcpt_tos=(), size=None,
                reply):
    """Record one message the relay sent (`sent`) or refused, with the answer the device was given.

    Its facts: the client, the envelope sender and recipients (the first five, then how many more), the
    size in bytes and the answer, as they were (oauthmail/texts.py words them in the reader's language)."""
    kind, code = ((TokenEvent.Kind.RELAY_SENT, "relay.sent") if sent else (TokenEvent.Kind.RELAY_REFUSED,
                                                                           "relay.refused"))
    params = {"client": client_name, "sender": mail_from or "", "recipients": _recipients(list(rcpt_tos)),
              "size": "-" if size is None else size, "reply": " ".join(reply.split())}
    account = Account(pk=account_id, identifier=account_identifier)  # all an event needs: no query
    with transaction.atomic():  # the event and the total it adds to are written together, or neither
        event = log_event(account=account, actor=actor, kind=kind, code=code, params=params)
        counter_add(name=SENT_TOTAL if sent else REFUSED_TOTAL)
    return event


def _events(since, until):
    events = TokenEvent.objects.filter(
        at__gte=since, kind__in=[TokenEvent.Kind.RELAY_SENT, TokenEvent.Kind.RELAY_REFUSED]
    )
    return events if until is None else events.filter(at__lt=until)


OUTCOMES = {
    "sent": Count("id", filter=Q(kind=TokenEvent.Kind.RELAY_SENT)),
    "refused": Count("id", filter=Q(kind=TokenEvent.Kind.RELAY_REFUSED)),
}


def relay_message_counts(*, since, until=None, accounts=None):
    """{account id: {"sent": n, "refused": n}} for messages relayed between `since` and `until` (now)."""
    events = _events(since, until)
    if accounts is not None:
        events = events.filter(account__in=accounts)
    rows = events.values("account_id").annotate(**OUTCOMES)
    return {row["account_id"]: {"sent": row["sent"], "refused": row["refused"]} for row in rows}


def relay_message_totals(*, since, until=None):
    """{"sent": n, "refused": n}: every account's messages between `since` and `until` (now), one query."""
    return _events(since, until).aggregate(**OUTCOMES)
