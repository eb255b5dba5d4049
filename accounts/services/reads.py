"""Token reads in the audit trail, summarised: one event per reader, account and hour, with a count.

A read of a valid token must not cost a write, yet every read stays attributable to its reader:
- the first read of an account by a reader in an hour, in this process, is written at once (added to
  the hour's event when another process already wrote it, else a new event). Whatever happens to the
  process afterwards, the trail says who read which token in that hour;
- the next reads in that hour are counted in memory and added to that event (`count`, `last_at`) by a
  background thread every OAUTHMAIL_READ_EVENTS_FLUSH seconds, and when the process exits. A process
  killed outright (SIGKILL, power loss) loses at most that many seconds of counts, never the fact that
  a reader read a token.
With OAUTHMAIL_READ_EVENTS_FLUSH = 0 every read is written as it happens.
"""
import atexit
import logging
import os
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from ..models import TokenEvent

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)

_lock = threading.Lock()
_pending = {}  # (account pk, identifier, actor, hour) -> [reads not yet written, the last one's time, params]
_written = set()  # the keys whose event this process has written this hour
_owner = {"pid": None, "thread": None, "at_exit": False}


def read_record(*, account, actor, params):
    """Count one read of the account's token by `actor` (an API client, ...): see the module's docstring."""
    now = timezone.now()
    key = (account.pk, account.identifier, actor, now.replace(minute=0, second=0, microsecond=0))
    with _lock:
        _forget_parent()
        if key in _written and settings.OAUTHMAIL_READ_EVENTS_FLUSH > 0:
            entry = _pending.setdefault(key, [0, now, params])
            entry[0] += 1
            entry[1] = now
            _start_writer()
            return
        _written.add(key)
    try:
        _add(key, count=1, last_at=now, params=params)
    except BaseException:
        with _lock:
            _written.discard(key)
        raise


def flush():
    """Write the counted reads now (the background thread does it every OAUTHMAIL_READ_EVENTS_FLUSH
    seconds). A count that cannot be written is kept for the next time; the error is logged."""
    with _lock:
        _forget_parent()
        pending = dict(_pending)
        _pending.clear()
        this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
        _written.difference_update({key for key in _written if key[3] < this_hour})
    keys = list(pending)
    for done, key in enumerate(keys):
        try:
            _add(key, count=pending[key][0], last_at=pending[key][1], params=pending[key][2])
        except Exception:
            logger.exception("Could not write the counts of token reads; kept for the next try")
            with _lock:
                for unwritten in keys[done:]:
                    count, last_at, params = pending[unwritten]
                    entry = _pending.setdefault(unwritten, [0, last_at, params])
                    entry[0] += count
                    entry[1] = max(entry[1], last_at)
            return


def forget():
    """Write the counted reads, then forget which hours' events this process has written: the next read
    writes its event again. For a database emptied underneath the process (between tests)."""
    flush()
    with _lock:
        _written.clear()


def pending_reads():
    """How many reads are counted in memory, not yet written."""
    with _lock:
        return sum(entry[0] for entry in _pending.values())


def _add(key, *, count, last_at, params):
    account_id, identifier, actor, hour = key
    reads = TokenEvent.objects.filter(account_id=account_id, account_identifier=identifier, kind=TokenEvent.Kind.READ,
                                      actor=actor, at__gte=hour, at__lt=hour + HOUR)
    if reads.update(count=F("count") + count, last_at=Greatest(Coalesce(F("last_at"), F("at")), Value(last_at))):
        return
    event = TokenEvent(account_id=account_id, account_identifier=identifier, actor=actor, kind=TokenEvent.Kind.READ,
                       code="token.read", params=params, count=count, at=last_at,
                       last_at=last_at if count > 1 else None)
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:  # the account was deleted meanwhile: its events keep its identifier
        event.pk, event.account_id = None, None
        event.save(force_insert=True)


def _forget_parent():
    """In a child process (a server forking workers), the parent's counts are the parent's to write."""
    if _owner["pid"] != os.getpid():
        _owner.update(pid=os.getpid(), thread=None)  # an inherited at-exit flush finds nothing to write
        _pending.clear()
        _written.clear()


def _start_writer():
    thread = _owner["thread"]
    if thread is None or not thread.is_alive():
        if not _owner["at_exit"]:
            atexit.register(_flush_at_exit)
            _owner["at_exit"] = True
        _owner["thread"] = threading.Thread(target=_write_periodically, name="token-reads", daemon=True)
        _owner["thread"].start()


def _write_periodically():
    """Flush every OAUTHMAIL_READ_EVENTS_FLUSH seconds; end when nothing is left (the next count restarts it)."""
    try:
        while True:
            time.sleep(settings.OAUTHMAIL_READ_EVENTS_FLUSH)
            flush()
            with _lock:
                if not _pending:
                    _owner["thread"] = None if _owner["thread"] is threading.current_thread() else _owner["thread"]
                    return
    finally:
        connection.close()


def _flush_at_exit():
    try:
        flush()
    except Exception:  # the database may be gone at exit: nothing more can be done
        logger.exception("Could not write the last token reads")
