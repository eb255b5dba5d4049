"""What the test identity provider remembers, and the rules of the OAuth grants it runs.

Pure logic, no HTTP: registered clients, device codes, authorization codes, refresh and
access tokens, injected failures and the log of token-endpoint requests. Every method is
thread-safe. ``TestIdentityProvider`` (server.py) inherits from this class, so the public
methods here are the provider's Python API and, through ``/_control``, its HTTP API.
Problems are raised as ``OAuthError``; microsoft.py and google.py word them for the wire.
"""
import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import replace

from . import jose
from .clients import Client, unknown_client
from .errors import OAuthError, invalid_grant
from .records import AuthorizationCode, DeviceCode, Failure, Grant, RefreshToken, Tokens

DEFAULT_SETTINGS = {
    "device_interval": 1,  # seconds a device-code poller must wait between polls
    "device_expires_in": 900,
    "access_token_lifetime": 3600,
    "rotate_refresh_tokens": True,  # Microsoft: each refresh answers a new refresh token, the old one is used up
    "google_rotates": False,  # the same for Google, which normally keeps refresh tokens
    "latency": 0.0,  # seconds slept before answering each token-endpoint request
    "next_sign_in": None,  # who signs in at the next authorize request (default: its login_hint)
    # Google answers scopes in its own words: `email` as .../auth/userinfo.email, `profile` as
    # .../auth/userinfo.profile, and no `openid` (the ID token still comes), as accounts.google.com does.
    "google_rewrites_scopes": False,
    "google_withheld_scopes": [],  # scopes the user unticks on Google's consent screen (granular consent)
}


