"""All outgoing HTTP to identity providers leaves through here.

Every request verifies certificates (requests' defaults, honouring REQUESTS_CA_BUNDLE) and is
bounded as a whole: connect, TLS handshake, sending and the complete answer must all fit in
OAUTHMAIL_HTTP_TIMEOUT seconds, and in whatever deadline the caller is inside of (the lease of an
account's claim, accounts/claims.py). requests' own timeout bounds each read only, so a server
that answers one byte at a time would never trip it; `DeadlineAdapter` puts every request under an
oauthmail.deadlines.Deadline instead, whose watchdog shuts the connection's socket down when it
passes, and raises `ExchangeTimeout`. It never starts a request when no time is left.

requests reads the environment at every request (proxy variables, by scanning all of os.environ
twice, NO_PROXY, REQUESTS_CA_BUNDLE, ~/.netrc): a sixth of a token request's CPU. Each thread's session
has `trust_env` off instead and takes the CA bundle (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else
requests' own) and each origin's proxies (requests' own rules, NO_PROXY included) from the
environment once, and again only when one of those variables changes. No ~/.netrc credentials are
sent to identity providers.

429 and 5xx answers are raised as TransientHTTPError (with Retry-After) so that callers retry them;
discovery documents are cached for an hour per process, so a refresh costs one token request, not
a discovery round-trip as well.
"""
import json
import os
import ssl
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import requests
import requests.adapters
import requests.structures
import requests.utils
import urllib3
import urllib3.connection
import urllib3.exceptions
import urllib3.util.ssl_
from django.conf import settings

from oauthmail import deadlines
from oauthmail.texts import render

DISCOVERY_TTL = 3600
# What requests would read from the environment for an http(s) request; a change is taken at the next.
ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY",
               "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")
_discovery_cache = {}
_discovery_lock = threading.Lock()


class TransientHTTPError(Exception):
    def __init__(self, status, url, retry_after=None):
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.retry_after = retry_after


def _retry_after(response):
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ExchangeTimeout(deadlines.DeadlineExceeded, requests.exceptions.Timeout):
    """A request did not finish in time (or was cancelled because the process is stopping). `text` and
    `params` are its sentence in oauthmail/texts.py and their facts."""

    def __init__(self, *, host, seconds, cancelled=False, request=None):
        self.text = "provider.cancelled" if cancelled else "provider.too_slow"
        self.params = {"host": host, "seconds": f"{seconds:.3g}"}
        deadlines.DeadlineExceeded.__init__(self, render(self.text, self.params), seconds=seconds,
                                            cancelled=cancelled)
        self.request, self.response = request, None  # as requests' own exceptions have them


class _Watched:
    """A urllib3 connection whose socket is watched by the calling thread's deadlines: from its
    creation (before the TLS handshake), and again at each request when kept alive between requests."""

    def _new_conn(self):
        sock = super()._new_conn()
        deadlines.watch(sock)
        return sock

    def request(self, *args, **kwargs):
        if self.sock is not None:  # opened earlier (kept alive), or just now (then watched twice: harmless)
            deadlines.watch(self.sock)
        return super().request(*args, **kwargs)


class _HTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    def connect(self):
        _share_tls_context(self)
        return super().connect()


_tls_contexts = {}  # (CA file, CA directory, the file's mtime) -> ssl.SSLContext
_tls_contexts_lock = threading.Lock()


