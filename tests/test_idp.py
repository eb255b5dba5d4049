"""The test identity provider itself (tests/idp), driven with plain requests over real HTTPS.

These tests use neither Django nor the database (no django_db mark), and no msal.
"""
import base64
import hashlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.idp import RemoteIdentityProvider, jose
from tests.idp.remote import RemoteControlError

IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"
DELEGATED_SCOPE = f"openid profile offline_access {IMAP}"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT_URI = "http://localhost:8000/callback"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# One session: keep-alive spares a TLS handshake and a CA-bundle load per request. Its CA bundle
# comes from REQUESTS_CA_BUNDLE, which the idp fixture points at the provider's bundle.
http = requests.Session()


def get(idp, path, **kwargs):
    return http.get(f"{idp.url}{path}", timeout=10, **kwargs)


def post(idp, path, data, **kwargs):
    return http.post(f"{idp.url}{path}", data=data, timeout=10, **kwargs)


def ms_token(idp, data, tenant="common", **kwargs):
    return post(idp, f"/{tenant}/oauth2/v2.0/token", data, **kwargs)


def start_device_flow(idp, client_id="app", scope=DELEGATED_SCOPE):
    response = post(idp, "/common/oauth2/v2.0/devicecode", {"client_id": client_id, "scope": scope})
    assert response.status_code == 200, response.text
    return response.json()


def poll(idp, flow, client_id="app"):
    return ms_token(idp, {"grant_type": DEVICE_CODE_GRANT, "client_id": client_id,
                          "device_code": flow["device_code"], "client_info": "1"})


def refresh(idp, refresh_token, client_id="app"):
    return ms_token(idp, {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token,
                          "scope": DELEGATED_SCOPE})


def assert_entra_error(response, error, code, status=400):
    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [code]), body
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def verified_claims(idp, id_token, jwks_path):
    """The claims of ``id_token``, checked against the key the provider publishes at ``jwks_path``."""
    (jwk,) = get(idp, jwks_path).json()["keys"]
    numbers = [int.from_bytes(base64.urlsafe_b64decode(jwk[k] + "=="), "big") for k in ("e", "n")]
    header, claims = jose.verify(id_token, rsa.RSAPublicNumbers(*numbers).public_key())
    assert header["kid"] == jwk["kid"]
    return claims


def rsa_leaf():
    """An RSA certificate and its key, as an app registration (or a service account) would hold."""
    leaf = trustme.CA().issue_cert("app.example", key_type=trustme.KeyType.RSA)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    return leaf.cert_chain_pems[0].bytes().decode(), key


