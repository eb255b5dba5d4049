"""Google's OAuth 2.0 endpoints (accounts.google.com, oauth2.googleapis.com), at the provider's root.

Shaped for google-auth (refresh and service-account grants) and google-auth-oauthlib's
``Flow`` (authorization code with PKCE; client secret sent with HTTP Basic by
requests-oauthlib). Errors are worded like Google's:
``{"error": "invalid_grant", "error_description": "Bad Request"}``.
"""
import hashlib
import secrets
import string
import time

from . import jose
from .errors import OAuthError
from .protocol import Response, authorization_endpoint, json_response
from .records import Grant

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth always signs service-account assertions for this audience, whatever its token_uri.
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token")
MAX_ASSERTION_LIFETIME = 3600
CLOCK_SKEW = 300
# Google refuses these scopes in the device flow ("limited-input device" clients cannot read mail).
DEVICE_FLOW_FORBIDDEN_SCOPE_PREFIXES = ("https://mail.google.com/", "https://www.googleapis.com/auth/gmail.")
# Google's status and error name where Entra's differ.
GOOGLE_ERRORS = {
    "authorization_pending": (428, "authorization_pending"),
    "slow_down": (403, "slow_down"),
    "authorization_declined": (403, "access_denied"),
}


def google_error(error, description, status=400) -> OAuthError:
    """A problem only Google reports."""
    return OAuthError(error, description, google=description, status=status)


def error_response(error: OAuthError) -> Response:
    status, name = GOOGLE_ERRORS.get(error.error, (error.status, error.error))
    return json_response({"error": name, "error_description": error.google}, status)


def user_id(email: str) -> str:
    """Google's ``sub``: a stable 21-digit number per account."""
    digest = hashlib.sha256(email.lower().encode("utf-8")).digest()
    return str(10**20 + int.from_bytes(digest[:8], "big") % (9 * 10**20))


def discovery(idp, request) -> Response:
    """``/.well-known/openid-configuration`` (Google's lives at accounts.google.com)."""
    return json_response({
        "issuer": idp.url,
        "authorization_endpoint": f"{idp.url}/o/oauth2/v2/auth",
        "device_authorization_endpoint": f"{idp.url}/device/code",
        "token_endpoint": f"{idp.url}/token",
        "userinfo_endpoint": f"{idp.url}/userinfo",
        "jwks_uri": f"{idp.url}/oauth2/v3/certs",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT, JWT_BEARER_GRANT],
    })


def keys(idp, request) -> Response:
    """``/oauth2/v3/certs``: the JWK set that verifies the ID tokens."""
    return json_response(idp.signing_key.jwks())


def authorize(idp, request) -> Response:
    """``/o/oauth2/v2/auth``: a refresh token comes only with ``access_type=offline``, and only on the
    user's first consent to the client or when ``prompt=consent`` asks for consent again."""
    query = request.query

    def offline(email):
        first_consent = idp.first_consent(query.get("client_id"), email)
        asked_consent = "consent" in query.get("prompt", "").split()
        return query.get("access_type") == "offline" and (first_consent or asked_consent)

    granted = " ".join(s for s in query.get("scope", "").split() if s not in idp.google_withheld_scopes)
    return authorization_endpoint(idp, request, offline=offline, describe_errors=False, grant_scope=granted,
                                  scope=answered_scope(idp, granted), authuser="0")


GOOGLE_SCOPE_WORDS = {"email": "https://www.googleapis.com/auth/userinfo.email",
                      "profile": "https://www.googleapis.com/auth/userinfo.profile", "openid": None}


def answered_scope(idp, scope) -> str:
    """The scope as Google words it in its answers, when ``google_rewrites_scopes`` is set."""
    if not idp.google_rewrites_scopes:
        return scope
    words = (GOOGLE_SCOPE_WORDS.get(s, s) for s in scope.split())
    return " ".join(sorted(w for w in words if w))


def device_code(idp, request) -> Response:
    """``/device/code``: the device authorization request (Google answers ``verification_url``)."""
    form = request.form
    try:
        idp.client(form.get("client_id"))
        scopes = form.get("scope", "").split()
        if not scopes:
            raise google_error("invalid_request", "Missing required parameter: scope")
        forbidden = [s for s in scopes if s.startswith(DEVICE_FLOW_FORBIDDEN_SCOPE_PREFIXES)]
        if forbidden:
            raise google_error("invalid_scope", f"Invalid device flow scope: {' '.join(forbidden)}")
    except OAuthError as error:
        return error_response(error)
    user_code = "-".join("".join(secrets.choice(string.ascii_uppercase) for _ in range(4)) for _ in range(2))
    device = idp.start_device_flow(Grant(form["client_id"], None, form["scope"], offline=True), user_code)
    return json_response({
        "device_code": device.device_code,
        "user_code": device.user_code,
        "expires_in": int(idp.device_expires_in),
        "interval": device.interval,
        "verification_url": f"{idp.url}/device",
    })


