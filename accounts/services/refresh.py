"""Refreshing every due account, for cron (`manage.py refresh_tokens`): a pool of worker threads.

The work is HTTP-bound, so threads suffice. The calling thread claims due accounts in batches
(accounts/claims.py) and queues them; each worker refreshes one account at a time on its own
database connection, kept for the whole run. Memory stays flat in the number of accounts: rows are
read a batch at a time and the queue is bounded. Each account costs a constant number of queries:
one transaction storing the tokens (giving the claim back in the same UPDATE) and logging the event;
its claim is taken with its batch's, and checked again only when the process cannot know it still
holds (claims.PoolLeases).
"""
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import ProviderError

from .. import claims
from ..models import Account
from .runs import refresh_run_finish, refresh_run_start
from .tokens import REFRESHABLE, _not_refreshable, _refresh_claimed

logger = logging.getLogger(__name__)

KEEP_ALIVE_AFTER = timedelta(days=7)  # refresh a refresh token unused this long, so it never lapses
MIN_BATCH = 25  # accounts claimed at once, at least: a claim costs the same few queries for 1 or 100


def refreshable():
    """Accounts a refresh can work on: those with a token, and new ones given a refresh token (import)."""
    return Q(status__in=REFRESHABLE) | (Q(status=Account.Status.NEW) & ~Q(refresh_token=""))


def due_accounts(*, within, now=None):
    now = now or timezone.now()
    return (
        Account.objects.filter(refreshable())
        .annotate(last_used=Coalesce(F("last_refreshed_at"), F("token_initialized_at")))
        .filter(
            Q(access_token_expires_at__isnull=True)
            | Q(access_token_expires_at__lte=now + within)
            | Q(last_used__lte=now - KEEP_ALIVE_AFTER)
        )
    )


@dataclass
class RefreshReport:
    """What a run did. Failures are always listed; refreshed and skipped accounts only with `details`,
    so that a run over many accounts keeps counts, not lists."""

    details: bool = True
    refreshed: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"refreshed": 0, "failed": 0, "skipped": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, outcome, entry):
        with self._lock:
            self.counts[outcome] += 1
            if outcome == "failed" or self.details:
                getattr(self, outcome).append(entry)

    @property
    def done(self):
        return sum(self.counts.values())

    def as_dict(self):
        return {
            "refreshed": self.refreshed,
            "failed": self.failed,
            "skipped": self.skipped,
            "summary": dict(self.counts),
        }


def refresh_due(*, within, identifiers=(), actor="cron", workers=8, progress=None, stop=None, details=True):
    """Refresh every due account (or the named ones, due or not), skipping any another process holds.

    `workers` threads refresh at once. `progress(report, total=None)` is called once with the number
    of accounts to do, then after each account (from any thread). Once `stop` (a threading.Event) is
    set, no new account is started: those being refreshed finish, the others are given back.
    """
    report = RefreshReport(details=details)
    run, started = refresh_run_start(actor=actor, partial=bool(identifiers))
    try:
        return _refresh(report, within=within, identifiers=identifiers, actor=actor, workers=workers,
                        progress=progress, stop=stop)
    finally:
        refresh_run_finish(run=run, started=started, counts=report.counts)


def _refresh(report, *, within, identifiers, actor, workers, progress, stop):
    if identifiers:
        accounts = Account.objects.filter(identifier__in=identifiers)
        missing = set(identifiers) - set(accounts.values_list("identifier", flat=True))
        for identifier in sorted(missing):
            report.add("failed", {"account": identifier, "status": "", "error": _("No such account.")})
        for account in accounts.exclude(refreshable()).only("identifier", "status", "last_error", "last_error_params"):
            report.add("failed", {"account": account.identifier, "status": account.status,
                                  "error": _not_refreshable(account)})
        accounts = accounts.filter(refreshable())
    else:
        accounts = due_accounts(within=within)
    if progress:
        progress(report, total=report.done + accounts.count())
    size = max(MIN_BATCH, 2 * workers)  # the queue holds `workers`: claims are half as many for as many waits
    if not _threads_share_the_database():
        logger.debug("Refreshing in the calling thread: its database work is not visible to other threads.")
        workers = 0
    run = _Run(report=report, actor=actor, stop=stop, progress=progress)
    pool = _Pool(run, workers)
    try:
        last_pk = 0
        while not run.stopping():
            pool.wait_for_room()
            batch = claims.claim_batch(accounts, claim_id=run.leases.claim_id, after_pk=last_pk, size=size)
            if batch.last_pk is None:
                break
            run.leases.claimed(batch)
            last_pk = batch.last_pk
            for identifier in batch.busy:
                run.done("skipped", {"account": identifier, "reason": _("busy in another process")})
            for account in batch.claimed:
                pool.submit(account)
    except BaseException:
        run.abort.set()  # the workers finish the accounts they are refreshing and start no other
        raise
    finally:
        pool.finish()
        claims.release_all(run.leases.claim_id)
    return report


