"""One token operation per account at a time, across processes and machines.

A claim is a lease on the account's row: `claim_id` (who) and `claimed_until` (until when).
Whoever holds the claim may use (and so rotate) the refresh token; everyone else waits or skips.
Every claim is taken by a conditional UPDATE (`WHERE claim is free`), which SQLite and PostgreSQL
both perform atomically: of two processes claiming the same account, exactly one updates the row.

The refresh worker pool claims whole batches (`claim_batch`): on PostgreSQL the due, unclaimed rows
are first locked with `SELECT … FOR UPDATE SKIP LOCKED`, so that processes claiming at the same
moment take different rows instead of queuing behind each other; SQLite, which has one writer at
a time, needs no row lock. A batch is leased for a whole refresh and the time its accounts may wait
in the queue (`pool_lease_seconds()`), and the pool's process keeps every lease of its claim that
long while it lives (`PoolLeases.keep_alive`, every KEEP_ALIVE_EVERY seconds). Each account is then
`start`ed right before its refresh token is used, without asking the database as long as the
process knows the lease still holds (`PoolLeases`, which says why it may know), else by checking the
lease is still ours and lengthening it (`start`). A process that dies only delays its accounts until
their leases run out; it never makes two processes use one token.

A lease is only as good as its holder's promise to be done before it ends. Every request to the
identity provider is bounded as a whole (providers/http.py), and while the claim is held the
holder's thread is inside a Deadline that ends `lease_margin()` seconds before the lease: no
request starts, and none still waits for its answer, once that passes. So a refresh token is never
sent while another holder's request carrying it could still bring an answer back, however slowly
the provider answers; the margin is left for storing the answer. (Leases compare clocks across
machines: keep them in time, as NTP does; the margin absorbs small differences.)
"""
import math
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from oauthmail.deadlines import Deadline
from providers.models import Application

from .models import Account
from .statements import update_row

KEEP_ALIVE_EVERY = 15  # seconds between two renewals of a worker pool's leases (PoolLeases.keep_alive)
SECRETS = ("access_token", "refresh_token")
# What refreshing an account reads of it (accounts/services/tokens.py): a pool loads only these.
REFRESH_FIELDS = ("application", "identifier", "email", "sign_in_user", "flow", "status", "refresh_token",
                  "refresh_token_issued_at", "claim_id", "claimed_until")


class ClaimTimeout(Exception):
    pass


def lease_margin():
    """Seconds between the end of the last request under a claim and the end of its lease: for storing
    the answer (and for clocks that differ a little between machines). Two timeouts, at least 2 s."""
    return max(2.0, 2 * settings.OAUTHMAIL_HTTP_TIMEOUT)


def lease_seconds():
    """Long enough for every attempt of a refresh to finish: per attempt a token request (and maybe a
    discovery request) with its timeout, between attempts a backoff or a Retry-After sleep, then the
    margin. Whatever happens, no request under the claim outlasts the lease minus the margin."""
    from .services.tokens import RETRY_AFTER_CAP  # tokens imports this module

    attempts = max(1, settings.OAUTHMAIL_RETRY_ATTEMPTS)
    wait = max(RETRY_AFTER_CAP, settings.OAUTHMAIL_RETRY_BACKOFF * 2**attempts)
    return math.ceil(attempts * 2 * settings.OAUTHMAIL_HTTP_TIMEOUT + (attempts - 1) * wait + lease_margin())


def pool_lease_seconds():
    """A worker pool's lease: a whole refresh (lease_seconds()), and two renewal periods more, so that
    an account that waited in the queue since the last renewal still has a whole refresh's time."""
    return lease_seconds() + 2 * KEEP_ALIVE_EVERY


def _lease(seconds=None):
    """A new lease: (its end, for the database; the time.monotonic() by which the holder's work must end).
    The clock is read before the database is asked, so a slow database only shortens the holder's time."""
    seconds = lease_seconds() if seconds is None else seconds
    work_ends = time.monotonic() + seconds - lease_margin()
    return timezone.now() + timedelta(seconds=seconds), work_ends


def new_claim_id():
    return str(uuid.uuid4())


def unclaimed(now=None):
    """Accounts no one holds: never claimed, or the lease ran out."""
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now or timezone.now())


def _try_claim(account_id):
    claim_id = new_claim_id()
    until, work_ends = _lease()
    updated = Account.objects.filter(unclaimed(), pk=account_id).update(claim_id=claim_id, claimed_until=until)
    return (claim_id, work_ends) if updated else None


def try_claim(account_id):
    """Claim the account now, or return None when another process holds it."""
    claim = _try_claim(account_id)
    return claim[0] if claim else None


def release(account_id, claim_id):
    Account.objects.filter(pk=account_id, claim_id=claim_id).update(claim_id="", claimed_until=None)


def release_all(claim_id):
    """Give back every account still claimed under `claim_id` (a worker pool's run)."""
    return Account.objects.filter(claim_id=claim_id).update(claim_id="", claimed_until=None)


