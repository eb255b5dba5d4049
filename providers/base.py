"""The one small interface every identity provider adapter implements.

begin()    starts an interactive sign-in (device code; later a browser redirect),
complete() turns what the user did (or, for app-only flows, nothing) into tokens,
refresh()  gets a fresh access token from a refresh token (or a new app-only token).

Adapters raise ProviderError for every failure: `permanent` says whether trying again later
can help; `reauth` says the user must sign in again (Init. Token).
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from oauthmail.texts import facts_text

DEVICE_CODE = "device_code"
CLIENT_CREDENTIALS = "client_credentials"
AUTHORIZATION_CODE = "authorization_code"
APP_ONLY_FLOWS = {CLIENT_CREDENTIALS}


class ProviderError(Exception):
    """A failed token operation.

    `text` is the code of our sentence for it in oauthmail/texts.py and `params` its facts;
    `detail` is the provider's own words; `code` the provider's code (AADSTS50173, invalid_grant,
    HTTP 503 ...). The message is written in the active language whenever it is read, and
    `facts()` keeps it for later (an event, an account's last error) to be shown in the reader's.
    A plain `message` (no `text`) is kept as it is.
    """

    def __init__(self, message="", *, code="", permanent=False, reauth=False, retry_after=None, text="",
                 params=None, detail=""):
        super().__init__(message or text)
        self._message = message
        self.text = text
        self.params = params or {}
        self.detail = detail
        self.code = code
        self.permanent = permanent or reauth
        self.reauth = reauth
        self.retry_after = retry_after

    def facts(self):
        facts = {**self.params, "message": self.text, "detail": self.detail or self._message,
                 "provider_code": self.code}
        return {key: value for key, value in facts.items() if value not in ("", None)}

    @property
    def message(self):
        return facts_text(self.facts())

    def __str__(self):
        return self.message


class Pending(Exception):
    """The user has not finished signing in yet; ask again after `interval` seconds."""

    def __init__(self, interval):
        super().__init__(interval)
        self.interval = interval


@dataclass
class TokenSet:
    access_token: str
    expires_at: datetime
    refresh_token: str = ""
    refresh_token_expires_at: datetime | None = None
    signed_in_as: str = ""
    scopes: list[str] = field(default_factory=list)


@dataclass
class DeviceCode:
    """What the operator must see to sign in, and the opaque state to keep (encrypted) meanwhile."""

    user_code: str
    verification_uri: str
    message: str
    expires_at: datetime
    interval: int
    state: dict


@dataclass
class AuthRedirect:
    """Where to send the operator's browser, and the opaque state (PKCE verifier, nonce) to keep meanwhile."""

    url: str
    state: dict


def expires_in(seconds):
    return timezone.now() + timedelta(seconds=int(seconds))


class Provider:
    key = ""
    label = ""
    default_authority = ""
    # Where the provider gives no refresh-token expiry, its documented idle lifetime (an estimate).
    refresh_token_idle_lifetime = None

    def default_scopes(self, flow):
        raise NotImplementedError

    def begin(self, app, *, flow, login_hint="", redirect_uri="", state=""):
        """Start an interactive sign-in: a DeviceCode to show, or an AuthRedirect to follow."""
        raise NotImplementedError

    def complete(self, app, *, flow, state, subject="", response=None):
        """Tokens from a finished sign-in (`response`: the redirect's query), or an app-only token."""
        raise NotImplementedError

    def refresh(self, app, *, flow, refresh_token, subject=""):
        raise NotImplementedError

    def estimate_refresh_token_expiry(self, app, *, issued_at, now):
        """When the provider gives no refresh-token expiry: its documented policy."""
        return now + self.refresh_token_idle_lifetime if self.refresh_token_idle_lifetime else None
