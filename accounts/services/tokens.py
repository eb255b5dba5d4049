"""Storing tokens, refreshing one account, and handing valid tokens out.

Tokens are written only while the account's claim is held (accounts/claims.py), and a new
refresh token is saved in one transaction with the facts that go with it, before anything else
can fail.
"""
import base64
import itertools
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from oauthmail import deadlines
from oauthmail.crypto import DecryptionError, is_set
from oauthmail.texts import facts_text, render
from providers.base import ProviderError

from ..claims import ClaimTimeout, claimed
from ..models import Account, TokenEvent
from ..statements import insert_row, update_row, update_row_then_insert

RETRY_AFTER_CAP = 60
# A refresh failed transiently: the stored access token is still handed out when valid this much longer.
FALLBACK_MIN_VALIDITY = timedelta(minutes=1)
REFRESHABLE = (Account.Status.ACTIVE, Account.Status.FAILING)
OUTCOME_LENGTH = TokenEvent._meta.get_field("outcome").max_length
ALL_FIELDS = [field.name for field in Account._meta.concrete_fields]


class TokenUnavailable(Exception):
    """No valid access token can be handed out; `code` says why, for programs."""

    def __init__(self, message, *, code, facts=None):
        super().__init__(message)
        self.code = code
        self.facts = facts or {"detail": message}  # to show it later in the reader's language


def log_event(*, account, actor, kind, code, params=None):
    """Record what happened to the account's token: `code` names the sentence (oauthmail/texts.py),
    `params` holds its facts (JSON). Never a token."""
    return TokenEvent.objects.create(account=account, account_identifier=account.identifier, actor=actor, kind=kind,
                                     code=code, params=params or {})


def error_facts(error):
    """The facts of a failed token operation, to store and show later in the reader's language."""
    if isinstance(error, ProviderError):
        return error.facts()
    if isinstance(error, DecryptionError):
        return {"message": "token.decryption", "what": error.what, "provider_code": "decryption"}
    if isinstance(error, ClaimTimeout):
        return {"message": "token.busy"}
    return {"detail": str(error)}


@sensitive_variables("tokens", "values", "sent")
def _store_tokens(*, account, tokens, actor, kind, code, params=None, sent=None, release=None):
    """Store the tokens and log the event in one transaction (on PostgreSQL, while the claim is still
    `release`, one statement). `sent`: the refresh token the tokens were
    obtained with, when the caller has it decrypted already. `release`: a claim id to give back in the
    same statement, when the account's claim is still that one (the tokens are stored all the same)."""
    now = timezone.now()
    values = {
        "access_token": tokens.access_token,
        "access_token_expires_at": tokens.expires_at,
        "status": Account.Status.ACTIVE,
        "last_error": "",
        "last_error_code": "",
        "last_error_params": {},
    }
    if tokens.refresh_token:
        values["refresh_token"] = tokens.refresh_token
        renewed = kind == TokenEvent.Kind.INIT or tokens.refresh_token != (
            account.refresh_token if sent is None else sent)
        issued_at = now if renewed else (account.refresh_token_issued_at or now)
        values["refresh_token_issued_at"] = issued_at
        estimate = account.application.adapter.estimate_refresh_token_expiry(
            account.application, issued_at=issued_at, now=now
        )
        values["refresh_token_expires_at"] = tokens.refresh_token_expires_at or estimate
        values["refresh_token_expiry_estimated"] = not tokens.refresh_token_expires_at and estimate is not None
    if tokens.signed_in_as:
        values["signed_in_as"] = tokens.signed_in_as
    if kind == TokenEvent.Kind.INIT:
        values.update(token_initialized_at=now, token_initialized_by=actor, last_refreshed_at=None)
        if not tokens.refresh_token:
            values.update(refresh_token="", refresh_token_expires_at=None, refresh_token_expiry_estimated=False,
                          refresh_token_issued_at=None)
    else:
        values["last_refreshed_at"] = now
    event = TokenEvent(account=account, account_identifier=account.identifier, actor=actor, kind=kind, code=code,
                       params=params or {})
    released = {**values, "claim_id": "", "claimed_until": None}
    # SQL written once per shape (accounts/statements.py): the refresh's hot path. On PostgreSQL, while the
    # claim is still `release`, one statement; else one transaction.
    if not (release and update_row_then_insert(Account, account.pk, released, event, claim_id=release)):
        with transaction.atomic():
            if not (release and update_row(Account, account.pk, released, claim_id=release)):
                update_row(Account, account.pk, values)
            insert_row(event)
    for name, value in values.items():
        setattr(account, name, value)


