"""The state of oauthmail in a few aggregate queries, whatever the number of accounts.

One place for what "expiring soon" and "overdue" mean, used alike by the dashboard, the alerts and
the Prometheus metrics.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from accounts.models import Account, RefreshRun
from accounts.services.tokens import REFRESHABLE
from providers.models import Application

CREDENTIAL_WARNING_DAYS = 30
# Refresh tokens a provider ends when unused: Microsoft after 90 days (warned from day 75), Google
# after 6 months (warned 15 days before too). refresh_tokens uses every one at least weekly, so a
# token gets here only when its refreshes have been failing (or cron stopped) for weeks.
IDLE_WARNING = timedelta(days=15)
# Google apps whose consent screen is in "Testing": refresh tokens end 7 days after sign-in.
TESTING_WARNING = timedelta(days=2)


def account_counts():
    """{status: number of accounts}, every status present."""
    counts = dict.fromkeys(Account.Status.values, 0)
    counts.update(Account.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return counts


@dataclass
class Credential:
    application_id: int
    application: str
    kind: str  # "client_secret" or "certificate"
    expires: object  # a date (client secret) or a datetime (certificate)
    days_left: int

    @property
    def expires_at(self):
        """The moment it ends: a client secret's expiry date is taken at its start, in the local zone."""
        if isinstance(self.expires, datetime):
            return self.expires
        return timezone.make_aware(datetime.combine(self.expires, time.min))


def credentials(*, within_days=None):
    """Client secrets and certificates with an expiry, soonest first; only those ending within
    `within_days` (or already ended) when it is given. Two queries."""
    today = timezone.localdate()
    secrets = Application.objects.exclude(client_secret="").filter(client_secret_expires_on__isnull=False)
    certificates = Application.objects.exclude(certificate_key="").filter(certificate_expires_at__isnull=False)
    if within_days is not None:
        secrets = secrets.filter(client_secret_expires_on__lte=today + timedelta(days=within_days))
        limit = timezone.make_aware(datetime.combine(today + timedelta(days=within_days + 1), time.min))
        certificates = certificates.filter(certificate_expires_at__lt=limit)
    found = [
        Credential(pk, str(identifier), "client_secret", expires_on, (expires_on - today).days)
        for pk, identifier, expires_on in secrets.values_list("pk", "identifier", "client_secret_expires_on")
    ] + [
        Credential(pk, str(identifier), "certificate", expires_at, (timezone.localdate(expires_at) - today).days)
        for pk, identifier, expires_at in certificates.values_list("pk", "identifier", "certificate_expires_at")
    ]
    return sorted(found, key=lambda credential: credential.expires_at)


def tokens_near_limit(*, now=None):
    """Accounts whose refresh token ends soon unless used: near the provider's idle limit, or a Google
    Testing app's 7 days. Not those already to be signed in again."""
    now = now or timezone.now()
    testing = Q(application__provider=Application.Provider.GOOGLE, application__google_testing=True)
    near = (~testing & Q(refresh_token_expires_at__lte=now + IDLE_WARNING)) | (
        testing & Q(refresh_token_expires_at__lte=now + TESTING_WARNING))
    return (
        Account.objects.filter(status__in=REFRESHABLE, refresh_token_expires_at__isnull=False).filter(near)
        .select_related("application").order_by("refresh_token_expires_at")
    )


def testing_apps():
    """Google apps in Testing, each with its accounts holding a refresh token and the earliest end."""
    holding = Q(accounts__status__in=REFRESHABLE, accounts__refresh_token_expires_at__isnull=False)
    return list(
        Application.objects.filter(provider=Application.Provider.GOOGLE, google_testing=True)
        .annotate(token_count=Count("accounts", filter=holding),
                  earliest=Min("accounts__refresh_token_expires_at", filter=holding))
        .order_by("identifier")
    )


def last_refresh_run():
    """The last finished run of refresh_tokens over every due account (not one for named accounts)."""
    return RefreshRun.objects.filter(finished_at__isnull=False, partial=False).order_by("-finished_at").first()


def overdue_after():
    return timedelta(minutes=settings.OAUTHMAIL_REFRESH_OVERDUE_MINUTES)


def refresh_overdue(*, last_run, now=None):
    """refresh_tokens has not finished a run for longer than OAUTHMAIL_REFRESH_OVERDUE_MINUTES (or never
    has, while some account holds a token to refresh)."""
    now = now or timezone.now()
    if last_run is None:
        return Account.objects.filter(status__in=REFRESHABLE).exists()
    return last_run.finished_at < now - overdue_after()