def token(idp, request) -> Response:
    """``/token``: authorization_code, refresh_token (not rotated unless ``idp.google_rotates``),
    device_code, and the service-account jwt-bearer grant."""
    form = request.form
    try:
        tokens = _run_grant(idp, request)
    except OAuthError as error:
        return error_response(error)
    grant = tokens.grant
    body = {"access_token": tokens.access_token, "expires_in": tokens.expires_in}
    if tokens.refresh_token and tokens.refresh_token != form.get("refresh_token"):
        body["refresh_token"] = tokens.refresh_token
    body.update(scope=answered_scope(idp, grant.scope), token_type="Bearer")
    if "openid" in grant.scope.split():
        body["id_token"] = idp.signing_key.sign(_id_token_claims(idp, grant, tokens.access_token))
    return json_response(body)


def _run_grant(idp, request):
    form = request.form
    grant_type = form.get("grant_type")
    if grant_type == JWT_BEARER_GRANT:
        return _service_account_grant(idp, form.get("assertion") or "", request.url)
    if not request.client_id:
        raise google_error("invalid_request", "Could not determine client ID from request.")
    idp.client(request.client_id).authenticate(secret=request.client_secret)
    if grant_type == "authorization_code":
        return idp.redeem_authorization_code(request.client_id, form.get("code"), form.get("redirect_uri"),
                                             form.get("code_verifier"))
    if grant_type == "refresh_token":
        return idp.redeem_refresh_token(request.client_id, form.get("refresh_token"), rotate=idp.google_rotates,
                                        scope=form.get("scope"), scope_must_be_granted=True)
    if grant_type == DEVICE_CODE_GRANT:
        return idp.poll_device_code(request.client_id, form.get("device_code"))
    raise google_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")


def _service_account_grant(idp, assertion, token_endpoint):
    """RFC 7523 section 2.1 as Google runs it for service accounts: ``iss`` is the service account's
    client email, ``sub`` the Workspace user it impersonates (domain-wide delegation)."""
    try:
        _, claims = jose.decode_unverified(assertion)
        client = idp.client(claims.get("iss"))
    except (jose.InvalidJWT, OAuthError):
        client = None
    if client is None or client.service_account_public_key is None:
        raise google_error("invalid_grant", "Invalid grant: account not found")
    try:
        jose.verify(assertion, client.service_account_public_key)
    except jose.InvalidJWT:
        raise google_error("invalid_grant", "Invalid JWT Signature.") from None
    if claims.get("aud") not in (token_endpoint, *GOOGLE_TOKEN_AUDIENCES):
        raise google_error("invalid_grant", "Invalid JWT: Failed audience check. The expected audience is "
                                            f"{token_endpoint}.")
    now, issued, expires = time.time(), claims.get("iat", 0), claims.get("exp", 0)
    if issued > now + CLOCK_SKEW or expires < now - CLOCK_SKEW or expires - issued > MAX_ASSERTION_LIFETIME:
        raise google_error("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                                            "reasonable timeframe. Check your iat and exp values in the JWT claim.")
    scope, subject = claims.get("scope"), claims.get("sub")
    if not scope:
        raise google_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    if subject and client.delegated_scopes is not None and not set(scope.split()) <= client.delegated_scopes:
        raise google_error("unauthorized_client", "Client is unauthorized to retrieve access tokens using this "
                           "method, or client not authorized for any of the scopes requested.", status=401)
    return idp.issue(Grant(client.client_id, subject or client.client_id, scope))


def _id_token_claims(idp, grant, access_token) -> dict:
    now = int(time.time())
    claims = {
        "iss": idp.url,
        "azp": grant.client_id,
        "aud": grant.client_id,
        "sub": user_id(grant.email),
        "email": grant.email,
        "email_verified": True,
        "at_hash": jose.b64url_encode(hashlib.sha256(access_token.encode("ascii")).digest()[:16]),
        "iat": now,
        "exp": now + 3600,
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return claims