def _record_failure(*, account, error, actor):
    reauth = error.reauth
    status = Account.Status.REAUTH_REQUIRED if reauth else Account.Status.FAILING
    kind, code = (TokenEvent.Kind.REAUTH_REQUIRED, "token.reauth_required") if reauth else (
        TokenEvent.Kind.FAILURE, "token.refresh_failed")
    values = {"status": status, "last_error": str(error)[:2000], "last_error_code": error.code[:100],
              "last_error_params": error.facts()}
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(**values)
        log_event(account=account, actor=actor, kind=kind, code=code, params=values["last_error_params"])
    for name, value in values.items():
        setattr(account, name, value)


def _check_identity(account, tokens):
    """A delegated token must belong to the mailbox (or to its named sign-in user, for a shared mailbox)."""
    expected = (account.sign_in_user or account.email).lower()
    who = tokens.signed_in_as
    if not who:
        raise ProviderError(text="token.no_identity", code="no_identity", permanent=True)
    if who.lower() != expected:
        raise ProviderError(text="token.identity_mismatch", params={"who": who, "expected": expected},
                            code="identity_mismatch", permanent=True)


def _retry_later(error, attempt, stopping):
    """Sleep before the next attempt and return True; False (no sleep) when no attempt should follow:
    the failure is permanent, attempts are used up, the claim's time is short, or the caller stops."""
    if error.permanent or attempt >= max(1, settings.OAUTHMAIL_RETRY_ATTEMPTS):
        return False
    delay = min(max(settings.OAUTHMAIL_RETRY_BACKOFF * 2 ** (attempt - 1), error.retry_after or 0), RETRY_AFTER_CAP)
    if deadlines.remaining() < delay + 2 * settings.OAUTHMAIL_HTTP_TIMEOUT:
        return False  # another attempt might not end before the claim's lease does
    wake = time.monotonic() + delay
    while (left := wake - time.monotonic()) > 0:
        if stopping is not None and stopping():
            return False
        time.sleep(min(left, 0.1))
    return stopping is None or not stopping()


@sensitive_variables("refresh_token")
def _refresh_claimed(*, account, actor, stopping=None, release=None):
    """Refresh while holding the claim, retrying transient failures (until `stopping()`, if given, says
    to stop). Raises ProviderError on failure. `release`: the claim's id, to give it back in the same
    statement that stores the tokens (see _store_tokens); on failure the caller gives it back."""
    app = account.application
    for attempt in itertools.count(1):
        try:
            refresh_token = account.refresh_token  # decrypted once
            if not account.is_app_only and not refresh_token:
                raise ProviderError(text="token.no_refresh_token", code="no_refresh_token", reauth=True)
            tokens = app.adapter.refresh(app, flow=account.flow, refresh_token=refresh_token, subject=account.email)
        except DecryptionError as error:
            error = ProviderError(text="token.decryption", params={"what": error.what}, code="decryption",
                                  permanent=True)
            _record_failure(account=account, error=error, actor=actor)
            raise error from None
        except ProviderError as error:
            if not _retry_later(error, attempt, stopping):
                _record_failure(account=account, error=error, actor=actor)
                raise
            continue
        if account.status == Account.Status.NEW and tokens.signed_in_as and not account.is_app_only:
            try:  # a refresh token imported from another tool: make sure it is this mailbox's
                _check_identity(account, tokens)
            except ProviderError as error:
                error.reauth = True
                _record_failure(account=account, error=error, actor=actor)
                raise
        _store_tokens(account=account, tokens=tokens, actor=actor, kind=TokenEvent.Kind.REFRESH,
                      code="token.refreshed", params={"expires_at": tokens.expires_at.isoformat()},
                      sent=refresh_token, release=release)
        return tokens


def token_refresh(*, account, actor):
    """Refresh one account now, waiting for any other process busy with it."""
    with claimed(account.pk):
        account.refresh_from_db()
        return _refresh_claimed(account=account, actor=actor)


def not_refreshable_facts(account):
    if account.status == Account.Status.NEW:
        return {"message": "token.never_initialised"}
    return {"message": "token.sign_in_again", "error": account.last_error_params or account.last_error}


def _not_refreshable(account):
    return facts_text(not_refreshable_facts(account))