def _share_tls_context(conn):
    """Give a connection that verifies certificates the process's TLS context for its CA certificates,
    instead of urllib3 making a new one for each (each thread's) connection: loading the CA bundle
    costs some 40 ms of CPU. The context verifies the certificate and the host name as urllib3's own
    would; a connection with other TLS settings (its own context, a client certificate, versions) is
    left as it is. The file's modification time is part of the key: a changed bundle is loaded anew."""
    if (conn.ssl_context is not None or conn.cert_file or conn.ca_cert_data or conn.ssl_version
            or conn.ssl_minimum_version or conn.ssl_maximum_version
            or urllib3.util.ssl_.resolve_cert_reqs(conn.cert_reqs) != ssl.CERT_REQUIRED):
        return
    try:
        mtime = os.stat(conn.ca_certs).st_mtime_ns if conn.ca_certs else None
    except OSError:
        return  # urllib3 says what is wrong with the file
    key = (conn.ca_certs, conn.ca_cert_dir, mtime)
    with _tls_contexts_lock:
        context = _tls_contexts.get(key)
        if context is None:
            context = urllib3.util.ssl_.create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            if conn.ca_certs or conn.ca_cert_dir:
                context.load_verify_locations(conn.ca_certs, conn.ca_cert_dir)
            else:
                context.load_default_certs()
            _tls_contexts[key] = context
    conn.ssl_context, conn.ca_certs, conn.ca_cert_dir = context, None, None


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with each request bounded as a whole by OAUTHMAIL_HTTP_TIMEOUT and by the
    deadlines the calling thread is inside of. The answer is read in full before send() returns."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS proxies bring their own pools: bounded per read only
            manager.pool_classes_by_scheme = POOLS
        return manager

    def send(self, request, stream=False, timeout=None, **kwargs):
        with _bounded(request.url, request) as left:
            response = super().send(request, stream=stream, timeout=(left, left), **kwargs)
            response.content  # noqa: B018 (the whole answer, within the deadline)
        return response

    def post(self, url, *, body, headers, verify):
        """POST `body` (bytes) to `url` through this adapter's urllib3 pools, without requests around it:
        bounded, watched and verified as send() is, answered with a `Response`. For a URL no proxy
        serves; urllib3's failures are raised as requests' exceptions, as send() raises them."""
        parts = urlsplit(url)
        with _bounded(url) as left:
            try:
                pool = self.poolmanager.connection_from_host(parts.hostname, parts.port, parts.scheme,
                                                             pool_kwargs=_pool_kwargs(verify))
                answer = pool.urlopen("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                                      headers=headers, redirect=False, assert_same_host=False, retries=False,
                                      timeout=urllib3.Timeout(connect=left, read=left))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise _requests_error(exc) from exc
        return Response(answer.status, answer.data, answer.headers)


@contextmanager
def _bounded(url, request=None):
    """Run the block (a request) within OAUTHMAIL_HTTP_TIMEOUT and the calling thread's deadlines; it
    gets the seconds left. A failure once the deadline has passed is raised as ExchangeTimeout."""
    with deadlines.Deadline(settings.OAUTHMAIL_HTTP_TIMEOUT):
        left = deadlines.remaining()
        try:
            if left <= 0:  # never send a request that has no time left to be answered
                raise TimeoutError
            yield left
        except Exception as exc:
            if not deadlines.expired():
                raise
            raise ExchangeTimeout(host=urlsplit(url).netloc, seconds=left, cancelled=deadlines.cancelled(),
                                  request=request) from exc


@lru_cache(maxsize=16)
def _pool_kwargs(verify):
    """The urllib3 pool settings requests uses for `verify`: a CA bundle file or directory, or
    requests' own bundle (True). Certificates are always verified."""
    if verify is True:
        return {"cert_reqs": "CERT_REQUIRED", "ca_certs": requests.utils.DEFAULT_CA_BUNDLE_PATH}
    return {"cert_reqs": "CERT_REQUIRED", ("ca_cert_dir" if os.path.isdir(verify) else "ca_certs"): verify}


def _requests_error(exc):
    """The exception requests' adapter raises for urllib3's `exc`, so that callers catch one family."""
    errors, raised = requests.exceptions, urllib3.exceptions
    if isinstance(exc, raised.SSLError):
        return errors.SSLError(exc)
    if isinstance(exc, raised.ProxyError):
        return errors.ProxyError(exc)
    if isinstance(exc, raised.ReadTimeoutError):
        return errors.ReadTimeout(exc)
    if isinstance(exc, raised.ConnectTimeoutError) and not isinstance(exc, raised.NewConnectionError):
        return errors.ConnectTimeout(exc)
    if isinstance(exc, raised.LocationValueError):
        return errors.InvalidURL(exc)
    return errors.ConnectionError(exc)


def bounded(session):
    """Send every request of this requests.Session through a DeadlineAdapter; returns the session."""
    adapter = DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Response:
    """An answer read in full, with what msal, google-auth and this module read of requests' Response."""

    def __init__(self, status_code, content, headers):
        self.status_code = status_code
        self.content = content
        self.headers = requests.structures.CaseInsensitiveDict(headers)

    @property
    def text(self):
        """The body decoded by its charset, as requests reads it from the headers; UTF-8 when none is said."""
        try:
            return self.content.decode(requests.utils.get_encoding_from_headers(self.headers) or "utf-8",
                                       errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.text)

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}", response=self)


# What a POST may ask for that only requests.Session.request does: such a POST takes that way instead.
POST_FALLBACK = frozenset(("cookies", "hooks", "stream", "cert", "allow_redirects"))
FORM_VALUES = (str, int, float, type(None))  # encoded alike by requests and urlencode: str(value), quoted


