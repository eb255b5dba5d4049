"""One token operation per account at a time, across processes and machines.

A claim is a short lease written with one conditional UPDATE, which both SQLite and PostgreSQL
perform atomically: of two processes claiming the same account, exactly one updates the row.
Whoever holds the claim may use (and so rotate) the refresh token; everyone else waits or skips.
A process that dies while holding a claim only delays that account until the lease runs out.
"""
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Account


class ClaimTimeout(Exception):
    pass


def lease_seconds():
    """Long enough for every attempt of a refresh, with its backoff, to finish."""
    attempts = settings.OAUTHMAIL_RETRY_ATTEMPTS
    return int(attempts * (settings.OAUTHMAIL_HTTP_TIMEOUT + settings.OAUTHMAIL_RETRY_BACKOFF * 2**attempts) + 30)


def _free():
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now())


def try_claim(account_id):
    """Claim the account now, or return None when another process holds it."""
    claim_id = str(uuid.uuid4())
    until = timezone.now() + timedelta(seconds=lease_seconds())
    updated = Account.objects.filter(_free(), pk=account_id).update(claim_id=claim_id, claimed_until=until)
    return claim_id if updated else None


def release(account_id, claim_id):
    Account.objects.filter(pk=account_id, claim_id=claim_id).update(claim_id="", claimed_until=None)


@contextmanager
def claimed(account_id, *, wait=None):
    """Hold the account's claim for the block, waiting for another holder to finish first."""
    deadline = time.monotonic() + (lease_seconds() if wait is None else wait)
    while (claim_id := try_claim(account_id)) is None:
        if time.monotonic() > deadline:
            raise ClaimTimeout(_("Another process is busy with this account's token; try again shortly."))
        time.sleep(0.1)
    try:
        yield claim_id
    finally:
        release(account_id, claim_id)
