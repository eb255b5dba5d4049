"""What deserves an alert now, as conditions: one key per thing watched, with its state and facts.

A condition is alerted when its state changes (see services.py); `RECOVERIES` says which kinds
also send a message when the condition goes away.
"""
from dataclasses import dataclass, field

from django.utils import timezone

from accounts.models import Account
from monitoring import facts
from oauthmail.times import local
from providers.models import Application

from .models import Alert

CREDENTIAL_STEPS = (30, 14, 7, 1)  # days before a secret or certificate expires, each alerted once
URGENCY = ["30", "14", "7", "1", "expired"]
RECOVERIES = {Alert.Kind.ACCOUNT_STATUS, Alert.Kind.REFRESH_OVERDUE}


@dataclass
class Condition:
    key: str
    kind: str
    state: str
    params: dict = field(default_factory=dict)

    def worth_alerting(self, previous_state):
        """A new or changed state is alerted; a secret's countdown only when it gets more urgent."""
        if previous_state == self.state:
            return False
        if self.kind == Alert.Kind.CREDENTIAL_EXPIRY and previous_state in URGENCY:
            return URGENCY.index(self.state) > URGENCY.index(previous_state)
        return True


def credential_step(days_left):
    if days_left < 0:
        return "expired"
    return str(min(step for step in CREDENTIAL_STEPS if step >= days_left) if days_left <= 30 else 30)


def current(*, now=None):
    """Every condition that holds now, by key."""
    now = now or timezone.now()
    found = [*_accounts(), *_credentials(), *_refresh_tokens(now), *_overdue(now)]
    return {condition.key: condition for condition in found}


def _accounts():
    troubled = Account.objects.filter(status__in=[Account.Status.FAILING, Account.Status.REAUTH_REQUIRED])
    for pk, identifier, email, status, params, text, code, provider, testing in troubled.values_list(
        "pk", "identifier", "email", "status", "last_error_params", "last_error", "last_error_code",
        "application__provider", "application__google_testing",
    ).order_by("pk"):
        error = params or {"detail": text, "provider_code": code}
        yield Condition(f"account:{pk}:status", Alert.Kind.ACCOUNT_STATUS, status, {
            "account_id": pk, "account": identifier, "email": email, "error": error,
            "google_testing": provider == Application.Provider.GOOGLE and testing,
        })


def _credentials():
    for credential in facts.credentials(within_days=max(CREDENTIAL_STEPS)):
        expires = credential.expires
        shown = expires.isoformat() if credential.kind == "client_secret" else local(expires)
        yield Condition(  # a renewed credential leaves the 30 days: its condition ends, the next one starts anew
            f"application:{credential.application_id}:{credential.kind}",
            Alert.Kind.CREDENTIAL_EXPIRY, credential_step(credential.days_left), {
                "application_id": credential.application_id, "application": credential.application,
                "credential": credential.kind, "expires": shown, "days": max(0, credential.days_left),
            },
        )


def _refresh_tokens(now):
    for account in facts.tokens_near_limit(now=now).only(
        "pk", "identifier", "email", "refresh_token_expires_at", "application__identifier",
        "application__provider", "application__google_testing",
    ):
        app = account.application
        testing = app.provider == Application.Provider.GOOGLE and app.google_testing
        kind = Alert.Kind.GOOGLE_TESTING if testing else Alert.Kind.REFRESH_TOKEN_LIMIT
        yield Condition(f"account:{account.pk}:refresh_token", kind, "near", {
            "account_id": account.pk, "account": account.identifier, "email": account.email,
            "application": app.identifier, "expires_at": account.refresh_token_expires_at.isoformat(),
        })


def _overdue(now):
    last_run = facts.last_refresh_run()
    if facts.refresh_overdue(last_run=last_run, now=now):
        yield Condition("refresh_tokens:overdue", Alert.Kind.REFRESH_OVERDUE, "overdue" if last_run else "never", {
            "last_at": last_run.finished_at.isoformat() if last_run else None,
            "minutes": int(facts.overdue_after().total_seconds() // 60),
        })


def recovery_params(state):
    """The facts of a recovery (the condition's last facts, refreshed), or None when it is not one to
    announce: the account was deleted, or it went back to new."""
    if state.kind == Alert.Kind.ACCOUNT_STATUS:
        account = Account.objects.filter(pk=state.params.get("account_id")).values("status", "email").first()
        if account is None or account["status"] != Account.Status.ACTIVE:
            return None
        return {**{k: v for k, v in state.params.items() if k != "error"}, "email": account["email"]}
    last_run = facts.last_refresh_run()
    return {**state.params, "last_at": last_run.finished_at.isoformat() if last_run else None}
