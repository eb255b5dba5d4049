"""The admin index's dashboard: what needs someone's attention, in a few aggregate queries."""
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from oauthmail.times import zone_name

from . import facts

NEAR_LIMIT_SHOWN = 10
ALERTS_SHOWN = 8
STATUS_ORDER = [Account.Status.ACTIVE, Account.Status.FAILING, Account.Status.REAUTH_REQUIRED, Account.Status.NEW]


def dashboard(*, user):
    """The dashboard's context for `user`: only what the user may see."""
    now = timezone.now()
    context = {"zone": zone_name(), "now": now}
    if user.has_perm("accounts.view_account"):
        context.update(_accounts(now))
        context["relay"] = _relay(user, now)
    if user.has_perm("providers.view_application"):
        context["credentials"] = [
            {"credential": credential, "url": reverse("admin:providers_application_change",
                                                      args=[credential.application_id])}
            for credential in facts.credentials(within_days=facts.CREDENTIAL_WARNING_DAYS)
        ]
        context["testing_apps"] = facts.testing_apps()
    if user.has_perm("alerts.view_alert"):
        context.update(_alerts(user))
    return context


def _accounts(now):
    counts = facts.account_counts()
    changelist = reverse("admin:accounts_account_changelist")
    near = facts.tokens_near_limit(now=now)
    last_run = facts.last_refresh_run()
    return {
        "statuses": [
            {"status": status, "label": Account.Status(status).label, "count": counts[status],
             "url": f"{changelist}?status__exact={status}"}
            for status in STATUS_ORDER
        ],
        "account_total": sum(counts.values()),
        "near_limit": list(near[:NEAR_LIMIT_SHOWN]),
        "near_limit_count": near.count(),
        "last_run": last_run,
        "refresh_overdue": facts.refresh_overdue(last_run=last_run, now=now),
        "overdue_minutes": int(facts.overdue_after().total_seconds() // 60),
    }


def _relay(user, now):
    """Messages the SMTP relay sent and refused in the last 24 hours; None when it has no client and sent nothing."""
    from relay.events import RECENT, relay_message_totals
    from relay.models import RelayClient

    totals = relay_message_totals(since=now - RECENT)
    if not any(totals.values()) and not RelayClient.objects.exists():
        return None
    events = reverse("admin:accounts_tokenevent_changelist")
    may_see_events = user.has_perm("accounts.view_tokenevent")
    return {
        **totals,
        "hours": int(RECENT.total_seconds() // 3600),
        "sent_url": f"{events}?kind__exact=relay_sent" if may_see_events else "",
        "refused_url": f"{events}?kind__exact=relay_refused" if may_see_events else "",
        "clients_url": reverse("admin:relay_relayclient_changelist")
        if user.has_perm("relay.view_relayclient") else "",
    }


def _alerts(user):
    from alerts.models import Alert, Channel

    return {
        "alerts": list(Alert.objects.prefetch_related("deliveries__channel")[:ALERTS_SHOWN]),
        "active_channels": Channel.objects.filter(is_active=True).count(),
        "can_add_channel": user.has_perm("alerts.add_channel"),
    }
