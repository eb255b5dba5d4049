"""Google through google-auth and google-auth-oauthlib. The only module that imports them.

Endpoints come from the OpenID configuration published at the application's authority
(https://accounts.google.com by default), so a local identity provider is just another authority.
"""
import base64
import json
from datetime import timedelta

import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account
import oauthlib.oauth2
import requests
from django.conf import settings
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables
from google_auth_oauthlib.flow import Flow

from oauthmail.texts import TEXTS

from . import http
from .base import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, AuthRedirect, Provider, ProviderError, TokenSet, expires_in

MAIL_SCOPE = "https://mail.google.com/"
IDENTITY_SCOPES = ["openid", "email"]
REAUTH_ERRORS = ("invalid_grant", "access_denied")


def _error(error, description=""):
    """Our words for Google's `error` (oauthmail/texts.py), then Google's own description."""
    return ProviderError(
        text=f"google.{error}" if f"google.{error}" in TEXTS else "google.error", detail=description or error,
        code=error, permanent=error not in ("temporarily_unavailable", "server_error", "internal_failure"),
        reauth=error in REAUTH_ERRORS,
    )


def _transport_error(exc):
    if isinstance(exc, google.auth.exceptions.TransportError) and isinstance(exc.__cause__, Exception):
        exc = exc.__cause__  # what our HTTP client raised
    if isinstance(exc, http.ExchangeTimeout):
        return ProviderError(text=exc.text, params=exc.params, code="timeout")
    if isinstance(exc, http.TransientHTTPError):
        return ProviderError(text="google.unavailable", params={"status": exc.status}, code=f"HTTP {exc.status}",
                             retry_after=exc.retry_after)
    return ProviderError(text="google.unreachable", params={"error": type(exc).__name__}, code="network")


class _Transport(google.auth.transport.requests.Request):
    """google-auth's transport over our HTTP client (timeouts, certificates, 5xx as transient)."""

    def __init__(self):
        super().__init__(session=http.client)


