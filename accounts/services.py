"""Business rules of the token lifecycle, called alike by the admin, the commands and the API.

Every function is keyword-only. Tokens are written only while the account's claim is held
(accounts/claims.py), and a new refresh token is saved in one transaction with the facts that go
with it, before anything else can fail.
"""
import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from oauthmail.crypto import DecryptionError
from providers.base import AUTHORIZATION_CODE, DEVICE_CODE, Pending, ProviderError

from .claims import ClaimTimeout, claimed, release, try_claim
from .models import Account, InitRequest, TokenEvent

RETRY_AFTER_CAP = 60
KEEP_ALIVE_AFTER = timedelta(days=7)  # refresh a refresh token unused this long, so it never lapses
REFRESHABLE = (Account.Status.ACTIVE, Account.Status.FAILING)


class TokenUnavailable(Exception):
    """No valid access token can be handed out; `code` says why, for programs."""

    def __init__(self, message, *, code):
        super().__init__(message)
        self.code = code


def log_event(*, account, actor, kind, outcome=""):
    return TokenEvent.objects.create(account=account, actor=actor, kind=kind, outcome=str(outcome)[:500])


# --- storing results --------------------------------------------------------------------------


@sensitive_variables("tokens", "values")
def _store_tokens(*, account, tokens, actor, kind, outcome):
    now = timezone.now()
    values = {
        "access_token": tokens.access_token,
        "access_token_expires_at": tokens.expires_at,
        "status": Account.Status.ACTIVE,
        "last_error": "",
    }
    if tokens.refresh_token:
        values["refresh_token"] = tokens.refresh_token
        renewed = kind == TokenEvent.Kind.INIT or tokens.refresh_token != account.refresh_token
        issued_at = now if renewed else (account.refresh_token_issued_at or now)
        values["refresh_token_issued_at"] = issued_at
        estimate = account.application.adapter.estimate_refresh_token_expiry(
            account.application, issued_at=issued_at, now=now
        )
        values["refresh_token_expires_at"] = tokens.refresh_token_expires_at or estimate
        values["refresh_token_expiry_estimated"] = not tokens.refresh_token_expires_at and estimate is not None
    if kind == TokenEvent.Kind.INIT:
        values.update(token_initialized_at=now, token_initialized_by=actor, last_refreshed_at=None,
                      signed_in_as=tokens.signed_in_as)
        if not tokens.refresh_token:
            values.update(refresh_token="", refresh_token_expires_at=None, refresh_token_expiry_estimated=False,
                          refresh_token_issued_at=None)
    else:
        values["last_refreshed_at"] = now
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(**values)
        log_event(account=account, actor=actor, kind=kind, outcome=outcome)
    for name, value in values.items():
        setattr(account, name, value)


def _record_failure(*, account, error, actor):
    status = Account.Status.REAUTH_REQUIRED if getattr(error, "reauth", False) else Account.Status.FAILING
    kind = TokenEvent.Kind.REAUTH_REQUIRED if status == Account.Status.REAUTH_REQUIRED else TokenEvent.Kind.FAILURE
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(status=status, last_error=str(error))
        log_event(account=account, actor=actor, kind=kind, outcome=str(error))
    account.status, account.last_error = status, str(error)


# --- Init. Token -------------------------------------------------------------------------------


AUTH_CODE_LIFETIME = timedelta(minutes=10)


def _check_identity(account, tokens):
    """A delegated token must belong to the mailbox (or to its named sign-in user, for a shared mailbox)."""
    expected = (account.sign_in_user or account.email).lower()
    who = tokens.signed_in_as
    if not who:
        raise ProviderError(_("The provider did not say who signed in: the token was refused."),
                            code="no_identity", permanent=True)
    if who.lower() != expected:
        raise ProviderError(
            _("%(who)s signed in, but this account needs %(expected)s: the token was refused.")
            % {"who": who, "expected": expected}, code="identity_mismatch", permanent=True,
        )


def _init_succeeded(*, request, tokens, actor):
    account = request.account
    _check_identity(account, tokens)
    with claimed(account.pk):
        shown = tokens.signed_in_as
        if account.sign_in_user:
            shown = _("%(who)s (for the shared mailbox %(mailbox)s)") % {"who": shown, "mailbox": account.email}
        _store_tokens(
            account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.INIT,
            outcome=_("Signed in as %(who)s.") % {"who": shown},
        )
    request.state = ""
    return _finish(request, InitRequest.Status.SUCCEEDED)


