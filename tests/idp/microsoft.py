"""Microsoft Entra ID's v2.0 endpoints (``https://login.microsoftonline.com/{tenant}/...``).

Shaped so that msal works against them unmodified, given ``authority=f"{idp.url}/{tenant}"``
and ``instance_discovery=False``. ``{tenant}`` is any path segment: a GUID, a domain,
``common``, ``organizations`` or ``consumers``; ``nonexistent-tenant.example`` is unknown.
"""
import hashlib
import json
import re
import secrets
import string
import time
import uuid
from datetime import UTC, datetime

from . import jose
from .errors import OAuthError, invalid_client, missing_parameter
from .protocol import Response, authorization_endpoint, json_response
from .records import Grant
from .state import object_id

UNKNOWN_TENANTS = {"nonexistent-tenant.example"}
MULTI_TENANT = {"common", "organizations"}  # their discovery issuer has a "{tenantid}" placeholder
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # personal Microsoft accounts
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_ALPHABET = string.ascii_uppercase + string.digits
PATH = re.compile(
    r"^/(?P<tenant>[^/]+)/(?P<endpoint>v2\.0/\.well-known/openid-configuration"
    r"|oauth2/v2\.0/(?:authorize|token|devicecode)|discovery/v2\.0/keys)$"
)


def tenant_id(tenant: str, email: str | None = None) -> str:
    """The directory GUID behind a tenant path segment (for common/organizations: the user's home tenant)."""
    tenant = tenant.lower()
    if tenant == "consumers":
        return CONSUMERS_TENANT_ID
    if tenant in MULTI_TENANT:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, email.rpartition("@")[2].lower())) if email else "{tenantid}"
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, tenant))


def error_response(idp, error: OAuthError) -> Response:
    """An error as Entra words it: AADSTS code, trace and correlation ids, timestamp."""
    timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    prefix = f"AADSTS{error.aadsts}: " if error.aadsts else ""
    body = {
        "error": error.error,
        "error_description": f"{prefix}{error.description}\r\nTrace ID: {trace_id}\r\n"
                             f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}",
        "error_codes": [error.aadsts] if error.aadsts else [],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    if error.aadsts:
        body["error_uri"] = f"{idp.url}/error?code={error.aadsts}"
    return json_response(body, error.status)


def handle(idp, request, tenant, endpoint) -> Response:
    """Dispatch one of the endpoints PATH matches (the token endpoint is wrapped by server.py)."""
    if tenant.lower() in UNKNOWN_TENANTS:
        return error_response(idp, OAuthError(
            "invalid_tenant",
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
            "subscriptions for the tenant.",
            aadsts=90002,
        ))
    handler = {
        ("GET", "v2.0/.well-known/openid-configuration"): discovery,
        ("GET", "discovery/v2.0/keys"): keys,
        ("GET", "oauth2/v2.0/authorize"): authorize,
        ("POST", "oauth2/v2.0/devicecode"): devicecode,
        ("POST", "oauth2/v2.0/token"): token,
    }.get((request.method, endpoint))
    if handler is None:
        return json_response({"error": "invalid_request", "error_description": "Method not allowed."}, 405)
    return handler(idp, request, tenant)


def discovery(idp, request, tenant) -> Response:
    """``/{tenant}/v2.0/.well-known/openid-configuration``: the OpenID Provider Metadata msal reads first."""
    base = f"{idp.url}/{tenant}"
    return json_response({
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{idp.url}/{tenant_id(tenant)}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{idp.url}/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "code_challenge_methods_supported": ["plain", "S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username",
                             "email", "oid", "tid", "ver"],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
    })


def keys(idp, request, tenant) -> Response:
    """``/{tenant}/discovery/v2.0/keys``: the JWK set that verifies the ID tokens."""
    return json_response(idp.signing_key.jwks())


def authorize(idp, request, tenant) -> Response:
    """``/{tenant}/oauth2/v2.0/authorize``: a refresh token comes only with the offline_access scope."""
    scopes = request.query.get("scope", "").split()
    return authorization_endpoint(idp, request, offline=lambda email: "offline_access" in scopes,
                                  describe_errors=True, session_state=str(uuid.uuid4()))


