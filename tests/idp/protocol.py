"""HTTP messages as the endpoint modules see them, and the authorization endpoint both dialects share.

server.py turns each ``http.server`` request into a ``Request`` and sends back the
``Response`` an endpoint returns, so microsoft.py and google.py stay free of socket code.
"""
import base64
import html
import json
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qsl, unquote_plus, urlencode

from .errors import OAuthError
from .records import Grant

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # the provider's URL, e.g. https://127.0.0.1:4433

    @property
    def url(self) -> str:
        """The request URL without its query: a token endpoint's own address (client assertion audience)."""
        return self.base_url + self.path

    @cached_property
    def form(self) -> dict[str, str]:
        if not self.headers.get("content-type", "").startswith(FORM_CONTENT_TYPE):
            return {}
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))

    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    @property
    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _basic_credentials(self) -> tuple[str | None, str | None]:
        """RFC 6749 section 2.3.1: client_id and client_secret, form-encoded, in HTTP Basic."""
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None, None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except ValueError:  # also binascii.Error and UnicodeDecodeError
            return None, None
        return unquote_plus(user), unquote_plus(password)

    @property
    def client_id(self) -> str | None:
        return self.form.get("client_id") or self._basic_credentials()[0]

    @property
    def client_secret(self) -> str | None:
        form = self.form
        return form["client_secret"] if "client_secret" in form else self._basic_credentials()[1]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data, status=200, headers=None) -> Response:
    return Response(status, json.dumps(data).encode("utf-8"), "application/json; charset=utf-8", headers or {})


def html_page(status, title, text) -> Response:
    page = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
    return Response(status, page.encode("utf-8"), "text/html; charset=utf-8")


def authorization_response(redirect_uri, response_mode, **params) -> Response:
    """Send ``params`` (None values left out) back to the client: by default a 302 to ``redirect_uri``
    with them in the query; with ``response_mode=form_post`` a page whose form POSTs them there."""
    params = {name: value for name, value in params.items() if value is not None}
    if response_mode != "form_post":
        location = f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}"
        return Response(302, b"", "text/plain", {"Location": location})
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
    )
    page = (
        '<!doctype html><title>Working...</title><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(redirect_uri)}">{inputs}<button>Continue</button></form>'
    )
    return Response(200, page.encode("utf-8"), "text/html; charset=utf-8")


def authorization_endpoint(idp, request, *, offline, describe_errors, grant_scope=None, **extra_params) -> Response:
    """The authorization-code request of RFC 6749 section 4.1.1 with PKCE, as Entra and Google run it.

    The user ``idp.take_sign_in()`` names signs in at once and the browser is sent back with
    ``code`` and ``state`` (plus ``extra_params``), or with ``error`` and ``state``.
    ``offline(email)`` says whether the code's tokens include a refresh token; ``grant_scope`` is what the
    user granted (default: every scope asked for); ``describe_errors``
    adds Entra's ``error_description`` to errors. An unknown client or a missing redirect_uri
    gets an error page instead, as the redirect cannot be trusted.
    """
    query = request.query
    client_id, redirect_uri, state = query.get("client_id"), query.get("redirect_uri"), query.get("state")
    response_mode = query.get("response_mode")
    try:
        idp.client(client_id)
    except OAuthError as error:
        return html_page(400, "Sign in failed", f"{error.error}: {error.description}")
    if not redirect_uri:
        return html_page(400, "Sign in failed", "The request must contain a redirect_uri.")
    try:
        if query.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code is supported.", aadsts=700054)
        email = idp.take_sign_in(query.get("login_hint"))
    except OAuthError as error:
        description = f"AADSTS{error.aadsts}: {error.description}" if describe_errors else None
        return authorization_response(redirect_uri, response_mode, error=error.error, error_description=description,
                                      state=state)
    scope = query.get("scope", "") if grant_scope is None else grant_scope
    grant = Grant(client_id, email, scope, offline=offline(email), nonce=query.get("nonce"))
    code = idp.create_authorization_code(
        grant, redirect_uri, query.get("code_challenge"), query.get("code_challenge_method")
    )
    return authorization_response(redirect_uri, response_mode, code=code, state=state, **extra_params)
