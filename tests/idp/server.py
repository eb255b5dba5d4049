"""The HTTPS server of the test identity provider: TLS, routing, the token-endpoint wrapper
(latency, injected failures, request log), token introspection and the ``/_control`` API.

``TestIdentityProvider`` is the object tests use: the state of state.py plus a real HTTPS
server on 127.0.0.1 whose certificate comes from a throwaway ``trustme`` CA.
"""
import logging
import os
import shutil
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import trustme

from . import google, jose, microsoft
from .protocol import Request, Response, html_page, json_response
from .state import IdentityProviderState, object_id

logger = logging.getLogger(__name__)

SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Everything a remote process may call or read through POST /_control/<name>.
CONTROL_API = frozenset({
    "reset", "set", "stats", "add_client", "approve", "decline", "expire", "pending_user_codes",
    "issue_refresh_token", "revoke", "fail_next", "deny_next_sign_in", "valid_access_token",
    "token_requests", "refresh_token_reuse",
})


class TestIdentityProvider(IdentityProviderState):
    """An OAuth2 / OpenID Connect provider imitating Entra ID and Google, served over real HTTPS."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, host="127.0.0.1", port=0, ca_bundle_path=None):
        """``ca_bundle_path``: where start() writes the CA bundle (default: a temporary file)."""
        super().__init__()
        self.ca = trustme.CA()
        self.signing_key = jose.SigningKey()
        self.url = self.ca_bundle = None
        self._address = (host, port)
        self._ca_bundle_path = Path(ca_bundle_path) if ca_bundle_path else None
        self._tempdir = self._server = self._thread = None

    def start(self):
        """Listen on a background thread; returns self."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = _HTTPSServer(self._address, context, self)
        host, port = self._server.server_address[:2]
        self.url = f"https://{host}:{port}"
        self.ca_bundle = self._write_ca_bundle()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name=f"test-idp-{port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def _write_ca_bundle(self) -> str:
        """The system CAs (else certifi's) followed by the test CA, for REQUESTS_CA_BUNDLE / SSL_CERT_FILE."""
        if SYSTEM_CA_BUNDLE.exists():
            system_cas = SYSTEM_CA_BUNDLE.read_bytes()
        else:
            import certifi

            system_cas = Path(certifi.where()).read_bytes()
        path = self._ca_bundle_path
        if path is None:
            self._tempdir = tempfile.mkdtemp(prefix="test-idp-")
            path = Path(self._tempdir) / "ca.pem"
        path.write_bytes(system_cas.rstrip(b"\n") + b"\n" + self.ca.cert_pem.bytes())
        return os.fspath(path)

    # ----- routing -----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path.startswith("/_control/"):
            return self._control(request, path.removeprefix("/_control/"))
        match = microsoft.PATH.match(path)
        if match:
            if match["endpoint"].endswith("/token") and method == "POST":
                return self._token_endpoint(request, microsoft.handle, **match.groupdict())
            return microsoft.handle(self, request, **match.groupdict())
        endpoint = {
            ("GET", "/.well-known/openid-configuration"): google.discovery,
            ("GET", "/oauth2/v3/certs"): google.keys,
            ("GET", "/o/oauth2/v2/auth"): google.authorize,
            ("GET", "/o/oauth2/auth"): google.authorize,
            ("POST", "/device/code"): google.device_code,
            ("GET", "/introspect"): introspect,
            ("POST", "/introspect"): introspect,
            ("GET", "/userinfo"): userinfo,
            ("GET", "/devicelogin"): device_page,
            ("GET", "/device"): device_page,
        }.get((method, path))
        if endpoint:
            return endpoint(self, request)
        if (method, path) == ("POST", "/token"):
            return self._token_endpoint(request, google.token)
        return json_response({"error": "not_found", "error_description": f"No endpoint {method} {path}"}, 404)

    def _token_endpoint(self, request, handler, **path_args) -> Response:
        """Every token request: sleep ``latency``, answer an injected failure or run ``handler``, log it."""
        arrived = time.time()
        self.count_in_flight(+1)
        try:
            if self.latency:
                time.sleep(self.latency)
            failure = self.take_failure()
            if failure:
                response = _failure_response(failure)
            else:
                response = handler(self, request, **path_args)
        finally:
            self.count_in_flight(-1)
        form = request.form
        self.record_token_request({
            "path": request.path,
            "grant_type": form.get("grant_type"),
            "client_id": request.client_id or _assertion_issuer(form.get("assertion")),
            "refresh_token": form.get("refresh_token"),
            "scope": form.get("scope"),
            "status": response.status,
            "at": arrived,
            "answered": time.time(),
        })
        return response

    def _control(self, request, name) -> Response:
        """``POST /_control/<name>`` with a JSON object of keyword arguments: ``{"result": ...}``."""
        if request.method != "POST" or name not in CONTROL_API:
            return json_response({"error": "not_found", "message": f"no control method {name!r}"}, 404)
        try:
            member = getattr(self, name)
            result = member(**request.json()) if callable(member) else member
        except (TypeError, KeyError, ValueError) as exc:
            return json_response({"error": type(exc).__name__, "message": str(exc)}, 400)
        return json_response({"result": result})


