"""Microsoft Entra ID through msal. The only module that imports msal.

One msal client application per application and process (`_msal_app`), reused by every request and
thread: building one costs a discovery look-up, a certificate's key parsing, and msal's optional
import of msal_extensions (a failing import is looked up again each time). Its token cache and its
HTTP cache keep nothing, so that it behaves as a new one at every call: tokens live only in our
database, and a refused request is always sent again when retried.
"""

import hashlib
import re
import threading
import time
import warnings
from datetime import timedelta

import msal
import requests
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from oauthmail.texts import TEXTS

from . import http
from .base import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    DEVICE_CODE,
    AuthRedirect,
    DeviceCode,
    Pending,
    Provider,
    ProviderError,
    TokenSet,
    expires_in,
)

DELEGATED_SCOPES = [
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
]
APP_ONLY_SCOPES = ["https://outlook.office365.com/.default"]
PENDING_ERRORS = ("authorization_pending", "slow_down")
REAUTH_ERRORS = ("invalid_grant", "interaction_required", "consent_required")

AADSTS_RE = re.compile(r"AADSTS\d+")
APP_LIFETIME = http.DISCOVERY_TTL  # seconds a kept msal application is used: its endpoints are rediscovered
MAX_APPS = 256  # msal applications kept at most (one per application, credential and kind)


class _NoTokenCache(msal.TokenCache):
    """msal's token cache, keeping nothing. acquire_token_by_refresh_token, by device flow and by
    authorization code add the tokens they obtain (access, refresh, ID token, account) to the
    application's cache, and acquire_token_for_client looks there first: a kept application would
    otherwise hold every mailbox's tokens in memory and hand out an app-only token without asking."""

    def add(self, event, now=None):
        pass

    def modify(self, credential_type, old_entry, new_key_value_pairs=None):
        pass


class _NoHttpCache(dict):
    """msal's HTTP cache, keeping nothing: msal would answer a repeated request from it (an HTTP 400
    for 60 s, a discovery for a day) instead of sending it, so that a retry, or a refresh after
    the administrator has granted consent, would not reach the provider."""

    def __setitem__(self, key, value):
        pass


_apps = {}  # (client id, authority, public, credential fingerprint) -> (used until, msal application)
_apps_lock = threading.Lock()


def _fingerprint(credential):
    """A digest of the credential (secret or certificate), so that the key of a kept msal application
    changes with it without holding it."""
    if credential is None:
        return ""
    if isinstance(credential, dict):
        credential = "\0".join(credential[name] for name in sorted(credential))
    return hashlib.sha256(credential.encode()).hexdigest()


@sensitive_variables("credential")
def _msal_app(client_id, *, authority, credential):
    """The process's msal application for this client, authority and credential (None: a public
    client), built when there is none yet or the kept one is older than APP_LIFETIME. msal's
    applications may be shared between threads: what a call changes in one is its telemetry buffer,
    under a lock, and a certificate's signed client assertion, replaced whole when it is 9 minutes
    old (two threads may both sign a new one); our caches above keep nothing."""
    key = (client_id, authority, credential is None, _fingerprint(credential))
    now = time.monotonic()
    with _apps_lock:
        kept = _apps.get(key)
    if kept and kept[0] > now:
        return kept[1]
    options = dict(authority=authority, http_client=http.client, instance_discovery=False,
                   token_cache=_NoTokenCache(), http_cache=_NoHttpCache())
    if credential is None:
        msal_app = msal.PublicClientApplication(client_id, **options)
    else:
        msal_app = msal.ConfidentialClientApplication(client_id, client_credential=credential, **options)
    with _apps_lock:
        for stale in [k for k, (until, _app) in _apps.items() if until <= now]:
            del _apps[stale]
        if len(_apps) >= MAX_APPS:
            del _apps[next(iter(_apps))]  # the oldest
        _apps[key] = (now + APP_LIFETIME, msal_app)
    return msal_app


def _error_from(result):
    """A ProviderError from an OAuth error answer: our words for its `error` (oauthmail/texts.py), then
    the first line of Microsoft's description, which carries the AADSTS code."""
    error = result.get("error", "unknown_error")
    description = (result.get("error_description") or "").strip().splitlines()
    first_line = description[0] if description else ""
    codes = result.get("error_codes") or []
    match = AADSTS_RE.search(first_line)
    code = match.group(0) if match else (f"AADSTS{codes[0]}" if codes else error)
    text = f"microsoft.{error}" if f"microsoft.{error}" in TEXTS else "microsoft.error"
    return ProviderError(
        text=text, detail=first_line or error, code=code,
        permanent=error not in ("temporarily_unavailable", "server_error"),
        reauth=error in REAUTH_ERRORS,
    )


def _transport_error(exc, authority):
    if isinstance(exc, http.ExchangeTimeout):
        return ProviderError(text=exc.text, params=exc.params, code="timeout")
    if isinstance(exc, http.TransientHTTPError):
        return ProviderError(
            text="microsoft.unavailable", params={"status": exc.status}, code=f"HTTP {exc.status}",
            retry_after=exc.retry_after,
        )
    return ProviderError(
        text="microsoft.unreachable", params={"authority": authority, "error": type(exc).__name__}, code="network",
    )