@contextmanager
def claimed(account_id, *, wait=None):
    """Hold the account's claim for the block, waiting for another holder to finish first. The block
    runs inside a Deadline that ends before the lease does (see the module's docstring)."""
    give_up = time.monotonic() + (lease_seconds() if wait is None else wait)
    while (claim := _try_claim(account_id)) is None:
        if time.monotonic() > give_up:
            raise ClaimTimeout(_("Another process is busy with this account's token; try again shortly."))
        time.sleep(0.1)
    claim_id, work_ends = claim
    try:
        with Deadline(until=work_ends):
            yield claim_id
    finally:
        release(account_id, claim_id)


@dataclass
class Batch:
    claimed: list = field(default_factory=list)  # Account rows, secrets loaded, ours to refresh
    busy: list = field(default_factory=list)  # identifiers of accounts another process holds
    last_pk: int | None = None  # where the next batch starts; None: nothing left
    work_ends: float = math.inf  # time.monotonic() by which work under the batch's lease must end


def claim_batch(queryset, *, claim_id, after_pk=0, size):
    """Claim up to `size` free rows of `queryset` whose pk is above `after_pk`, in pk order, leased for
    pool_lease_seconds(). Rows another process holds are named in `busy`.

    The same few queries whatever the size. The rows are read and claimed in one transaction in which
    no one else can change them (on PostgreSQL they are locked, FOR UPDATE; on SQLite the transaction
    holds the database's write lock from its start, IMMEDIATE): each row read free is claimed as it was
    read, its refresh token the current one. Only what a refresh reads is loaded (REFRESH_FIELDS), and
    each application once per batch.
    """
    lease_ends, work_ends = _lease(pool_lease_seconds())
    now = timezone.now()
    candidates = queryset.filter(pk__gt=after_pk).order_by("pk").only(*REFRESH_FIELDS)
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        rows = list(candidates[:size])
        free = [row for row in rows if row.claimed_until is None or row.claimed_until < now]
        taken = Account.objects.filter(unclaimed(now), pk__in=[row.pk for row in free]).update(
            claim_id=claim_id, claimed_until=lease_ends) if free else 0
    if taken != len(free):  # not on SQLite nor PostgreSQL, as said above: read back the rows that are ours
        free = list(Account.objects.filter(pk__in=[row.pk for row in free], claim_id=claim_id)
                    .only(*REFRESH_FIELDS).order_by("pk"))
    applications = Application.objects.in_bulk({row.application_id for row in free})
    for row in free:
        row.claim_id, row.claimed_until, row.application = claim_id, lease_ends, applications[row.application_id]
    ours = {row.pk for row in free}
    return Batch(claimed=free, busy=[row.identifier for row in rows if row.pk not in ours],
                 last_pk=rows[-1].pk if rows else None, work_ends=work_ends)


def start(account_id, claim_id):
    """Right before using the account's token: is the claim still ours? If so, lengthen it to cover
    a whole refresh and return a Deadline to do it in (see `claimed`). None when the lease ran out and
    another process took the account meanwhile."""
    until, work_ends = _lease()
    if update_row(Account, account_id, {"claimed_until": until}, claim_id=claim_id):
        return Deadline(until=work_ends)
    return None


class PoolLeases:
    """A worker pool's claim (`claim_id`), and what its process knows of the claim's leases without
    asking the database: that every row still claimed under `claim_id` is leased at least until
    `work_ends` (time.monotonic(), the margin deducted), so that no other process can have taken it.

    That holds from the first batch on: a batch's rows are leased until its own `work_ends` or later,
    and batches come in order. A renewal (`keep_alive`) leases every row of the claim anew; when it is
    written before `work_ends` has passed, no row of ours could have been taken before it (none had
    run out), so each one was lengthened and `work_ends` moves on. A renewal written later (the
    process was stopped, the database slow) breaks that chain for good: from then on every account
    is `start`ed by asking the database.
    """

    def __init__(self, claim_id=None):
        self.claim_id = claim_id or new_claim_id()
        self.work_ends = math.inf  # nothing claimed yet
        self._known = True
        self._lock = threading.Lock()

    def claimed(self, batch):
        with self._lock:
            self.work_ends = min(self.work_ends, batch.work_ends)

    def keep_alive(self):
        """Lease every row of the claim for pool_lease_seconds() more, while the process lives."""
        until, work_ends = _lease(pool_lease_seconds())
        Account.objects.filter(claim_id=self.claim_id, claimed_until__lt=until).update(claimed_until=until)
        written = time.monotonic()
        with self._lock:
            if written < self.work_ends:
                self.work_ends = work_ends
            else:
                self._known = False

    def start(self, account_id):
        """`start(account_id, claim_id)`, without a statement while the lease is known to hold long enough
        for a whole refresh."""
        needed = lease_seconds() - lease_margin()
        with self._lock:
            work_ends = self.work_ends if self._known else -math.inf
        if work_ends - time.monotonic() >= needed:
            return Deadline(until=work_ends)
        return start(account_id, self.claim_id)