class GoogleProvider(Provider):
    key = "google"
    label = gettext_lazy("Google")
    default_authority = "https://accounts.google.com"
    refresh_token_idle_lifetime = timedelta(days=180)  # Google: revoked after six months unused
    testing_refresh_token_lifetime = timedelta(days=7)  # apps whose consent screen is still "Testing"
    # Gmail's servers, for Test connection: (host, port, security).
    mail_servers = {
        "imap": ("imap.gmail.com", 993, "tls"),
        "pop": ("pop.gmail.com", 995, "tls"),
        "smtp": ("smtp.gmail.com", 587, "starttls"),
    }

    def default_scopes(self, flow):
        return [MAIL_SCOPE] if flow == CLIENT_CREDENTIALS else [MAIL_SCOPE, *IDENTITY_SCOPES]

    def _endpoints(self, app):
        try:
            return http.client.discover(app.authority_base)
        except (http.TransientHTTPError, requests.RequestException, ValueError) as exc:
            raise _transport_error(exc) from None

    @sensitive_variables("config")
    def _flow(self, app, *, redirect_uri, code_verifier=None):
        endpoints = self._endpoints(app)
        config = {"web": {
            "client_id": app.client_id,
            "client_secret": app.client_secret if app.has_client_secret else "",
            "auth_uri": endpoints["authorization_endpoint"],
            "token_uri": endpoints["token_endpoint"],
        }}
        flow = Flow.from_client_config(
            config, scopes=app.delegated_scopes(), redirect_uri=redirect_uri,
            code_verifier=code_verifier, autogenerate_code_verifier=code_verifier is None,
        )
        http.bounded(flow.oauth2session)  # the code exchange is bounded like every other request
        return flow

    def begin(self, app, *, flow, login_hint="", redirect_uri="", state=""):
        if flow != AUTHORIZATION_CODE:
            raise ProviderError(text="google.unsupported_flow", code="unsupported_flow", permanent=True)
        oauth_flow = self._flow(app, redirect_uri=redirect_uri)
        url, _state = oauth_flow.authorization_url(
            state=state, access_type="offline", prompt="consent", login_hint=login_hint,
            include_granted_scopes="true",
        )
        return AuthRedirect(url=url, state={"code_verifier": oauth_flow.code_verifier, "redirect_uri": redirect_uri})

    def complete(self, app, *, flow, state, subject="", response=None):
        if flow == CLIENT_CREDENTIALS:
            return self._service_account_token(app, subject=subject)
        if response.get("error"):
            raise _error(response["error"], response.get("error_description", ""))
        oauth_flow = self._flow(app, redirect_uri=state["redirect_uri"], code_verifier=state["code_verifier"])
        try:
            token = oauth_flow.fetch_token(
                code=response.get("code", ""), timeout=settings.OAUTHMAIL_HTTP_TIMEOUT,
                include_client_id=True,
            )
        except Warning as changed:
            # oauthlib raises "Scope has changed" as an exception (unless OAUTHLIB_RELAX_TOKEN_SCOPE is set)
            # whenever the answer's scopes differ from those asked, even in form only: Google writes `email`
            # as .../auth/userinfo.email and leaves `openid` out. The tokens come with it: judge them below.
            token = getattr(changed, "token", None)
            if token is None:
                raise
        except oauthlib.oauth2.OAuth2Error as exc:
            raise _error(exc.error, exc.description or "") from None
        except (http.TransientHTTPError, requests.RequestException) as exc:
            raise _transport_error(exc) from None
        except ValueError:  # oauthlib could not read the answer (not JSON: a proxy's or a server's error page)
            raise ProviderError(text="google.bad_response", code="bad_response") from None
        granted = token.get("scope", [])
        granted = granted if isinstance(granted, list) else str(granted or "").split()
        _require_granted(app.delegated_scopes(), granted)
        claims = _id_token_claims(token["id_token"]) if token.get("id_token") else {}
        return TokenSet(
            access_token=token["access_token"],
            expires_at=expires_in(token.get("expires_in", 3600)),
            refresh_token=token.get("refresh_token", ""),
            signed_in_as=claims.get("email", ""),
            scopes=granted,
        )

    def refresh(self, app, *, flow, refresh_token, subject=""):
        if flow == CLIENT_CREDENTIALS:
            return self._service_account_token(app, subject=subject)
        credentials = google.oauth2.credentials.Credentials(
            token=None, refresh_token=refresh_token, token_uri=self._endpoints(app)["token_endpoint"],
            client_id=app.client_id, client_secret=app.client_secret if app.has_client_secret else None,
        )
        self._refresh(credentials)
        return TokenSet(
            access_token=credentials.token, expires_at=_aware(credentials.expiry),
            refresh_token=credentials.refresh_token or refresh_token,
        )

    @sensitive_variables("info", "credentials")
    def _service_account_token(self, app, *, subject):
        if not app.service_account_key:
            raise ProviderError(text="google.no_service_account", code="no_service_account", permanent=True)
        info = json.loads(app.service_account_key)
        info["token_uri"] = self._endpoints(app)["token_endpoint"]
        credentials = google.oauth2.service_account.Credentials.from_service_account_info(
            info, scopes=app.app_only_scopes(), subject=subject
        )
        self._refresh(credentials)
        return TokenSet(access_token=credentials.token, expires_at=_aware(credentials.expiry))

    def _refresh(self, credentials):
        try:
            credentials.refresh(_Transport())
        except google.auth.exceptions.RefreshError as exc:
            data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            raise _error(data.get("error", "invalid_grant"), data.get("error_description", "")) from None
        except google.auth.exceptions.TransportError as exc:
            raise _transport_error(exc) from None
        except (http.TransientHTTPError, requests.RequestException) as exc:
            raise _transport_error(exc) from None

    def estimate_refresh_token_expiry(self, app, *, issued_at, now):
        if app.google_testing:
            return issued_at + self.testing_refresh_token_lifetime
        return now + self.refresh_token_idle_lifetime


def _require_granted(asked, granted):
    """Every scope asked for but the identity ones (which Google rewords or leaves out) must be granted: a
    user may untick Gmail on Google's consent screen, and a token without it opens no mailbox."""
    if not granted:  # no scope in the answer: RFC 6749 5.1, the scopes asked for were granted
        return
    missing = [scope for scope in asked if scope not in IDENTITY_SCOPES + ["profile"] and scope not in granted]
    if missing:
        raise ProviderError(text="google.scope_not_granted", params={"scopes": ", ".join(missing)},
                            code="scope_not_granted", permanent=True)


def _id_token_claims(id_token):
    """The ID token's claims. It came straight from the token endpoint over verified TLS, which OpenID
    Connect accepts in place of checking its signature (Core 1.0, 3.1.3.7); msal does the same."""
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _aware(naive_utc):
    from datetime import UTC

    return naive_utc.replace(tzinfo=UTC)
