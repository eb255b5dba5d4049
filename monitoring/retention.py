"""Keeping the history bounded: token events, refresh runs and alerts older than the retention.

An auditor asks "who signed this mailbox in, when, and when did it last fail?": so the newest event
of each kind for each account is kept whatever its age, as are the last full refresh run and any
alert still waiting to be sent. Rows go in batches, each batch its own short transaction.
"""
from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import RefreshRun, TokenEvent
from alerts.models import Alert, Delivery

from .facts import last_refresh_run

BATCH = 1000


def _delete_in_batches(queryset, *, batch_size, progress):
    deleted = 0
    while ids := list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        deleted += queryset.model.objects.filter(pk__in=ids).delete()[1].get(queryset.model._meta.label, 0)
        if progress:
            progress(queryset.model, deleted)
    return deleted


def prune(*, older_than_days, batch_size=BATCH, progress=None):
    """Delete what is older than `older_than_days` days; returns {"events": n, "runs": n, "alerts": n}."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    newer_of_kind = TokenEvent.objects.filter(account_identifier=OuterRef("account_identifier"), kind=OuterRef("kind"),
                                           pk__gt=OuterRef("pk"))
    events = TokenEvent.objects.filter(at__lt=cutoff).filter(Exists(newer_of_kind))
    last_run = last_refresh_run()
    runs = RefreshRun.objects.filter(started_at__lt=cutoff).exclude(pk=last_run.pk if last_run else None)
    waiting = Delivery.objects.filter(alert=OuterRef("pk"), status=Delivery.Status.PENDING)
    alerts = Alert.objects.filter(created_at__lt=cutoff).exclude(Exists(waiting))
    return {
        "events": _delete_in_batches(events, batch_size=batch_size, progress=progress),
        "runs": _delete_in_batches(runs, batch_size=batch_size, progress=progress),
        "alerts": _delete_in_batches(alerts, batch_size=batch_size, progress=progress),
    }