def object_id(email: str) -> str:
    """A user's stable id: Entra's ``oid``, and the ``sub`` of token introspection."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{email.lower()}"))


def random_token() -> str:
    return secrets.token_urlsafe(32)


class IdentityProviderState:
    def __init__(self):
        self._lock = threading.RLock()
        self.reset()

    # ----- control API ---------------------------------------------------------------------------
    def reset(self):
        """Forget all clients, users, tokens, codes, failures and recorded requests; restore defaults."""
        with self._lock:
            self.set(**DEFAULT_SETTINGS)
            self._clients: dict[str, Client] = {}
            self._device_codes: dict[str, DeviceCode] = {}
            self._user_codes: dict[str, DeviceCode] = {}
            self._auth_codes: dict[str, AuthorizationCode] = {}
            self._refresh_tokens: dict[str, RefreshToken] = {}
            self._access_tokens: dict[str, tuple[Grant, float]] = {}
            self._consents: set[tuple[str, str]] = set()
            self._failures: list[Failure] = []
            self._deny_next_sign_in = False
            self._token_requests: list[dict] = []
            self.refresh_token_reuse = 0
            self.token_requests_in_flight = 0  # arrived at the token endpoint, not answered yet

    def set(self, **settings):
        """Change settings (the keys of DEFAULT_SETTINGS), e.g. ``set(latency=0.05)``."""
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        for name, value in settings.items():
            setattr(self, name, value)

    def add_client(self, client_id, secret=None, certificate_pem=None, service_account_public_key_pem=None,
                   delegated_scopes=None):
        """Register an application; without ``secret`` and ``certificate_pem`` it is a public client.
        With ``service_account_public_key_pem`` it is a Google service account whose client email is
        ``client_id``; ``delegated_scopes`` then limits what it may get for the users it impersonates."""
        client = Client.register(client_id, secret, certificate_pem, service_account_public_key_pem,
                                 delegated_scopes)
        with self._lock:
            self._clients[client_id] = client

    def approve(self, user_code, email):
        """The user ``email`` signs in with the pending device code ``user_code``."""
        with self._lock:
            device = self._pending_device_code(user_code)
            device.status, device.grant = "approved", replace(device.grant, email=email)

    def decline(self, user_code):
        with self._lock:
            self._pending_device_code(user_code).status = "declined"

    def expire(self, user_code):
        with self._lock:
            self._pending_device_code(user_code).status = "expired"

    def pending_user_codes(self) -> list[str]:
        """User codes of device flows nobody has approved, declined or let expire yet."""
        now = time.time()
        with self._lock:
            return [d.user_code for d in self._user_codes.values() if d.status == "pending" and now < d.expires_at]

    def issue_refresh_token(self, client_id, email, scope="openid profile offline_access") -> str:
        """A refresh token as if ``email`` had signed in to ``client_id`` earlier."""
        with self._lock:
            return self._new_refresh_token(Grant(client_id, email, scope, offline=True))

    def revoke(self, email, access_tokens=False) -> int:
        """Revoke every live refresh token of ``email`` (they now give AADSTS50173); returns how many.
        With ``access_tokens``, its access tokens die at once too (as with continuous access evaluation)."""
        with self._lock:
            live = [t for t in self._refresh_tokens.values() if t.grant.email == email and t.status == "live"]
            for token in live:
                token.status = "revoked"
            if access_tokens:
                for token in [t for t, (grant, _) in self._access_tokens.items() if grant.email == email]:
                    del self._access_tokens[token]
            return len(live)

    def fail_next(self, count, status=503, retry_after=None, body=None, location=None):
        """The next ``count`` token-endpoint requests answer ``status``; ``body`` may be a dict (sent
        as JSON) or a str (sent as text/plain), default a JSON ``temporarily_unavailable`` error;
        ``location``, a Location header (a redirect)."""
        with self._lock:
            self._failures.extend([Failure(status, retry_after, body, location)] * count)

    def deny_next_sign_in(self):
        """The next authorize request redirects back with ``error=access_denied``."""
        with self._lock:
            self._deny_next_sign_in = True

    def valid_access_token(self, token) -> dict | None:
        """``{"email", "client_id", "scope", "expires_at"}`` if ``token`` is a live access token."""
        with self._lock:
            grant, expires_at = self._access_tokens.get(token, (None, 0))
        if grant is None or expires_at <= time.time():
            return None
        return {"email": grant.email, "client_id": grant.client_id, "scope": grant.scope, "expires_at": expires_at}

    @property
    def token_requests(self) -> list[dict]:
        """One dict per token-endpoint request: path, grant_type, client_id, refresh_token, scope, status, at
        (arrival) and answered (wall-clock times)."""
        with self._lock:
            return [dict(entry) for entry in self._token_requests]

    def stats(self) -> dict:
        with self._lock:
            return {"token_requests": len(self._token_requests), "refresh_token_reuse": self.refresh_token_reuse}

    # ----- used by the endpoints -----------------------------------------------------------------
    def count_in_flight(self, change: int):
        with self._lock:
            self.token_requests_in_flight += change

    def record_token_request(self, entry: dict):
        with self._lock:
            self._token_requests.append(entry)

    def take_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def client(self, client_id) -> Client:
        """The registered client, else invalid_client (AADSTS700016)."""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise unknown_client(client_id)
        return client

    def issue(self, grant: Grant) -> Tokens:
        """An access token for ``grant``, with a refresh token if the grant is offline."""
        with self._lock:
            return self._issue(grant, self._new_refresh_token(grant) if grant.offline else None)

    def _issue(self, grant, refresh_token) -> Tokens:
        access_token = random_token()
        self._access_tokens[access_token] = (grant, time.time() + self.access_token_lifetime)
        return Tokens(grant, access_token, self.access_token_lifetime, refresh_token)

    def _new_refresh_token(self, grant) -> str:
        token = random_token()
        self._refresh_tokens[token] = RefreshToken(replace(grant, nonce=None))
        return token

    def take_sign_in(self, login_hint) -> str:
        """Who signs in at an authorization endpoint now: ``next_sign_in`` (used up), else ``login_hint``."""
        with self._lock:
            denied, self._deny_next_sign_in = self._deny_next_sign_in, False
            email, self.next_sign_in = self.next_sign_in or login_hint, None
        if denied:
            raise OAuthError("access_denied", "User declined to consent to access the app.", aadsts=65004)
        if not email:
            raise OAuthError("login_required", "No user is signed in: send login_hint or set next_sign_in.",
                             aadsts=50058)
        return email

    def first_consent(self, client_id, email) -> bool:
        """True the first time ``email`` consents to ``client_id``."""
        with self._lock:
            is_first = (client_id, email) not in self._consents
            self._consents.add((client_id, email))
            return is_first

    def start_device_flow(self, grant: Grant, user_code: str) -> DeviceCode:
        device = DeviceCode(random_token(), user_code.upper(), grant, time.time() + self.device_expires_in,
                            self.device_interval)
        with self._lock:
            self._device_codes[device.device_code] = self._user_codes[device.user_code] = device
        return device

    def _pending_device_code(self, user_code) -> DeviceCode:
        device = self._user_codes.get(user_code.upper())
        if device is None or device.status != "pending" or device.expires_at <= time.time():
            raise KeyError(f"no pending device code with user code {user_code!r}")
        return device

    def poll_device_code(self, client_id, device_code) -> Tokens:
        """The device-code grant (RFC 8628 sections 3.4 and 3.5)."""
        now = time.time()
        with self._lock:
            device = self._device_codes.get(device_code)
            if device is None or device.grant.client_id != client_id:
                raise invalid_grant(70000, "The provided value for the input parameter 'device_code' is not valid.")
            if device.status == "redeemed":
                raise invalid_grant(70000, "The provided device code has already been redeemed.")
            if device.status == "expired" or device.expires_at <= now:
                device.status = "expired"
                raise OAuthError("expired_token", "Verification code expired.", aadsts=70019)
            previous_poll, device.last_poll = device.last_poll, now
            if previous_poll is not None and now - previous_poll < device.interval:
                raise OAuthError("slow_down", f"Polling too fast: wait {device.interval} s between requests.",
                                 google="Forbidden")
            if device.status == "declined":
                raise OAuthError("authorization_declined", "The user declined the authorization request.",
                                 aadsts=70000, google="Forbidden")
            if device.status == "pending":
                raise OAuthError("authorization_pending",
                                 "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                                 aadsts=70016, google="Precondition Required")
            device.status = "redeemed"
            return self.issue(device.grant)

    def create_authorization_code(self, grant, redirect_uri, code_challenge=None, code_challenge_method=None) -> str:
        code = random_token()
        record = AuthorizationCode(grant, redirect_uri, code_challenge, code_challenge_method, time.time() + 600)
        with self._lock:
            self._auth_codes[code] = record
        return code

    def redeem_authorization_code(self, client_id, code, redirect_uri, code_verifier) -> Tokens:
        """The authorization-code grant with PKCE (RFC 6749 section 4.1.3, RFC 7636)."""
        with self._lock:
            record = self._auth_codes.get(code)
            if record is None or record.grant.client_id != client_id:
                raise invalid_grant(70000, "The provided value for the 'code' parameter is not valid.",
                                    google="Malformed auth code.")
            if record.redeemed:
                raise invalid_grant(54005, "OAuth2 Authorization code was already redeemed, please retry with a "
                                           "new valid code or use an existing refresh token.")
            if record.expires_at <= time.time():
                raise invalid_grant(70008, "The provided authorization code or refresh token has expired due to "
                                           "inactivity.")
            if redirect_uri != record.redirect_uri:
                raise invalid_grant(500112, f"The reply address '{redirect_uri}' does not match the reply address "
                                            f"'{record.redirect_uri}' provided when requesting Authorization code.")
            if record.code_challenge and not pkce_matches(code_verifier, record.code_challenge,
                                                          record.code_challenge_method):
                raise invalid_grant(50148, "The code_verifier does not match the code_challenge supplied in the "
                                           "authorization request for PKCE.", google="Invalid code verifier.")
            record.redeemed = True
            return self.issue(record.grant)

    def redeem_refresh_token(self, client_id, token, *, rotate, scope=None, scope_must_be_granted=False) -> Tokens:
        """The refresh-token grant. The answer's refresh token is ``token`` itself unless ``rotate``."""
        with self._lock:
            record = self._refresh_tokens.get(token)
            if record is None or record.grant.client_id != client_id:
                raise invalid_grant(70000, "The provided value for the input parameter 'refresh_token' or "
                                           "'assertion' is not valid.")
            if record.status == "used":
                self.refresh_token_reuse += 1
                raise invalid_grant(70000, "The refresh token has already been used to get a new one.",
                                    google="Token has been expired or revoked.")
            if record.status == "revoked":
                raise invalid_grant(50173, "The provided grant has expired due to it being revoked, a fresh auth "
                                           "token is needed.", google="Token has been expired or revoked.")
            if scope and scope_must_be_granted and not set(scope.split()) <= set(record.grant.scope.split()):
                raise OAuthError("invalid_scope", "The requested scope was not granted.")
            if rotate:
                record.status = "used"
                token = self._new_refresh_token(record.grant)
            return self._issue(replace(record.grant, scope=scope or record.grant.scope), token)


def pkce_matches(verifier, challenge, method) -> bool:
    """RFC 7636 section 4.6: does ``verifier`` answer ``challenge`` (method S256 or plain)?"""
    if not verifier:
        return False
    expected = verifier
    if (method or "plain") != "plain":
        expected = jose.b64url_encode(hashlib.sha256(verifier.encode("utf-8")).digest())
    return secrets.compare_digest(expected.encode("utf-8"), challenge.encode("utf-8"))
