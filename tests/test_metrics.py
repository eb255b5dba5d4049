"""GET /metrics for Prometheus: behind a bearer token, computed from the database at each scrape."""
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Account, RefreshRun
from api.services import api_client_create
from providers.models import Application
from tests.factories import make_account, make_application
from tests.factories import run_command as run

pytestmark = pytest.mark.django_db
TOKEN = "scrape-me-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.OAUTHMAIL_METRICS_TOKEN = TOKEN


def scrape(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode()) for sample in family.samples
    }


def test_metrics_do_not_exist_without_a_token_setting(client, settings):
    settings.OAUTHMAIL_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_need_the_bearer_token(client, metrics_token):
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_accounts_by_status_and_the_earliest_credential_expiry(client, metrics_token, idp):
    app = make_application(idp, secret="s3cret")
    Application.objects.filter(pk=app.pk).update(client_secret_expires_on=timezone.localdate() + timedelta(days=10))
    for n, status in enumerate(["active", "active", "failing", "reauth_required"]):
        make_account(app, identifier=f"box{n}", email=f"box{n}@contoso.com", status=status)
    samples = scrape(client)
    assert samples[("oauthmail_accounts", (("status", "active"),))] == 2
    assert samples[("oauthmail_accounts", (("status", "failing"),))] == 1
    assert samples[("oauthmail_accounts", (("status", "new"),))] == 0
    earliest = samples[("oauthmail_credential_earliest_expiry_seconds", ())]
    assert 9 * 86400 < earliest <= 10 * 86400
    assert samples[("oauthmail_credential_expiry_seconds", (("application", "contoso"),
                                                            ("credential", "client_secret")))] == earliest


def test_refresh_counters_and_the_last_run(client, metrics_token, idp, sign_in):
    accounts = [sign_in(make_account(make_application(idp), identifier=f"box{n}", email=f"box{n}@contoso.com"))
                for n in range(1)]
    before = scrape(client)
    Account.objects.update(access_token_expires_at=timezone.now())
    run("refresh_tokens")
    idp.revoke(accounts[0].email)
    Account.objects.update(access_token_expires_at=timezone.now())
    with pytest.raises(SystemExit):
        run("refresh_tokens")
    after = scrape(client)
    for result, added in (("success", 1), ("failure", 1)):
        name = ("oauthmail_refresh_total", (("result", result),))
        assert after[name] - before.get(name, 0) == added
    run_ = RefreshRun.objects.order_by("-finished_at").first()
    assert after[("oauthmail_refresh_last_run_timestamp_seconds", ())] == pytest.approx(run_.finished_at.timestamp())
    assert after[("oauthmail_refresh_last_run_duration_seconds", ())] == pytest.approx(run_.duration)
    assert after[("oauthmail_refresh_overdue", ())] == 0


def test_refresh_overdue_is_a_gauge(client, metrics_token, idp, settings):
    make_account(make_application(idp), status="active")
    assert scrape(client)[("oauthmail_refresh_overdue", ())] == 1  # never ran
    RefreshRun.objects.create(finished_at=timezone.now(), duration=1)
    assert scrape(client)[("oauthmail_refresh_overdue", ())] == 0


def test_token_api_answers_are_counted_by_status_and_code(client, metrics_token, idp, sign_in):
    account = sign_in(make_account(make_application(idp)))
    _client, key = api_client_create(name="erp", accounts=[account], actor="test")
    url = f"/api/v1/accounts/{account.identifier}/token"
    ok, unauthorized = ("oauthmail_api_token_requests_total", (("code", "ok"), ("status", "200"))), (
        "oauthmail_api_token_requests_total", (("code", "unauthorized"), ("status", "401")))
    before = scrape(client)
    client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")
    client.get(url, HTTP_AUTHORIZATION="Bearer om_nope_nope")
    after = scrape(client)
    assert after[ok] - before.get(ok, 0) == 2
    assert after[unauthorized] - before.get(unauthorized, 0) == 1


def test_openmetrics_is_served_when_the_scraper_asks_for_it(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
                          HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


def test_api_counts_of_several_server_processes_add_up_in_multiprocess_mode(client, metrics_token, tmp_path,
                                                                             monkeypatch):
    """With PROMETHEUS_MULTIPROC_DIR, each server process (gunicorn worker) counts in its own file there, and
    /metrics adds them all up (and only them: not its own process's in-memory counts)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for _worker in range(2):
        subprocess.run([sys.executable, "-c", "import django; django.setup(); from api.metrics import count_answer; "
                        "count_answer(status=200, code='ok')"], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert scrape(client)[("oauthmail_api_token_requests_total", (("code", "ok"), ("status", "200")))] == 2