def account_init_start(*, account, actor, redirect_uri=""):
    """Start Init. Token. App-only accounts get their token at once; device code waits for a sign-in;
    browser sign-in returns the provider's URL to send the operator to (`verification_uri`).

    Always returns the InitRequest: `status` says whether it is pending, done or failed (`error`).
    """
    app = account.application
    request = InitRequest(account=account, flow=account.flow, started_by=actor)
    InitRequest.objects.filter(account=account, status=InitRequest.Status.PENDING).update(
        status=InitRequest.Status.FAILED, error=_("Replaced by a newer Init. Token."), finished_at=timezone.now()
    )
    try:
        if account.is_app_only:
            with claimed(account.pk):
                tokens = app.adapter.complete(app, flow=account.flow, state={}, subject=account.email)
                _store_tokens(
                    account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.INIT,
                    outcome=_("App-only token obtained."),
                )
            return _finish(request, InitRequest.Status.SUCCEEDED)
        if account.flow == AUTHORIZATION_CODE:
            return _start_browser_sign_in(request, redirect_uri=redirect_uri, actor=actor)
        device = app.adapter.begin(app, flow=DEVICE_CODE, login_hint=account.sign_in_user or account.email)
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        log_event(account=account, actor=actor, kind=TokenEvent.Kind.FAILURE, outcome=error)
        return _finish(request, InitRequest.Status.FAILED, error=str(error))
    request.user_code = device.user_code
    request.verification_uri = device.verification_uri
    request.message = device.message
    request.expires_at = device.expires_at
    request.interval = device.interval
    request.next_poll_at = timezone.now() + timedelta(seconds=device.interval)
    request.state = json.dumps(device.state)
    request.save()
    log_event(
        account=account, actor=actor, kind=TokenEvent.Kind.INIT_STARTED,
        outcome=_("Waiting for a sign-in with code %(code)s.") % {"code": device.user_code},
    )
    return request


def _start_browser_sign_in(request, *, redirect_uri, actor):
    account = request.account
    request.oauth_state = secrets.token_urlsafe(32)
    redirect = account.application.adapter.begin(
        account.application, flow=AUTHORIZATION_CODE, login_hint=account.sign_in_user or account.email,
        redirect_uri=redirect_uri, state=request.oauth_state,
    )
    request.verification_uri = redirect.url
    request.expires_at = timezone.now() + AUTH_CODE_LIFETIME
    request.state = json.dumps(redirect.state)
    request.save()
    log_event(account=account, actor=actor, kind=TokenEvent.Kind.INIT_STARTED,
              outcome=_("Browser sign-in started."))
    return request


def account_init_callback(*, oauth_state, response, actor):
    """The provider sent the browser back: exchange the code, once. Returns the InitRequest, or None
    when the state is unknown, already used or not this operator's (the caller says so)."""
    request = (
        InitRequest.objects.select_related("account__application")
        .filter(oauth_state=oauth_state, flow=AUTHORIZATION_CODE, status=InitRequest.Status.PENDING)
        .first()
    ) if oauth_state else None
    if request is None:
        return None
    used = InitRequest.objects.filter(pk=request.pk, finished_at__isnull=True).update(finished_at=timezone.now())
    if not used:
        return None
    account = request.account
    try:
        if request.expires_at and request.expires_at <= timezone.now():
            raise ProviderError(_("The sign-in took too long: start Init. Token again."), code="expired",
                                permanent=True)
        tokens = account.application.adapter.complete(
            account.application, flow=AUTHORIZATION_CODE, state=json.loads(request.state), response=response,
        )
        if not tokens.refresh_token:
            raise ProviderError(
                _("The provider gave no refresh token, so the token could not be kept fresh: nothing was stored. "
                  "Sign in again and accept every permission asked."), code="no_refresh_token", permanent=True,
            )
        return _init_succeeded(request=request, tokens=tokens, actor=actor)
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        log_event(account=account, actor=actor, kind=TokenEvent.Kind.FAILURE, outcome=error)
        return _finish(request, InitRequest.Status.FAILED, error=str(error))


def _finish(request, status, error=""):
    request.status = status
    request.error = error
    request.finished_at = timezone.now()
    request.save()
    return request


