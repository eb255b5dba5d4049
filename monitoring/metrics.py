"""Prometheus metrics, computed from the database at each scrape (so every server process answers
the same), plus the token API's answers counted in memory (api/metrics.py)."""
import os

from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from accounts.services.runs import REFRESH_FAILURES, REFRESH_SUCCESSES, counter_values
from api.metrics import ANSWERS
from relay import events as relay_events

from . import facts


class DatabaseCollector:
    """A handful of aggregate queries, whatever the number of accounts."""

    def collect(self):
        now = timezone.now()
        accounts = GaugeMetricFamily("oauthmail_accounts", "Accounts by status.", labels=["status"])
        for status, count in facts.account_counts().items():
            accounts.add_metric([status], count)
        yield accounts
        yield from self._credentials(now)
        yield GaugeMetricFamily("oauthmail_refresh_tokens_near_limit",
                                "Refresh tokens that end within days unless used (idle limit, Google Testing).",
                                value=facts.tokens_near_limit(now=now).count())
        totals = counter_values()
        refreshes = CounterMetricFamily("oauthmail_refresh", "Refreshes by refresh_tokens runs, by result.",
                                        labels=["result"])
        refreshes.add_metric(["success"], totals.get(REFRESH_SUCCESSES, 0))
        refreshes.add_metric(["failure"], totals.get(REFRESH_FAILURES, 0))
        yield refreshes
        relayed = CounterMetricFamily("oauthmail_relay_messages", "Messages the SMTP relay sent or refused.",
                                      labels=["outcome"])
        relayed.add_metric(["sent"], totals.get(relay_events.SENT_TOTAL, 0))
        relayed.add_metric(["refused"], totals.get(relay_events.REFUSED_TOTAL, 0))
        yield relayed
        yield from self._last_run(now)

    def _credentials(self, now):
        found = facts.credentials()
        per_credential = GaugeMetricFamily(
            "oauthmail_credential_expiry_seconds",
            "Seconds until each client secret or certificate expires (negative: expired).",
            labels=["application", "credential"],
        )
        for credential in found:
            per_credential.add_metric([credential.application, credential.kind],
                                      (credential.expires_at - now).total_seconds())
        yield per_credential
        if found:
            yield GaugeMetricFamily(
                "oauthmail_credential_earliest_expiry_seconds",
                "Seconds until the earliest client secret or certificate expiry (negative: expired).",
                value=min((credential.expires_at - now).total_seconds() for credential in found),
            )

    def _last_run(self, now):
        run = facts.last_refresh_run()
        if run is not None:
            yield GaugeMetricFamily("oauthmail_refresh_last_run_timestamp_seconds",
                                    "When the last refresh_tokens run finished (Unix time).",
                                    value=run.finished_at.timestamp())
            yield GaugeMetricFamily("oauthmail_refresh_last_run_duration_seconds",
                                    "How long the last refresh_tokens run took.", value=run.duration or 0)
        yield GaugeMetricFamily("oauthmail_refresh_overdue",
                                "1 when refresh_tokens has not run for longer than OAUTHMAIL_REFRESH_OVERDUE_MINUTES.",
                                value=int(facts.refresh_overdue(last_run=run, now=now)))


def exposition(*, accept=""):
    """(body, content type): the metrics in the format the scraper's Accept header asks for (Prometheus's
    text format by default, OpenMetrics when asked), as prometheus_client's own server answers."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # the API counts of every server process
    else:
        registry.register(ANSWERS)
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