def authorize(idp, path, **params):
    """Follow an authorize request; return the parameters it redirected back with."""
    response = get(idp, path, params=params, allow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == params["redirect_uri"]
    return dict(parse_qsl(location.query))


@pytest.fixture
def public_app(idp):
    idp.add_client("app")
    idp.device_interval = 0
    return idp


def test_fixture_points_requests_at_the_combined_ca_bundle(idp):
    assert os.environ["REQUESTS_CA_BUNDLE"] == os.environ["SSL_CERT_FILE"] == idp.ca_bundle
    bundle = Path(idp.ca_bundle).read_text()
    assert idp.ca.cert_pem.bytes().decode() in bundle and bundle.count("BEGIN CERTIFICATE") > 10
    assert idp.url.startswith("https://127.0.0.1:") and not idp.url.endswith("/")


def test_discovery_documents(idp):
    common = get(idp, "/common/v2.0/.well-known/openid-configuration").json()
    assert common["issuer"] == f"{idp.url}/{{tenantid}}/v2.0"
    assert common["token_endpoint"] == f"{idp.url}/common/oauth2/v2.0/token"
    assert common["authorization_endpoint"] == f"{idp.url}/common/oauth2/v2.0/authorize"
    assert common["device_authorization_endpoint"] == f"{idp.url}/common/oauth2/v2.0/devicecode"
    assert get(idp, f"/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()["issuer"] == (
        f"{idp.url}/{TENANT_ID}/v2.0"
    )
    assert get(idp, common["jwks_uri"].removeprefix(idp.url)).json()["keys"]

    bad_tenant = get(idp, "/nonexistent-tenant.example/v2.0/.well-known/openid-configuration")
    assert_entra_error(bad_tenant, "invalid_tenant", 90002)

    google = get(idp, "/.well-known/openid-configuration").json()
    assert google["issuer"] == idp.url
    assert google["authorization_endpoint"] == f"{idp.url}/o/oauth2/v2/auth"
    assert google["token_endpoint"] == f"{idp.url}/token"
    assert google["device_authorization_endpoint"] == f"{idp.url}/device/code"
    assert get(idp, google["jwks_uri"].removeprefix(idp.url)).json()["keys"]


def test_device_code_pending_then_approved(public_app):
    idp = public_app
    flow = start_device_flow(idp)
    assert len(flow["user_code"]) == 9 and flow["user_code"].isupper() and flow["user_code"].isalnum()
    assert flow["verification_uri"] == f"{idp.url}/devicelogin"
    assert f"enter the code {flow['user_code']} to authenticate" in flow["message"]
    assert_entra_error(poll(idp, flow), "authorization_pending", 70016)

    assert idp.pending_user_codes() == [flow["user_code"]]
    idp.approve(flow["user_code"], "alice@example.com")
    assert idp.pending_user_codes() == []
    response = poll(idp, flow)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == body["ext_expires_in"] == 3600
    assert body["scope"] == f"openid profile {IMAP}" and body["refresh_token"]
    claims = verified_claims(idp, body["id_token"], "/common/discovery/v2.0/keys")
    assert claims["aud"] == "app" and claims["preferred_username"] == claims["email"] == "alice@example.com"
    assert claims["iss"] == f"{idp.url}/{claims['tid']}/v2.0" and claims["exp"] > claims["iat"] == claims["nbf"]
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert client_info == {"uid": claims["oid"], "utid": claims["tid"]}
    assert idp.valid_access_token(body["access_token"])["email"] == "alice@example.com"

    assert_entra_error(poll(idp, flow), "invalid_grant", 70000)  # a device code is redeemed once


def test_device_code_polled_too_fast_gets_slow_down(idp):
    idp.add_client("app")
    flow = start_device_flow(idp)
    assert flow["interval"] == 1
    assert poll(idp, flow).json()["error"] == "authorization_pending"
    assert poll(idp, flow).json()["error"] == "slow_down"
    time.sleep(1.05)
    assert poll(idp, flow).json()["error"] == "authorization_pending"


@pytest.mark.parametrize("action, error, code", [
    ("decline", "authorization_declined", 70000),
    ("expire", "expired_token", 70019),
])
def test_device_code_declined_or_expired(public_app, action, error, code):
    flow = start_device_flow(public_app)
    getattr(public_app, action)(flow["user_code"])
    assert_entra_error(poll(public_app, flow), error, code)
    with pytest.raises(KeyError):
        public_app.approve(flow["user_code"], "alice@example.com")


def test_refresh_rotates_and_counts_reuse(public_app):
    idp = public_app
    first = idp.issue_refresh_token("app", "alice@example.com", DELEGATED_SCOPE)
    response = refresh(idp, first)
    assert response.status_code == 200, response.text
    second = response.json()["refresh_token"]
    assert second != first

    assert_entra_error(refresh(idp, first), "invalid_grant", 70000)
    assert idp.refresh_token_reuse == 1
    assert refresh(idp, second).status_code == 200
    assert_entra_error(refresh(idp, "never-issued"), "invalid_grant", 70000)
    assert idp.refresh_token_reuse == 1
    assert [(r["refresh_token"], r["status"]) for r in idp.token_requests] == [
        (first, 200), (first, 400), (second, 200), ("never-issued", 400)
    ]
    assert {r["grant_type"] for r in idp.token_requests} == {"refresh_token"}


def test_refresh_without_rotation_keeps_the_token(public_app):
    public_app.rotate_refresh_tokens = False
    token = public_app.issue_refresh_token("app", "alice@example.com", DELEGATED_SCOPE)
    for _ in range(2):
        assert refresh(public_app, token).json()["refresh_token"] == token


def test_revoke_invalidates_the_users_refresh_tokens(public_app):
    alice = public_app.issue_refresh_token("app", "alice@example.com", DELEGATED_SCOPE)
    bob = public_app.issue_refresh_token("app", "bob@example.com", DELEGATED_SCOPE)
    assert public_app.revoke("alice@example.com") == 1
    assert_entra_error(refresh(public_app, alice), "invalid_grant", 50173)
    assert refresh(public_app, bob).status_code == 200


def test_fail_next_answers_injected_errors_with_retry_after(public_app):
    token = public_app.issue_refresh_token("app", "alice@example.com", DELEGATED_SCOPE)
    public_app.fail_next(2, status=503, retry_after=7)
    for _ in range(2):
        response = refresh(public_app, token)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
        assert response.json()["error"] == "temporarily_unavailable"
    public_app.fail_next(1, status=502, body="<html>Bad Gateway</html>")
    response = refresh(public_app, token)
    assert (response.status_code, response.text, "Retry-After" in response.headers) == (
        502, "<html>Bad Gateway</html>", False
    )
    assert refresh(public_app, token).status_code == 200
    assert [r["status"] for r in public_app.token_requests] == [503, 503, 502, 200]


def test_client_credentials_with_a_secret(idp):
    idp.add_client("daemon", secret="s3cret")
    idp.add_client("app")
    scope = "https://outlook.office365.com/.default"
    data = {"grant_type": "client_credentials", "client_id": "daemon", "scope": scope}

    response = ms_token(idp, {**data, "client_secret": "s3cret"}, tenant=TENANT_ID)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and "refresh_token" not in body and "id_token" not in body
    assert idp.valid_access_token(body["access_token"]) == {
        "email": None, "client_id": "daemon", "scope": scope,
        "expires_at": pytest.approx(time.time() + 3600, abs=5),
    }
    assert ms_token(idp, data, tenant=TENANT_ID, auth=("daemon", "s3cret")).status_code == 200  # HTTP Basic

    assert_entra_error(ms_token(idp, {**data, "client_secret": "wrong"}), "invalid_client", 7000215, status=401)
    assert_entra_error(ms_token(idp, data), "invalid_client", 7000218, status=401)
    assert_entra_error(ms_token(idp, {**data, "client_id": "nobody"}), "invalid_client", 700016, status=401)
    assert_entra_error(ms_token(idp, {**data, "client_id": "app"}), "invalid_client", 7000218, status=401)
    assert_entra_error(ms_token(idp, {**data, "client_secret": "s3cret", "scope": IMAP}), "invalid_scope", 1002012)


def test_client_credentials_with_a_certificate_assertion(idp):
    certificate_pem, key = rsa_leaf()
    idp.add_client("daemon", certificate_pem=certificate_pem)
    token_endpoint = f"{idp.url}/{TENANT_ID}/oauth2/v2.0/token"
    thumbprints = jose.certificate_thumbprints(x509.load_pem_x509_certificate(certificate_pem.encode()))

    def request(algorithm, header, signing_key=key, audience=token_endpoint):
        now = int(time.time())
        claims = {"aud": audience, "iss": "daemon", "sub": "daemon", "iat": now, "exp": now + 600, "jti": "1"}
        assertion = jose.sign(claims, signing_key, algorithm, {header: thumbprints[header]})
        return ms_token(idp, {"grant_type": "client_credentials", "client_id": "daemon",
                              "scope": "https://outlook.office365.com/.default", "client_assertion": assertion,
                              "client_assertion_type": CLIENT_ASSERTION_TYPE}, tenant=TENANT_ID)

    assert request("PS256", "x5t#S256").status_code == 200
    assert request("RS256", "x5t").status_code == 200
    assert_entra_error(request("RS256", "x5t", signing_key=rsa_leaf()[1]), "invalid_client", 700027, status=401)
    assert_entra_error(request("RS256", "x5t", audience=f"{idp.url}/common/oauth2/v2.0/token"),
                       "invalid_client", 50027, status=401)


def test_microsoft_authorization_code_with_pkce(idp):
    idp.add_client("web", secret="web-secret")
    verifier, challenge = pkce_pair()
    params = {"client_id": "web", "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": DELEGATED_SCOPE,
              "state": "st4te", "nonce": "n0nce", "code_challenge": challenge, "code_challenge_method": "S256",
              "login_hint": "bob@example.com"}
    returned = authorize(idp, "/common/oauth2/v2.0/authorize", **params)
    assert returned["state"] == "st4te" and returned["code"]
    data = {"grant_type": "authorization_code", "client_id": "web", "client_secret": "web-secret",
            "code": returned["code"], "redirect_uri": REDIRECT_URI}

    assert_entra_error(ms_token(idp, {**data, "code_verifier": "not-the-verifier"}), "invalid_grant", 50148)
    assert_entra_error(ms_token(idp, {**data, "code_verifier": verifier, "redirect_uri": "http://elsewhere/"}),
                       "invalid_grant", 500112)
    response = ms_token(idp, {**data, "code_verifier": verifier})
    assert response.status_code == 200, response.text
    claims = jose.decode_unverified(response.json()["id_token"])[1]
    assert (claims["nonce"], claims["preferred_username"]) == ("n0nce", "bob@example.com")
    assert response.json()["refresh_token"]
    assert_entra_error(ms_token(idp, {**data, "code_verifier": verifier}), "invalid_grant", 54005)

    idp.next_sign_in = "carol@example.com"  # the user signs in with another account than the hint
    code = authorize(idp, "/common/oauth2/v2.0/authorize", **params)["code"]
    body = ms_token(idp, {**data, "code": code, "code_verifier": verifier}).json()
    assert idp.valid_access_token(body["access_token"])["email"] == "carol@example.com"

    idp.deny_next_sign_in()
    denied = authorize(idp, "/common/oauth2/v2.0/authorize", **params)
    assert (denied["error"], denied["state"], "code" in denied) == ("access_denied", "st4te", False)
    assert denied["error_description"].startswith("AADSTS65004:")


def test_google_authorization_code_refresh_and_consent(idp):
    idp.add_client("g-app", secret="g-secret")
    verifier, challenge = pkce_pair()
    params = {"client_id": "g-app", "response_type": "code", "redirect_uri": REDIRECT_URI,
              "scope": "openid email https://mail.google.com/", "state": "s", "code_challenge": challenge,
              "code_challenge_method": "S256", "access_type": "offline", "login_hint": "erin@example.com"}

    def redeem(code, code_verifier=verifier):  # requests-oauthlib sends the secret with HTTP Basic
        return post(idp, "/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                    "code_verifier": code_verifier}, auth=("g-app", "g-secret"))

    code = authorize(idp, "/o/oauth2/v2/auth", **params)["code"]
    assert redeem(code, "wrong").json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    body = redeem(code).json()
    assert body["scope"] == params["scope"] and body["refresh_token"]
    claims = verified_claims(idp, body["id_token"], "/oauth2/v3/certs")
    assert (claims["iss"], claims["aud"], claims["email"]) == (idp.url, "g-app", "erin@example.com")

    refresh_data = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "g-app",
                    "client_secret": "g-secret"}
    for _ in range(2):  # Google keeps the refresh token and answers none
        refreshed = post(idp, "/token", refresh_data).json()
        assert refreshed["access_token"] and "refresh_token" not in refreshed
    idp.google_rotates = True
    assert post(idp, "/token", refresh_data).json()["refresh_token"] != body["refresh_token"]

    again = redeem(authorize(idp, "/o/oauth2/auth", **params)["code"]).json()
    assert "refresh_token" not in again  # consent was given before
    consent = redeem(authorize(idp, "/o/oauth2/v2/auth", **params, prompt="consent")["code"]).json()
    assert consent["refresh_token"]
    assert post(idp, "/token", {**refresh_data, "client_secret": "wrong"}).json() == {
        "error": "invalid_client", "error_description": "Unauthorized"
    }


def test_google_device_code_refuses_gmail_scopes(idp):
    idp.add_client("tv", secret="tv-secret")
    refused = post(idp, "/device/code", {"client_id": "tv", "scope": "https://mail.google.com/"})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
    flow = post(idp, "/device/code", {"client_id": "tv", "scope": "openid email"}).json()
    assert flow["verification_url"] == f"{idp.url}/device" and flow["user_code"] in idp.pending_user_codes()
    pending = post(idp, "/token", {"grant_type": DEVICE_CODE_GRANT, "client_id": "tv", "client_secret": "tv-secret",
                                   "device_code": flow["device_code"]})
    assert (pending.status_code, pending.json()["error"]) == (428, "authorization_pending")


def test_google_service_account_jwt_bearer(idp):
    certificate_pem, key = rsa_leaf()
    email = "mailer@project.iam.gserviceaccount.com"
    idp.add_client(email, service_account_public_key_pem=certificate_pem,
                   delegated_scopes=["https://mail.google.com/"])

    def grant(scope="https://mail.google.com/", signing_key=key):
        now = int(time.time())
        claims = {"iss": email, "aud": "https://oauth2.googleapis.com/token", "scope": scope,
                  "sub": "dave@example.com", "iat": now, "exp": now + 3600}
        assertion = jose.sign(claims, signing_key, "RS256", {"kid": "key1"})
        return post(idp, "/token", {"grant_type": JWT_BEARER_GRANT, "assertion": assertion})

    response = grant()
    assert response.status_code == 200, response.text
    assert idp.valid_access_token(response.json()["access_token"])["email"] == "dave@example.com"
    assert idp.token_requests[-1]["client_id"] == email
    assert grant(signing_key=rsa_leaf()[1]).json() == {
        "error": "invalid_grant", "error_description": "Invalid JWT Signature."
    }
    unauthorized = grant(scope="https://www.googleapis.com/auth/drive")
    assert (unauthorized.status_code, unauthorized.json()["error"]) == (401, "unauthorized_client")


def test_introspection_and_userinfo(public_app):
    idp = public_app
    access_token = refresh(idp, idp.issue_refresh_token("app", "alice@example.com", DELEGATED_SCOPE)).json()[
        "access_token"
    ]
    for response in (
        post(idp, "/introspect", {"token": access_token}),
        get(idp, "/introspect", headers={"Authorization": f"Bearer {access_token}"}),
        get(idp, "/introspect", params={"token": access_token}),
    ):
        body = response.json()
        assert (response.status_code, body["active"], body["email"]) == (200, True, "alice@example.com")
        assert body["scope"] == DELEGATED_SCOPE and body["exp"] > time.time() and body["sub"]
    unknown = post(idp, "/introspect", {"token": "forged"})
    assert (unknown.status_code, unknown.json()) == (200, {"active": False})

    userinfo = get(idp, "/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert userinfo.json()["email"] == "alice@example.com"
    assert get(idp, "/userinfo", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_runs_as_a_process_driven_by_remote_control(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.idp", "--port", "0", "--state-dir", str(tmp_path)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "the provider did not start"
        ready, url = process.stdout.readline().split()
        assert ready == "READY" and url.startswith("https://127.0.0.1:")
        ca_bundle = str(tmp_path / "ca.pem")
        remote = RemoteIdentityProvider(url, ca_bundle)
        remote.add_client("app")
        remote.set(device_interval=0)

        flow = requests.post(f"{url}/common/oauth2/v2.0/devicecode", data={"client_id": "app", "scope": IMAP},
                             verify=ca_bundle, timeout=10).json()
        assert remote.pending_user_codes() == [flow["user_code"]]
        remote.approve(flow["user_code"], "alice@example.com")
        response = requests.post(f"{url}/common/oauth2/v2.0/token", verify=ca_bundle, timeout=10, data={
            "grant_type": DEVICE_CODE_GRANT, "client_id": "app", "device_code": flow["device_code"]})
        assert response.status_code == 200, response.text
        assert remote.valid_access_token(response.json()["access_token"])["email"] == "alice@example.com"
        assert remote.stats() == {"token_requests": 1, "refresh_token_reuse": 0}
        assert remote.token_requests[0]["grant_type"] == DEVICE_CODE_GRANT and remote.refresh_token_reuse == 0
        with pytest.raises(RemoteControlError, match="KeyError"):
            remote.approve("NOSUCHCODE", "alice@example.com")
        remote.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