def introspect(idp, request) -> Response:
    """RFC 7662 token introspection for Dovecot's ``passdb oauth2``: the token comes as form field
    ``token`` (POST), query parameter ``token`` or ``Authorization: Bearer``; always 200."""
    token = request.form.get("token") or request.query.get("token") or request.bearer_token
    info = idp.valid_access_token(token) if token else None
    if info is None:
        return json_response({"active": False})
    email = info["email"]
    return json_response({
        "active": True,
        "email": email,
        "username": email,
        "sub": object_id(email) if email else info["client_id"],
        "client_id": info["client_id"],
        "scope": info["scope"],
        "token_type": "Bearer",
        "exp": int(info["expires_at"]),
    })


def userinfo(idp, request) -> Response:
    """OpenID Connect UserInfo: the bearer token's user, or 401."""
    info = idp.valid_access_token(request.bearer_token) if request.bearer_token else None
    if info is None or info["email"] is None:
        return json_response({"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return json_response({"sub": object_id(info["email"]), "email": info["email"], "email_verified": True})


def device_page(idp, request) -> Response:
    """The verification URI of the device flows; tests "enter the code" with ``idp.approve()``."""
    return html_page(200, "Test identity provider", "Enter the code with idp.approve(user_code, email).")


def _failure_response(failure) -> Response:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    if failure.location:
        headers["Location"] = failure.location
    if isinstance(failure.body, str):
        return Response(failure.status, failure.body.encode("utf-8"), "text/plain; charset=utf-8", headers)
    body = failure.body if failure.body is not None else {
        "error": "temporarily_unavailable",
        "error_description": "The service is temporarily unavailable. Try again later.",
    }
    return json_response(body, failure.status, headers)


def _assertion_issuer(assertion) -> str | None:
    """The ``iss`` of a jwt-bearer grant's assertion: the client of a service-account request."""
    try:
        return jose.decode_unverified(assertion)[1].get("iss") if assertion else None
    except jose.InvalidJWT:
        return None


class _HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not delay stop()
    request_queue_size = 128  # listen backlog: benchmarks open many connections at once

    def __init__(self, address, ssl_context, idp):
        self.ssl_context, self.idp = ssl_context, idp
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        """Do the TLS handshake in the connection's own thread, so a slow client cannot stall accept()."""
        request.settimeout(10)
        try:
            connection = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        with connection:
            super().finish_request(connection, client_address)

    def handle_error(self, request, client_address):
        logger.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TLS handshake per client connection, not per request
    server_version = "oauthmail-test-idp"
    timeout = 60  # close idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def do_GET(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            base_url=self.server.idp.url,
        )
        try:
            response = self.server.idp.handle(request)
        except Exception:
            logger.exception("test identity provider failed on %s %s", self.command, self.path)
            response = json_response({"error": "server_error", "error_description": "see the test log"}, 500)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_GET

    def log_message(self, format, *args):
        logger.debug("%s " + format, self.client_address[0], *args)