def _post(session, url, *, timeout, verify, proxies, headers=None, params=None, data=None, json=None, files=None,
          auth=None):
    """A POST through the session's adapter (so bounded, watched and verified as any request), without
    what Session.request adds around it and a token request does not need: the session's cookies,
    hooks, and following redirects. The request carries the session's default headers as requests
    would; no cookie, as from a new client, so that one refresh never carries what another mailbox's
    left; an answer that redirects is returned as it is, not followed: a 307 or 308 would send the
    refresh token again, to another address.

    A form or a body of bytes for a URL no proxy serves (every token request, as a rule) goes to the
    adapter's urllib3 pools directly (DeadlineAdapter.post), without requests' request and response
    objects: 0.7 ms of CPU per token request through requests, 0.5 ms so (one thread). Anything else
    is prepared as requests would prepare it and sent through the adapter."""
    merged = requests.structures.CaseInsensitiveDict(session.headers)
    merged.update(headers or {})
    if isinstance(data, dict) and not files and all(isinstance(value, FORM_VALUES) for value in data.values()):
        # as requests would encode it (None left out), without its type checks, slow on Python 3.11
        data = urlencode({name: value for name, value in data.items() if value is not None})
        merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
    adapter = session.get_adapter(url)
    if (isinstance(data, (str, bytes)) and not (params or json or files or auth) and url.isascii()
            and isinstance(verify, (str, bool)) and verify and isinstance(adapter, DeadlineAdapter)
            and not requests.utils.select_proxy(url, proxies)):
        body = data.encode() if isinstance(data, str) else data
        return adapter.post(url, body=body, headers={name: value for name, value in merged.items()
                                                     if value is not None}, verify=verify)
    request = requests.PreparedRequest()
    request.prepare_method("POST")
    request.prepare_url(url, params)
    request.prepare_headers({name: value for name, value in merged.items() if value is not None})
    request.prepare_body(data, files, json)
    request.prepare_auth(auth, url)
    return adapter.send(request, timeout=timeout, verify=verify, proxies=proxies)


class HttpClient:
    """A requests-like client (get/post), as msal's `http_client` and for our own calls."""

    def __init__(self):
        self._local = threading.local()

    @property
    def session(self):
        """This thread's session, its settings from the environment as it is now."""
        local = self._local
        environment = tuple(map(os.environ.get, ENVIRONMENT))
        if getattr(local, "environment", None) != environment:
            if not hasattr(local, "session"):
                local.session = bounded(requests.Session())
                local.session.trust_env = False
            local.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            local.proxies = {}  # origin -> the proxies requests would use for it
            local.environment = environment
        return local.session

    def _proxies(self, url):
        """The proxies requests would take from the environment for `url`: none when NO_PROXY names
        its host. Read once per origin (and environment)."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        proxies = self._local.proxies.get(origin)
        if proxies is None:
            proxies = self._local.proxies[origin] = requests.utils.get_environ_proxies(url)
        return proxies

    def _send(self, method, url, **kwargs):
        kwargs["timeout"] = settings.OAUTHMAIL_HTTP_TIMEOUT  # always ours, whatever a library asks
        session = self.session
        if kwargs.get("verify") in (None, True):
            kwargs["verify"] = session.verify  # the environment's CA bundle, as requests would take it
        kwargs["proxies"] = {**self._proxies(url), **(kwargs.get("proxies") or {})}
        if method == "POST" and not POST_FALLBACK.intersection(kwargs):
            response = _post(session, url, **kwargs)
        else:
            response = session.request(method, url, **kwargs)
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientHTTPError(response.status_code, url.split("?")[0], _retry_after(response))
        return response

    def request(self, method, url, **kwargs):
        """requests.Session's signature, for google-auth's transport."""
        kwargs.pop("timeout", None)
        return self._send(method, url, **kwargs)

    def discover(self, authority):
        """The OpenID configuration published at `authority` (cached)."""
        response = self.get(f"{authority}/.well-known/openid-configuration")
        response.raise_for_status()
        return json.loads(response.text)

    def get(self, url, **kwargs):
        if "/.well-known/" not in url:
            return self._send("GET", url, **kwargs)
        with _discovery_lock:
            cached = _discovery_cache.get(url)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        response = self._send("GET", url, **kwargs)
        if response.status_code == 200:
            copy = Response(response.status_code, response.content, response.headers)
            with _discovery_lock:
                _discovery_cache[url] = (time.monotonic() + DISCOVERY_TTL, copy)
        return response

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        pass


client = HttpClient()
