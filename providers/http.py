"""All outgoing HTTP to identity providers leaves through here.

Every request has a timeout and verifies certificates (requests' defaults, honouring
REQUESTS_CA_BUNDLE). 429 and 5xx answers are raised as TransientHTTPError (with Retry-After)
so that callers retry them; discovery documents are cached for an hour per process, so a refresh
costs one token request, not a discovery round-trip as well.
"""
import json
import threading
import time

import requests
from django.conf import settings

DISCOVERY_TTL = 3600
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


class CachedResponse:
    def __init__(self, status_code, text, headers):
        self.status_code = status_code
        self.text = text
        self.headers = headers

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"HTTP {self.status_code}")


class HttpClient:
    """A requests-like client (get/post), as msal's `http_client` and for our own calls."""

    def __init__(self):
        self._local = threading.local()

    @property
    def session(self):
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _send(self, method, url, **kwargs):
        kwargs["timeout"] = settings.OAUTHMAIL_HTTP_TIMEOUT  # always ours, whatever a library asks
        response = self.session.request(method, url, **kwargs)
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
            copy = CachedResponse(response.status_code, response.text, dict(response.headers))
            with _discovery_lock:
                _discovery_cache[url] = (time.monotonic() + DISCOVERY_TTL, copy)
        return response

    def post(self, url, **kwargs):
        return self._send("POST", url, **kwargs)

    def close(self):
        pass


client = HttpClient()