def devicecode(idp, request, tenant) -> Response:
    """``/{tenant}/oauth2/v2.0/devicecode``: RFC 8628 device authorization, Entra-style user code and message."""
    form = request.form
    try:
        if not form.get("client_id"):
            raise missing_parameter("client_id")
        idp.client(form["client_id"])
        if not form.get("scope"):
            raise missing_parameter("scope")
    except OAuthError as error:
        return error_response(idp, error)
    grant = Grant(form["client_id"], None, form["scope"], offline="offline_access" in form["scope"].split())
    device = idp.start_device_flow(grant, "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(9)))
    verification_uri = f"{idp.url}/devicelogin"
    return json_response({
        "user_code": device.user_code,
        "device_code": device.device_code,
        "verification_uri": verification_uri,
        "expires_in": int(idp.device_expires_in),
        "interval": device.interval,
        "message": f"To sign in, use a web browser to open the page {verification_uri} and enter the code "
                   f"{device.user_code} to authenticate.",
    })


def token(idp, request, tenant) -> Response:
    """``/{tenant}/oauth2/v2.0/token``: device_code, refresh_token, authorization_code, client_credentials."""
    try:
        tokens = _run_grant(idp, request)
    except OAuthError as error:
        return error_response(idp, error)
    grant = tokens.grant
    body = {"token_type": "Bearer"}
    if grant.email is not None:
        body["scope"] = " ".join(s for s in grant.scope.split() if s != "offline_access")
    body.update(expires_in=tokens.expires_in, ext_expires_in=tokens.expires_in, access_token=tokens.access_token)
    if grant.email is None:  # client credentials: an app-only token
        return json_response(body)
    if tokens.refresh_token:
        body["refresh_token"] = tokens.refresh_token
    tid = tenant_id(tenant, grant.email)
    if "openid" in grant.scope.split():
        body["id_token"] = idp.signing_key.sign(_id_token_claims(idp, grant, tid))
    if request.form.get("client_info") == "1":
        client_info = {"uid": object_id(grant.email), "utid": tid}
        body["client_info"] = jose.b64url_encode(json.dumps(client_info).encode("utf-8"))
    return json_response(body)


def _run_grant(idp, request):
    form = request.form
    grant_type, client_id = form.get("grant_type"), request.client_id
    if not grant_type:
        raise missing_parameter("grant_type")
    if not client_id:
        raise missing_parameter("client_id")
    client = idp.client(client_id)
    client.authenticate(secret=request.client_secret, assertion=form.get("client_assertion"),
                        assertion_type=form.get("client_assertion_type"), audience=request.url,
                        public_flow=grant_type == DEVICE_CODE_GRANT)
    if grant_type == DEVICE_CODE_GRANT:
        return idp.poll_device_code(client_id, form.get("device_code"))
    if grant_type == "refresh_token":
        return idp.redeem_refresh_token(client_id, form.get("refresh_token"), rotate=idp.rotate_refresh_tokens,
                                        scope=form.get("scope"))
    if grant_type == "authorization_code":
        return idp.redeem_authorization_code(client_id, form.get("code"), form.get("redirect_uri"),
                                             form.get("code_verifier"))
    if grant_type == "client_credentials":
        if not client.confidential:
            raise invalid_client(7000218, "The request body must contain the following parameter: "
                                          "'client_assertion' or 'client_secret'.")
        scope = form.get("scope", "")
        if not scope or not all(s.endswith("/.default") for s in scope.split()):
            raise OAuthError("invalid_scope", f"The provided value for scope {scope} is not valid. Client "
                             "credential flows must have a scope value with /.default suffixed to the resource "
                             "identifier (application ID URI).", aadsts=1002012)
        return idp.issue(Grant(client_id, None, scope))
    raise OAuthError("unsupported_grant_type", f"The app requested an unsupported grant type '{grant_type}'.",
                     aadsts=70003)


def _id_token_claims(idp, grant, tid) -> dict:
    """The claims of an Entra v2.0 ID token (msal reads preferred_username, oid, sub, tid; nonce when sent)."""
    now = int(time.time())
    claims = {
        "aud": grant.client_id,
        "iss": f"{idp.url}/{tid}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": grant.email.partition("@")[0].replace(".", " ").title(),
        "oid": object_id(grant.email),
        "preferred_username": grant.email,
        "email": grant.email,
        "sub": jose.b64url_encode(hashlib.sha256(f"{grant.client_id}|{grant.email}".encode()).digest()),
        "tid": tid,
        "ver": "2.0",
    }
    if grant.nonce:
        claims["nonce"] = grant.nonce
    return claims