def account_init_poll(*, request_id, actor):
    """Ask the provider once whether the user has signed in, unless it is too early to ask.

    Safe to call from any number of browser tabs and server processes: a conditional UPDATE
    takes the next poll slot, so the provider sees at most one request per interval.
    """
    request = InitRequest.objects.select_related("account__application").get(pk=request_id)
    now = timezone.now()
    if request.status != InitRequest.Status.PENDING:
        return request
    account = request.account
    if request.expires_at and request.expires_at <= now:
        error = _("The code expired before anyone signed in: start Init. Token again.")
        log_event(account=account, actor=actor, kind=TokenEvent.Kind.FAILURE, outcome=error)
        return _finish(request, InitRequest.Status.FAILED, error=error)
    slot = now + timedelta(seconds=request.interval)
    taken = InitRequest.objects.filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), pk=request.pk, status=InitRequest.Status.PENDING
    ).update(next_poll_at=slot)
    if not taken:
        return request
    state = json.loads(request.state)
    app = account.application
    try:
        tokens = app.adapter.complete(app, flow=request.flow, state=state, subject=account.email)
        return _init_succeeded(request=request, tokens=tokens, actor=actor)
    except Pending as pending:
        request.interval = pending.interval
        request.next_poll_at = timezone.now() + timedelta(seconds=pending.interval)
        request.state = json.dumps(state)
        request.save(update_fields=["interval", "next_poll_at", "state"])
        return request
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        log_event(account=account, actor=actor, kind=TokenEvent.Kind.FAILURE, outcome=error)
        return _finish(request, InitRequest.Status.FAILED, error=str(error))


# --- refresh -----------------------------------------------------------------------------------


def _refresh_claimed(*, account, actor):
    """Refresh while holding the claim, retrying transient failures. Raises ProviderError on failure."""
    app = account.application
    attempts = max(1, settings.OAUTHMAIL_RETRY_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            if not account.is_app_only and not account.refresh_token:
                raise ProviderError(
                    _("This account has no refresh token: run Init. Token."), code="no_refresh_token", reauth=True
                )
            tokens = app.adapter.refresh(
                app, flow=account.flow, refresh_token=account.refresh_token, subject=account.email
            )
        except DecryptionError as error:
            error = ProviderError(str(error), code="decryption", permanent=True)
            _record_failure(account=account, error=error, actor=actor)
            raise error from None
        except ProviderError as error:
            if error.permanent or attempt == attempts:
                _record_failure(account=account, error=error, actor=actor)
                raise
            delay = max(settings.OAUTHMAIL_RETRY_BACKOFF * 2 ** (attempt - 1), error.retry_after or 0)
            time.sleep(min(delay, RETRY_AFTER_CAP))
            continue
        outcome = _("Access token valid until %(when)s.") % {"when": timezone.localtime(tokens.expires_at)}
        _store_tokens(account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.REFRESH, outcome=outcome)
        return tokens


def token_refresh(*, account, actor):
    """Refresh one account now, waiting for any other process busy with it."""
    with claimed(account.pk):
        account.refresh_from_db()
        return _refresh_claimed(account=account, actor=actor)


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


def _not_refreshable(account):
    if account.status == Account.Status.NEW:
        return _("The token was never initialised: run Init. Token.")
    return _("The mailbox must be signed in again (Init. Token): %(error)s") % {"error": account.last_error}


# --- handing tokens out ------------------------------------------------------------------------


@sensitive_variables("token")
def token_get(*, account, actor, min_validity=timedelta(minutes=5)):
    """A valid access token for the account, refreshed first when it expires within `min_validity`."""
    try:
        with claimed(account.pk):
            account.refresh_from_db()
            if account.status == Account.Status.NEW or not account.access_token:
                raise TokenUnavailable(_not_refreshable(account), code="not_initialized")
            if account.status == Account.Status.REAUTH_REQUIRED:
                raise TokenUnavailable(_not_refreshable(account), code="reauth_required")
            expires_at = account.access_token_expires_at
            if not expires_at or expires_at - timezone.now() < min_validity:
                try:
                    _refresh_claimed(account=account, actor=actor)
                except ProviderError as error:
                    code = "reauth_required" if error.reauth else "provider_error"
                    raise TokenUnavailable(str(error), code=code) from None
            return account.access_token, account.access_token_expires_at
    except ClaimTimeout as error:
        raise TokenUnavailable(str(error), code="busy") from None
    except DecryptionError as error:
        raise TokenUnavailable(str(error), code="decryption") from None


@sensitive_variables("token")
def xoauth2_string(*, email, token):
    """The base64 SASL XOAUTH2 initial response for IMAP/POP/SMTP."""
    return base64.b64encode(f"user={email}\x01auth=Bearer {token}\x01\x01".encode()).decode()