def min_token_validity():
    """How long a token handed out must still be valid: OAUTHMAIL_MIN_TOKEN_VALIDITY minutes."""
    return timedelta(minutes=settings.OAUTHMAIL_MIN_TOKEN_VALIDITY)


def _usable_after_failure(account, error):
    """Whether the stored access token may be handed out although its refresh failed: only when the
    failure is transient (network, timeout, 5xx, 429: the provider said nothing about the grant) and
    the token is valid for FALLBACK_MIN_VALIDITY more. A permanent answer (invalid_grant, invalid_client
    ...) is believed: the old token may still work at the provider, but the grant is gone or broken
    and consumers must learn it now, not when the token runs out."""
    expires_at = account.access_token_expires_at
    return (not error.permanent and bool(account.access_token) and expires_at is not None
            and expires_at - timezone.now() >= FALLBACK_MIN_VALIDITY)


def _stored_token_suffices(account, min_validity):
    """Whether the account's stored access token may be handed out as it is: valid for `min_validity`
    more, the grant not known to be gone. Decides from the row as the caller read it, without a claim:
    reading a token never rotates anything, and an access token stays valid until it expires even when
    another process has just refreshed it."""
    expires_at = account.access_token_expires_at
    return (account.status != Account.Status.REAUTH_REQUIRED and expires_at is not None
            and expires_at - timezone.now() >= min_validity and is_set(account, "access_token"))


@sensitive_variables("token")
def token_get(*, account, actor, min_validity=None):
    """A valid access token for the account, and when it expires: refreshed first when it expires within
    `min_validity` (default: min_token_validity()), else the stored one. `account` must have just been
    read from the database (at least its status and access token): a stored token that suffices is
    handed out from it, with no claim and no write.

    When that refresh fails transiently and the stored token is still valid (_usable_after_failure),
    the stored token is handed out all the same and the hand-out logged; the account is `failing`
    with the error, as after any failed refresh.
    """
    min_validity = min_token_validity() if min_validity is None else min_validity
    try:
        if _stored_token_suffices(account, min_validity):
            return account.access_token, account.access_token_expires_at  # no claim, no write
        with claimed(account.pk):
            account.refresh_from_db(fields=ALL_FIELDS)  # all of them, also those the caller did not read
            if not account.access_token and not (account.refresh_token or account.is_app_only):
                raise TokenUnavailable(_not_refreshable(account), code="not_initialized",
                                       facts=not_refreshable_facts(account))
            if account.status == Account.Status.REAUTH_REQUIRED:
                raise TokenUnavailable(_not_refreshable(account), code="reauth_required",
                                       facts=not_refreshable_facts(account))
            expires_at = account.access_token_expires_at
            if not expires_at or expires_at - timezone.now() < min_validity:
                try:
                    _refresh_claimed(account=account, actor=actor)
                except ProviderError as error:
                    if not _usable_after_failure(account, error):
                        code = "reauth_required" if error.reauth else "provider_error"
                        raise TokenUnavailable(str(error), code=code, facts=error.facts()) from None
                    log_event(account=account, actor=actor, kind=TokenEvent.Kind.FALLBACK,
                              code="token.stored_handed_out",
                              params={"expires_at": account.access_token_expires_at.isoformat()})
            return account.access_token, account.access_token_expires_at
    except (ClaimTimeout, DecryptionError) as error:
        code = "busy" if isinstance(error, ClaimTimeout) else "decryption"
        raise TokenUnavailable(str(error), code=code, facts=error_facts(error)) from None


def failing_warning(*, account, expires_at):
    """After token_get: when the account is failing (its last refresh failed, the token handed out is
    the stored one), a sentence saying so; else ""."""
    if account.status != Account.Status.FAILING:
        return ""
    return render("token.failing_warning", {"error": account.last_error_params or account.last_error,
                                            "expires_at": expires_at.isoformat()})


@sensitive_variables("token")
def xoauth2_payload(*, email, token):
    """The SASL XOAUTH2 initial response for IMAP/POP/SMTP, before base64."""
    return f"user={email}\x01auth=Bearer {token}\x01\x01"


@sensitive_variables("token")
def xoauth2_string(*, email, token):
    """The base64 SASL XOAUTH2 initial response, as `show_token --xoauth2` and the API give it."""
    return base64.b64encode(xoauth2_payload(email=email, token=token).encode()).decode()
