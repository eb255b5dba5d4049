"""Outgoing webhook POSTs, the sibling of providers/http.py and through its `bounded()` sessions:
certificates verified (requests' default, honouring REQUESTS_CA_BUNDLE), each request bounded as a
whole exchange (connect, TLS, sending, the complete answer) by OAUTHMAIL_HTTP_TIMEOUT, so that a
receiver that answers one byte at a time cannot hold send_alerts or refresh_tokens; no redirects
followed. Network failures, 429 and 5xx are retried with backoff (OAUTHMAIL_RETRY_ATTEMPTS and
OAUTHMAIL_RETRY_BACKOFF, honouring Retry-After up to a minute); a request that ran out of time is not:
the delivery is tried again at a later run, like any other that failed."""
import time

import requests
from django.conf import settings

from providers.http import ExchangeTimeout, bounded

RETRY_AFTER_CAP = 60


class WebhookError(Exception):
    def __init__(self, facts):
        super().__init__(str(facts))
        self.facts = facts  # see oauthmail/texts.py


def _retry_after(response):
    try:
        return min(RETRY_AFTER_CAP, max(0.0, float(response.headers.get("Retry-After", ""))))
    except ValueError:
        return None


def post(url, *, body, headers):
    """POST `body` (bytes) to `url`; returns the answer's status, or raises WebhookError."""
    attempts = max(1, settings.OAUTHMAIL_RETRY_ATTEMPTS)
    with bounded(requests.Session()) as session:
        for attempt in range(1, attempts + 1):
            wait = settings.OAUTHMAIL_RETRY_BACKOFF * 2 ** (attempt - 1)
            try:
                response = session.post(url, data=body, headers=headers, timeout=settings.OAUTHMAIL_HTTP_TIMEOUT,
                                        allow_redirects=False)
            except ExchangeTimeout as error:  # "took too long to answer" (or "cancelled": the process stops)
                raise WebhookError({**error.params, "message": error.text,
                                    "seconds": f"{settings.OAUTHMAIL_HTTP_TIMEOUT:g}"}) from None
            except requests.RequestException as error:
                facts = {"message": "alert.webhook_unreachable", "error": type(error).__name__}
            else:
                if 200 <= response.status_code < 300:
                    return response.status_code
                facts = {"message": "alert.webhook_refused", "status": response.status_code,
                         "detail": " ".join(response.text[:300].split())}
                if response.status_code != 429 and response.status_code < 500:
                    raise WebhookError(facts)  # the receiver refuses this request: trying again will not help
                wait = max(wait, _retry_after(response) or 0)
            if attempt < attempts:
                time.sleep(wait)
    raise WebhookError(facts)
