"""Refreshing every due account, for cron (`manage.py refresh_tokens`)."""
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from providers.base import ProviderError

from ..claims import release, try_claim
from ..models import Account
from .tokens import REFRESHABLE, _not_refreshable, _refresh_claimed

KEEP_ALIVE_AFTER = timedelta(days=7)  # refresh a refresh token unused this long, so it never lapses


def due_accounts(*, within, now=None):
    now = now or timezone.now()
    return (
        Account.objects.filter(status__in=REFRESHABLE)
        .annotate(last_used=Coalesce(F("last_refreshed_at"), F("token_initialized_at")))
        .filter(
            Q(access_token_expires_at__isnull=True)
            | Q(access_token_expires_at__lte=now + within)
            | Q(last_used__lte=now - KEEP_ALIVE_AFTER)
        )
    )


@dataclass
class RefreshReport:
    refreshed: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def as_dict(self):
        return {
            "refreshed": self.refreshed,
            "failed": self.failed,
            "skipped": self.skipped,
            "summary": {"refreshed": len(self.refreshed), "failed": len(self.failed), "skipped": len(self.skipped)},
        }


def refresh_due(*, within, identifiers=(), actor="cron", progress=None):
    """Refresh every due account (or the named ones, due or not), skipping any another process holds."""
    report = RefreshReport()
    if identifiers:
        accounts = Account.objects.filter(identifier__in=identifiers)
        missing = set(identifiers) - set(accounts.values_list("identifier", flat=True))
        for identifier in sorted(missing):
            report.failed.append({"account": identifier, "status": "", "error": _("No such account.")})
    else:
        accounts = due_accounts(within=within)
    accounts = accounts.select_related("application").defer("access_token", "refresh_token").order_by("pk")
    for account in accounts.iterator(chunk_size=200):
        _refresh_one(account, actor, report)
        if progress:
            progress(account, report)
    return report


def _refresh_one(account, actor, report):
    entry = {"account": account.identifier}
    if account.status not in REFRESHABLE:
        report.failed.append({**entry, "status": account.status, "error": _not_refreshable(account)})
        return
    claim_id = try_claim(account.pk)
    if claim_id is None:
        report.skipped.append({**entry, "reason": _("busy in another process")})
        return
    try:
        account.refresh_from_db(fields=["status", "access_token", "refresh_token", "access_token_expires_at"])
        tokens = _refresh_claimed(account=account, actor=actor)
        report.refreshed.append({**entry, "expires_at": tokens.expires_at.isoformat()})
    except ProviderError as error:
        report.failed.append({**entry, "status": account.status, "error": str(error), "code": error.code})
    finally:
        release(account.pk, claim_id)


