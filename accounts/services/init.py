"""Init. Token: app-only at once, device code by polling, browser sign-in by callback."""
import json
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from oauthmail.crypto import DecryptionError
from oauthmail.texts import facts_text
from providers.base import AUTHORIZATION_CODE, DEVICE_CODE, Pending, ProviderError

from ..claims import ClaimTimeout, claimed
from ..models import Account, InitRequest, TokenEvent
from .tokens import _check_identity, _store_tokens, error_facts, log_event

AUTH_CODE_LIFETIME = timedelta(minutes=10)


def _init_succeeded(*, request, tokens, actor):
    account = request.account
    _check_identity(account, tokens)
    with claimed(account.pk):
        if account.sign_in_user:
            code, params = "token.initialised_shared", {"who": tokens.signed_in_as, "mailbox": account.email}
        else:
            code, params = "token.initialised", {"who": tokens.signed_in_as}
        _store_tokens(account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.INIT, code=code,
                      params=params)
    return _finish(request, InitRequest.Status.SUCCEEDED)


def account_init_start(*, account, actor, redirect_uri=""):
    """Start Init. Token. App-only accounts get their token at once; device code waits for a sign-in;
    browser sign-in returns the provider's URL to send the operator to (`verification_uri`).

    Always returns the InitRequest: `status` says whether it is pending, done or failed (`error`).
    """
    app = account.application
    request = InitRequest(account=account, flow=account.flow, started_by=actor)
    InitRequest.objects.filter(account=account, status=InitRequest.Status.PENDING).update(
        status=InitRequest.Status.FAILED, error=_("Replaced by a newer Init. Token."), finished_at=timezone.now(),
        state="",
    )
    try:
        if account.is_app_only:
            with claimed(account.pk):
                tokens = app.adapter.complete(app, flow=account.flow, state={}, subject=account.email)
                _store_tokens(account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.INIT,
                              code="token.initialised_app_only")
            return _finish(request, InitRequest.Status.SUCCEEDED)
        if account.flow == AUTHORIZATION_CODE:
            return _start_browser_sign_in(request, redirect_uri=redirect_uri, actor=actor)
        device = app.adapter.begin(app, flow=DEVICE_CODE, login_hint=account.sign_in_user or account.email)
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        return _failed(request, error, actor=actor)
    request.user_code = device.user_code
    request.verification_uri = device.verification_uri
    request.message = device.message
    request.expires_at = device.expires_at
    request.interval = device.interval
    request.next_poll_at = timezone.now() + timedelta(seconds=device.interval)
    request.state = json.dumps(device.state)
    request.save()
    log_event(account=account, actor=actor, kind=TokenEvent.Kind.INIT_STARTED, code="token.sign_in_waiting",
              params={"code": device.user_code})
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
    log_event(account=account, actor=actor, kind=TokenEvent.Kind.INIT_STARTED, code="token.sign_in_started")
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
            raise ProviderError(text="token.sign_in_too_slow", code="expired", permanent=True)
        tokens = account.application.adapter.complete(
            account.application, flow=AUTHORIZATION_CODE, state=_saved_state(request), response=response,
        )
        if not tokens.refresh_token:
            raise ProviderError(text="token.no_refresh_token_given", code="no_refresh_token", permanent=True)
        return _init_succeeded(request=request, tokens=tokens, actor=actor)
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        return _failed(request, error, actor=actor)


def _saved_state(request):
    """The provider's flow state kept while the user signs in; a ProviderError if no configured key opens it."""
    try:
        return json.loads(request.state)
    except DecryptionError:
        raise ProviderError(text="token.state_unreadable", code="state_unreadable", permanent=True) from None


def _failed(request, error, *, actor):
    """Init. Token failed: an event, and the account's "last error" (its status, maybe a working token's, stays),
    both as facts to show in the reader's language."""
    account = request.account
    facts = error_facts(error)
    log_event(account=account, actor=actor, kind=TokenEvent.Kind.FAILURE, code="token.init_failed", params=facts)
    values = {"last_error_params": {"message": "token.init_failed_error", "error": facts},
              "last_error_code": facts.get("provider_code", "")[:100]}
    values["last_error"] = facts_text(values["last_error_params"])[:2000]
    Account.objects.filter(pk=account.pk).update(**values)
    for name, value in values.items():
        setattr(account, name, value)
    return _finish(request, InitRequest.Status.FAILED, error=str(error))


def _finish(request, status, error=""):
    request.status = status
    request.error = error
    request.state = ""  # the device code or PKCE verifier: no use once the request is over
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
        return _failed(request, ProviderError(text="token.code_expired"), actor=actor)
    slot = now + timedelta(seconds=request.interval)
    taken = InitRequest.objects.filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now), pk=request.pk, status=InitRequest.Status.PENDING
    ).update(next_poll_at=slot)
    if not taken:
        return request
    app = account.application
    try:
        state = _saved_state(request)
        tokens = app.adapter.complete(app, flow=request.flow, state=state, subject=account.email)
        return _init_succeeded(request=request, tokens=tokens, actor=actor)
    except Pending as pending:
        request.interval = pending.interval
        request.next_poll_at = timezone.now() + timedelta(seconds=pending.interval)
        request.state = json.dumps(state)
        request.save(update_fields=["interval", "next_poll_at", "state"])
        return request
    except (ProviderError, DecryptionError, ClaimTimeout) as error:
        return _failed(request, error, actor=actor)
