"""send_alerts: notice what changed, record it, and deliver it to every active channel.

Safe to run in several processes at once (cron's send_alerts, each refresh_tokens run): a change
of condition is claimed by a conditional write of its AlertState row (an UPDATE … WHERE state =
the old state, an INSERT on a unique key, a DELETE … WHERE state = the old state), so one process
only records it; deliveries are claimed like refresh_tokens claims accounts (a lease), so each is
sent once. A delivery that fails is tried again at later runs, less and less often, for a day.
"""
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation

from . import conditions, transports
from .models import Alert, AlertState, Channel, Delivery

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # longer than any channel's sending, retries included
GIVE_UP_AFTER = timedelta(hours=24)
BATCH = 500  # deliveries claimed at once


@dataclass
class AlertReport:
    alerts: list = field(default_factory=list)  # Alert rows recorded by this run
    sent: int = 0
    failed: int = 0  # deliveries that failed at this run (tried again later, unless given up)


def send_alerts(*, now=None):
    """Record the alerts conditions call for, then deliver everything pending. Returns an AlertReport."""
    report = AlertReport()
    report.alerts = record_alerts(now=now)
    deliver_pending(report=report)
    return report


def send_alerts_quietly():
    """For refresh_tokens: the same, never raising (its refreshes are done; a failure here is logged)."""
    try:
        return send_alerts()
    except Exception:
        logger.exception("send_alerts failed")
        return None


def record_alerts(*, now=None):
    now = now or timezone.now()
    found = conditions.current(now=now)
    stored = {state.key: state for state in AlertState.objects.all()}
    channels = list(Channel.objects.filter(is_active=True))
    recorded = []
    for key, condition in found.items():
        previous = stored.get(key)
        if previous is not None and not condition.worth_alerting(previous.state):
            if previous.state != condition.state:  # a less urgent state: remembered, not sent
                AlertState.objects.filter(pk=previous.pk, state=previous.state).update(state=condition.state)
            continue
        alert = _claim_change(condition, previous, channels, now)
        if alert:
            recorded.append(alert)
    for key, previous in stored.items():
        if key not in found:
            alert = _claim_end(previous, channels, now)
            if alert:
                recorded.append(alert)
    return recorded


def _claim_change(condition, previous, channels, now):
    try:
        with transaction.atomic():
            if previous is None:
                AlertState.objects.create(key=condition.key, kind=condition.kind, state=condition.state,
                                          params=condition.params, changed_at=now)
            elif not AlertState.objects.filter(pk=previous.pk, state=previous.state).update(
                    state=condition.state, params=condition.params, changed_at=now):
                return None  # another process recorded this change
            return _record(condition.key, condition.kind, condition.state, condition.params, channels, now)
    except IntegrityError:  # another process recorded this new condition
        return None


def _claim_end(previous, channels, now):
    """The condition no longer holds: forget it, and announce the recovery where that means something."""
    with transaction.atomic():
        deleted, _ = AlertState.objects.filter(pk=previous.pk, state=previous.state).delete()
        if not deleted or previous.kind not in conditions.RECOVERIES:
            return None
        params = conditions.recovery_params(previous)
        if params is None:
            return None
        return _record(previous.key, previous.kind, "recovered", params, channels, now)


def _record(key, kind, state, params, channels, now):
    alert = Alert.objects.create(key=key, kind=kind, state=state, params=params, created_at=now)
    Delivery.objects.bulk_create([Delivery(alert=alert, channel=channel, next_attempt_at=now) for channel in channels])
    return alert


def deliver_pending(*, report=None):
    """Send every delivery due, grouped by channel (one message per channel)."""
    report = report or AlertReport()
    now = timezone.now()
    claim_id = str(uuid.uuid4())
    due = Delivery.objects.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
                                  status=Delivery.Status.PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:BATCH])
    if not ids:
        return report
    due.filter(pk__in=ids).update(claim_id=claim_id, claimed_until=now + LEASE)
    mine = list(Delivery.objects.filter(claim_id=claim_id).select_related("alert", "channel").order_by("pk"))
    by_channel = {}
    for delivery in mine:
        by_channel.setdefault(delivery.channel_id, []).append(delivery)
    for deliveries in by_channel.values():
        _deliver(deliveries, report)
    return report


def _deliver(deliveries, report):
    channel = deliveries[0].channel
    if channel is None or not channel.is_active:
        _finish(deliveries, ok=False, error={"message": "alert.channel_off"}, final=True)
        report.failed += len(deliveries)
        return
    with translation.override(settings.LANGUAGE_CODE):
        ok, error = transports.send(channel, [delivery.alert for delivery in deliveries])
    _finish(deliveries, ok=ok, error=error)
    if ok:
        report.sent += len(deliveries)
    else:
        report.failed += len(deliveries)


def _finish(deliveries, *, ok, error, final=False):
    now = timezone.now()
    for delivery in deliveries:
        delivery.attempts += 1
        delivery.claim_id, delivery.claimed_until = "", None
        if ok:
            delivery.status, delivery.sent_at, delivery.error = Delivery.Status.SENT, now, {}
        else:
            delivery.error = error
            given_up = final or now - delivery.alert.created_at >= GIVE_UP_AFTER
            if given_up:
                delivery.status = Delivery.Status.FAILED
            else:  # again in 2, 4, 8 … minutes, at most hourly
                delivery.next_attempt_at = now + timedelta(minutes=min(60, 2 ** delivery.attempts))
    Delivery.objects.bulk_update(
        deliveries, ["attempts", "claim_id", "claimed_until", "status", "sent_at", "error", "next_attempt_at"]
    )


def send_test_alert(*, channel, actor):
    """Send a test alert to `channel` now (active or not); returns its Delivery, sent or failed."""
    now = timezone.now()
    alert = Alert.objects.create(key=f"test:{uuid.uuid4()}", kind=Alert.Kind.TEST, state="test", created_at=now,
                                 params={"actor": actor, "channel": channel.name})
    delivery = Delivery.objects.create(alert=alert, channel=channel, claim_id="test", claimed_until=now + LEASE)
    with translation.override(settings.LANGUAGE_CODE):
        ok, error = transports.send(channel, [alert])
    _finish([delivery], ok=ok, error=error, final=True)
    return delivery
