"""Business rules of the token API: API clients, their keys, and reading a token. Keyword-only.

A key looks like ``om_<prefix>_<secret>``: the prefix finds the client, the SHA-256 of the whole
key is compared in constant time. The key itself is returned once, by the function that makes it.
"""
import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts import services as account_services

from . import lookup, throttle
from .models import ApiClient

KEY_TAG = "om"
# TokenUnavailable.code -> HTTP status of the API's answer.
STATUS_FOR = {"not_initialized": 409, "reauth_required": 409, "provider_error": 502, "busy": 503, "decryption": 500}
RETRY_AFTER_BUSY = 5
LAST_USED_EVERY = timedelta(minutes=1)


class ApiError(Exception):
    def __init__(self, message, *, status, code, headers=None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def _digest(key):
    return hashlib.sha256(key.encode()).hexdigest()


@sensitive_variables("key")
def api_client_new_key(*, client, actor):
    """Give the client a new key (replacing any old one) and return it: the only time it is seen."""
    prefix = secrets.token_hex(4)
    while ApiClient.objects.filter(key_prefix=prefix).exclude(pk=client.pk).exists():
        prefix = secrets.token_hex(4)
    key = f"{KEY_TAG}_{prefix}_{secrets.token_urlsafe(32)}"
    client.key_prefix, client.key_hash = prefix, _digest(key)
    if client._state.adding:
        client.created_by = actor
    client.save()
    return key


@sensitive_variables("key")
def api_client_create(*, name, accounts, actor):
    """A new active client allowed to read `accounts`; returns (client, key)."""
    with transaction.atomic():
        client = ApiClient(name=name)
        key = api_client_new_key(client=client, actor=actor)
        client.accounts.set(accounts)
    return client, key


def api_client_revoke(*, client, actor):
    ApiClient.objects.filter(pk=client.pk).update(is_active=False, revoked_at=timezone.now(), revoked_by=actor)
    client.refresh_from_db()


def _refused(address, *, record):
    if record:
        throttle.record_failure(address=address)
    return ApiError(_("A valid API key is required: Authorization: Bearer <key>."), status=401,
                    code="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="oauthmail"'})


def _note_use(client, now):
    """`last_used_at`, written at most once every LAST_USED_EVERY per client (not at every read)."""
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_EVERY:
        ApiClient.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY),
                                 pk=client.pk).update(last_used_at=now)


@sensitive_variables("key", "secret", "token", "answer")
def api_token_read(*, key, identifier, address):
    """A valid token of the account for the client whose key this is (see token_get: refreshed first when it
    expires within OAUTHMAIL_MIN_TOKEN_VALIDITY; when the account is failing, `warning` says so).

    ApiError 401 for a missing, unknown or revoked key; 429 while `address` (the caller's) is throttled for
    presenting too many wrong keys (api/throttle.py). An account the client may not read and one that does
    not exist get the same 403: a client must not learn which identifiers exist.

    A read of a valid stored token is one SQL statement (api/lookup.py) and writes nothing, but for the
    client's `last_used_at` once a minute and the read's event once an hour (accounts/services/reads.py).
    """
    now = timezone.now()
    tag, _sep, rest = key.partition("_")
    prefix, _sep, secret = rest.partition("_")
    well_formed = tag == KEY_TAG and bool(prefix) and bool(secret)
    window_after, failures = throttle.blocked_if(now=now)
    found = lookup.find(address=address, window_after=window_after, failures=failures,
                        prefix=prefix if well_formed else "", identifier=identifier)
    if found.blocked_since:
        wait = throttle.seconds_left(window_start=found.blocked_since, now=now)
        raise ApiError(_("Too many wrong API keys from this address: try again in %(seconds)d seconds.")
                       % {"seconds": wait}, status=429, code="too_many_attempts", headers={"Retry-After": str(wait)})
    client = found.client
    if client is None or not hmac.compare_digest(client.key_hash, _digest(key)) or not client.is_active:
        raise _refused(address, record=bool(key))  # no key at all is a misconfigured program, not a guess
    _note_use(client, now)
    account = found.account
    if account is None:
        raise ApiError(_("This API client may not read the account “%(identifier)s”.") % {"identifier": identifier},
                       status=403, code="forbidden")
    try:
        token, expires_at = account_services.token_get(account=account, actor=client.actor)
    except account_services.TokenUnavailable as error:
        headers = {"Retry-After": str(RETRY_AFTER_BUSY)} if error.code == "busy" else {}
        raise ApiError(str(error), status=STATUS_FOR.get(error.code, 500), code=error.code, headers=headers) from None
    account_services.read_record(account=account, actor=client.actor, params={"name": client.name})
    app = account.application
    answer = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_at": expires_at.isoformat() if expires_at else None,
        "email": account.email,
        "scopes": app.app_only_scopes() if account.is_app_only else app.delegated_scopes(),
        "xoauth2": account_services.xoauth2_string(email=account.email, token=token),
    }
    if warning := account_services.failing_warning(account=account, expires_at=expires_at):
        answer["warning"] = warning
    return answer
