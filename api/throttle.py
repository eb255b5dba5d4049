"""Wrong API keys are throttled per client address: after OAUTHMAIL_API_KEY_FAILURES wrong keys within a
minute, that address gets 429 (with Retry-After) until the minute is over, even with a right key; other
addresses are not affected.

The counts live in a small table (KeyFailures) rather than a per-process cache: the API runs in several
server processes, and the database is what they share on every deployment. A failure costs a write; a
successful read costs nothing more than the token read's own statement (api/lookup.py asks whether the
address is blocked in the same statement) and no write.
"""
import math
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import KeyFailures

WINDOW = timedelta(minutes=1)
FORGET_AFTER = timedelta(days=1)


def blocked_if(*, now):
    """What makes an address blocked at `now`: its window started after the first value, with at least the
    second value of failures (api/lookup.py puts it in the token read's statement)."""
    return now - WINDOW, settings.OAUTHMAIL_API_KEY_FAILURES


def seconds_left(*, window_start, now):
    """Seconds until an address blocked in the window started at `window_start` may present a key again."""
    return max(1, math.ceil((window_start + WINDOW - now).total_seconds()))


def record_failure(*, address):
    """Count one wrong key from `address` in its current window (a new window when the last one is over)."""
    now = timezone.now()
    if KeyFailures.objects.filter(address=address, window_start__gt=now - WINDOW).update(
            failures=F("failures") + 1):
        return
    try:
        with transaction.atomic():
            KeyFailures.objects.update_or_create(address=address, defaults={"window_start": now, "failures": 1})
    except IntegrityError:  # another process created it at the same moment: count into its window
        KeyFailures.objects.filter(address=address).update(failures=F("failures") + 1)
    KeyFailures.objects.filter(window_start__lt=now - FORGET_AFTER).delete()
