"""Runs of refresh_tokens, and the totals that only grow (for Prometheus counters), kept in the database
so that every process (cron, the web server's workers) sees the same figures."""
import logging
import time

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import Counter, RefreshRun

logger = logging.getLogger(__name__)

REFRESH_SUCCESSES = "refresh_success"
REFRESH_FAILURES = "refresh_failure"


def counter_add(*, name, amount=1):
    """Add `amount` to the named total, atomically (several processes may add at once)."""
    if not amount:
        return
    if Counter.objects.filter(name=name).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            Counter.objects.create(name=name, value=amount)
    except IntegrityError:  # created meanwhile by another process
        Counter.objects.filter(name=name).update(value=F("value") + amount)


def counter_values():
    return dict(Counter.objects.values_list("name", "value"))


def refresh_run_start(*, actor, partial):
    return RefreshRun.objects.create(actor=actor[:150], partial=partial), time.monotonic()


def refresh_run_finish(*, run, started, counts):
    """Record what the run did; never raises (a run's work is done and saved whatever happens here)."""
    try:
        RefreshRun.objects.filter(pk=run.pk).update(
            finished_at=timezone.now(), duration=round(time.monotonic() - started, 3),
            refreshed=counts["refreshed"], failed=counts["failed"], skipped=counts["skipped"],
        )
        counter_add(name=REFRESH_SUCCESSES, amount=counts["refreshed"])
        counter_add(name=REFRESH_FAILURES, amount=counts["failed"])
    except Exception:
        logger.exception("Could not record the refresh run")