class MicrosoftProvider(Provider):
    key = "microsoft"
    label = gettext_lazy("Microsoft Entra ID")
    default_authority = "https://login.microsoftonline.com"
    refresh_token_idle_lifetime = timedelta(days=90)  # Entra ID: 90 days after last use
    # Exchange Online's servers, for Test connection: (host, port, security).
    mail_servers = {
        "imap": ("outlook.office365.com", 993, "tls"),
        "pop": ("outlook.office365.com", 995, "tls"),
        "smtp": ("smtp.office365.com", 587, "starttls"),
    }

    def default_scopes(self, flow):
        return list(APP_ONLY_SCOPES if flow == CLIENT_CREDENTIALS else DELEGATED_SCOPES)

    def _authority(self, app):
        return f"{app.authority_base}/{app.tenant}"

    @staticmethod
    def _credential(app):
        """A certificate when one is uploaded, else the client secret, else None (a public client)."""
        if app.has_certificate:
            return {
                "private_key": app.certificate_key,
                "thumbprint": app.certificate_thumbprint,
                "public_certificate": app.certificate,
            }
        return app.client_secret if app.has_client_secret else None

    @sensitive_variables("credential")
    def _call(self, app, work, *, public=False, app_only=False):
        """Run `work(msal_app)` with the application's msal application, turning every failure into ProviderError.

        A confidential client whenever the application has a credential (device code is public-only
        in msal); app-only flows require one.
        """
        authority = self._authority(app)
        try:
            credential = None if public else self._credential(app)
            if app_only and credential is None:
                raise ProviderError(text="microsoft.no_client_credential", code="no_client_credential",
                                    permanent=True)
            return work(_msal_app(app.client_id, authority=authority, credential=credential))
        except (http.TransientHTTPError, requests.RequestException) as exc:
            raise _transport_error(exc, authority) from None
        except ValueError as exc:  # msal: the authority could not be discovered, or answered non-JSON
            raise ProviderError(
                text="microsoft.authority", params={"authority": authority, "error": str(exc).split(". ")[0]},
                code="authority", permanent=True,
            ) from None

    def _tokens(self, result):
        if "error" in result:
            raise _error_from(result)
        if not result.get("access_token"):
            raise ProviderError(text="microsoft.no_access_token", code="no_access_token", permanent=True)
        claims = result.get("id_token_claims") or {}
        refresh_expiry = result.get("refresh_token_expires_in")
        return TokenSet(
            access_token=result["access_token"],
            expires_at=expires_in(result.get("expires_in", 3600)),
            refresh_token=result.get("refresh_token", ""),
            refresh_token_expires_at=expires_in(refresh_expiry) if refresh_expiry else None,
            signed_in_as=claims.get("preferred_username") or claims.get("email") or "",
            scopes=(result.get("scope") or "").split(),
        )

    def begin(self, app, *, flow, login_hint="", redirect_uri="", state=""):
        if flow == AUTHORIZATION_CODE:

            def start_auth_code(msal_app):
                # The answer comes back as a query (GET), not form_post: a cross-site POST would not
                # carry the operator's SameSite=Lax session cookie, to which the state is bound.
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
                    return msal_app.initiate_auth_code_flow(
                        scopes=app.delegated_scopes(), redirect_uri=redirect_uri, state=state,
                        login_hint=login_hint, response_mode="query",
                    )

            auth_flow = self._call(app, start_auth_code)
            return AuthRedirect(url=auth_flow["auth_uri"], state=auth_flow)
        if flow != DEVICE_CODE:
            raise ValueError(flow)

        def start(msal_app):
            state = msal_app.initiate_device_flow(scopes=app.delegated_scopes())
            if "user_code" not in state:
                raise _error_from(state)
            return state

        state = self._call(app, start, public=True)
        return DeviceCode(
            user_code=state["user_code"],
            verification_uri=state["verification_uri"],
            message=state.get("message", ""),
            expires_at=expires_in(state["expires_in"]),
            interval=int(state.get("interval", 5)),
            state=state,
        )

    def complete(self, app, *, flow, state, subject="", response=None):
        if flow == CLIENT_CREDENTIALS:
            return self._app_only_token(app)
        if flow == AUTHORIZATION_CODE:
            if response.get("error"):
                raise _error_from(response)
            result = self._call(
                app,
                lambda msal_app: msal_app.acquire_token_by_auth_code_flow(state, response),
            )
            return self._tokens(result)

        def poll(msal_app):
            # exit_condition stops msal's own loop after exactly one token request.
            return msal_app.acquire_token_by_device_flow(state, exit_condition=lambda flow: True)

        result = self._call(app, poll, public=True)
        if result.get("error") in PENDING_ERRORS:
            raise Pending(int(state.get("interval", 5)))  # msal adds 5 s to it on slow_down
        return self._tokens(result)

    def refresh(self, app, *, flow, refresh_token, subject=""):
        if flow == CLIENT_CREDENTIALS:
            return self._app_only_token(app)
        result = self._call(
            app,
            lambda msal_app: msal_app.acquire_token_by_refresh_token(refresh_token, scopes=app.delegated_scopes()),
        )
        tokens = self._tokens(result)
        tokens.refresh_token = tokens.refresh_token or refresh_token  # not rotated: keep using the same one
        return tokens

    def _app_only_token(self, app):
        result = self._call(
            app,
            lambda msal_app: msal_app.acquire_token_for_client(scopes=app.app_only_scopes()),
            app_only=True,
        )
        return self._tokens(result)
