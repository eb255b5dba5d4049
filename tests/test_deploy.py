"""Production serving: the systemd units in deploy/, their command lines run here (tests/gunicorn.py)."""
import signal
import socket
import subprocess

import pytest
import requests

pytest.register_assert_rewrite("tests.fixtures_scale", "tests.gunicorn")
pytest_plugins = ["tests.fixtures_scale", "tests.gunicorn"]  # shared_db, web_server

from tests.fixtures_scale import make_world, wait_for  # noqa: E402
from tests.gunicorn import (  # noqa: E402
    REFRESH_UNIT,
    WEB_UNIT,
    production_env,
    unit_command,
    unit_directory,
    unit_setting,
)


def test_the_web_unit_serves_the_admin_login_page_healthz_and_static_files(shared_db, web_server, tmp_path):
    env = production_env(shared_db, STATIC_ROOT=tmp_path / "static")
    shared_db.run("collectstatic", "--noinput", "-v0", env=env)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:  # Type=notify: systemd's socket
        systemd.bind(str(tmp_path / "notify"))
        systemd.settimeout(30)
        server = web_server.start(env={**env, "NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert b"READY=1" in systemd.recv(4096)

    login = requests.get(f"{server.url}/admin/login/", timeout=10)
    assert login.status_code == 200
    assert 'name="password"' in login.text and "csrfmiddlewaretoken" in login.text
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    css = requests.get(f"{server.url}/static/admin/css/base.css", timeout=10)
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]


def test_the_web_unit_counts_the_api_answers_of_all_its_processes_for_metrics(shared_db, web_server, tmp_path):
    server = web_server.start(env=production_env(shared_db, OAUTHMAIL_METRICS_TOKEN="scrape-me"))
    for _ in range(6):  # spread over both gunicorn processes
        assert requests.get(f"{server.url}/api/v1/accounts/x/token", timeout=10).status_code == 401
    metrics = requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"}, timeout=10)
    assert metrics.status_code == 200, server.log()
    assert 'oauthmail_api_token_requests_total{code="unauthorized",status="401"} 6.0' in metrics.text
    assert list((tmp_path / "run" / "oauthmail-web").glob("*.db"))  # the unit's RuntimeDirectory


def test_the_web_unit_binds_to_loopback_and_trusts_forwarded_headers_from_the_proxy_only():
    argv = unit_command(WEB_UNIT)
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:8000"
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "127.0.0.1"


def test_healthz_through_the_web_unit_answers_503_when_the_database_is_gone(shared_db, web_server, tmp_path):
    missing = tmp_path / "no-such-directory" / "db.sqlite3"
    server = web_server.start(env=production_env(shared_db, DATABASE_URL=f"sqlite:///{missing}"))
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert health.status_code == 503
    assert health.json() == {"status": "error", "database": "error", "reason": "the database does not answer"}
    assert "no-such-directory" not in health.text  # the details are for the log only
    wait_for(lambda: "unable to open database file" in server.log(), what="the error in the log")


def test_the_refresher_unit_refreshes_due_tokens_and_stops_cleanly_on_sigterm(shared_db, idp):
    world = make_world(shared_db, idp, count=2)
    process = subprocess.Popen(unit_command(REFRESH_UNIT), cwd=unit_directory(REFRESH_UNIT),
                               env=production_env(shared_db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: set(world.statuses().values()) == {"active"}, what="both accounts refreshed")
        process.send_signal(getattr(signal, unit_setting(REFRESH_UNIT, "KillSignal")))
        out, err = process.communicate(timeout=int(unit_setting(REFRESH_UNIT, "TimeoutStopSec")))
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Stopped" in err  # refresh_tokens says so on standard error