def _threads_share_the_database():
    """Worker threads have their own connections: they cannot see the calling thread's uncommitted
    work (a transaction is open), nor an in-memory SQLite database safely."""
    if connection.in_atomic_block:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


class _Run:
    def __init__(self, *, report, actor, stop, progress):
        self.report, self.actor, self.stop, self.progress = report, actor, stop, progress
        self.abort = threading.Event()
        self.leases = claims.PoolLeases()

    def stopping(self):
        return self.abort.is_set() or (self.stop is not None and self.stop.is_set())

    def done(self, outcome, entry):
        self.report.add(outcome, entry)
        if self.progress:
            self.progress(self.report)

    def refresh(self, account):
        """Refresh one claimed account and give it back. Errors are reported, never raised, so that
        a worker always goes on to the next account."""
        if self.stopping():
            return  # not started: given back with the others by release_all()
        entry = {"account": account.identifier}
        released = False
        try:
            deadline = self.leases.start(account.pk)
            if deadline is None:
                self.done("skipped", {**entry, "reason": _("busy in another process")})
                return
            with deadline:  # the claim is given back with the tokens, in one statement
                tokens = _refresh_claimed(account=account, actor=self.actor, stopping=self.stopping,
                                          release=self.leases.claim_id)
            released = True
            self.done("refreshed", {**entry, "expires_at": tokens.expires_at.isoformat()})
        except ProviderError as error:
            self.done("failed", {**entry, "status": account.status, "error": str(error), "code": error.code})
        except Exception as error:  # a bug or a database failure: report it and go on with the others
            logger.exception("Refreshing %s failed", account.identifier)
            connection.close_if_unusable_or_obsolete()
            self.done("failed", {**entry, "status": account.status, "error": type(error).__name__,
                                 "code": "internal"})
        if released:
            return
        try:
            claims.release(account.pk, self.leases.claim_id)
        except Exception:  # the lease runs out by itself
            logger.exception("Could not give back the claim on %s", account.identifier)
            connection.close_if_unusable_or_obsolete()


class _Pool:
    """`workers` threads taking claimed accounts from a bounded queue; with 0 workers, the calling
    thread refreshes each account as it is submitted."""

    def __init__(self, run, workers):
        self.run = run
        self.queue = queue.Queue(maxsize=max(1, workers))
        self.threads = [threading.Thread(target=self._work, name=f"refresh-{n}", daemon=True)
                        for n in range(workers)]
        self.next_keep_alive = time.monotonic() + claims.KEEP_ALIVE_EVERY
        for thread in self.threads:
            thread.start()

    def _work(self):
        try:
            while (account := self.queue.get()) is not None:
                self.run.refresh(account)
        finally:
            connection.close()

    def _keep_alive(self):
        """Keep the leases of the claimed accounts from running out."""
        if time.monotonic() >= self.next_keep_alive:
            self.run.leases.keep_alive()
            self.next_keep_alive = time.monotonic() + claims.KEEP_ALIVE_EVERY

    def submit(self, account):
        if not self.threads:
            self.run.refresh(account)
            self._keep_alive()
            return
        while True:
            try:
                return self.queue.put(account, timeout=1)
            except queue.Full:
                self._keep_alive()

    def wait_for_room(self):
        """Claim the next batch only when the workers are about to need it, so that claimed
        accounts wait in the queue briefly."""
        while self.threads and self.queue.qsize() > len(self.threads) // 2 and not self.run.stopping():
            self._keep_alive()
            time.sleep(0.005)

    def finish(self):
        """Let the workers empty the queue, then end them. Idempotent."""
        for _thread in self.threads:
            self.submit(None)
        for thread in self.threads:
            while thread.is_alive():
                thread.join(timeout=1)
                self._keep_alive()
        self.threads = []
