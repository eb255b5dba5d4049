"""The token API's answers, counted in memory (no database write per request): one counter per
(status, error code). In a server of several processes, PROMETHEUS_MULTIPROC_DIR makes
prometheus_client share the counts through files, and /metrics adds them up (monitoring/views.py)."""
from prometheus_client import Counter

ANSWERS = Counter(
    "oauthmail_api_token_requests", "Token API requests, by HTTP status and error code (ok for a token).",
    ["status", "code"], registry=None,
)


def count_answer(*, status, code):
    ANSWERS.labels(status=str(status), code=code).inc()
