"""Production hardening: HTTPS settings pass `check --deploy`, a Content-Security-Policy the admin pages
live within, and admin sign-in throttled against password guessing."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from accounts.models import InitRequest
from tests.factories import make_account, make_application, make_staff, run_command

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k0vBzfQy4qk1Pz0Yx3cK0d4n1dQ8cWJ0m3cQm1s9cJY="


def manage(*args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OAUTHMAIL_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="oauthmail.settings", OAUTHMAIL_ENV_FILE="", DATABASE_URL="sqlite:///:memory:",
               SECRET_KEY=secrets.token_urlsafe(50), OAUTHMAIL_ENCRYPTION_KEYS=GOOD_KEY, DEBUG="false",
               ALLOWED_HOSTS="oauthmail.example.com", **env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_with_oauthmail_https_check_deploy_reports_nothing():
    result = manage("check", "--deploy", "--fail-level", "WARNING", OAUTHMAIL_HTTPS="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_it_check_deploy_names_what_is_missing():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE" in result.stderr and "SECURE_HSTS_SECONDS" in result.stderr


def test_oauthmail_https_trusts_the_proxys_forwarded_proto():
    result = manage("shell", "-c", "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, "
                    "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)", OAUTHMAIL_HTTPS="true")
    assert result.stdout.strip().splitlines()[-1] == "('HTTP_X_FORWARDED_PROTO', 'https') True True True", \
        result.stderr


# --- Content-Security-Policy ------------------------------------------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+=", re.I)


def assert_lives_within_the_policy(response):
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    page = response.content.decode()
    assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page).group(0)
    assert not INLINE_STYLE.search(page), page[INLINE_STYLE.search(page).start() - 80:][:200]
    assert not EVENT_HANDLER.search(page), EVENT_HANDLER.search(page).group(0)


@pytest.fixture
def pages(admin_client, idp, sign_in):
    account = sign_in(make_account(make_application(idp, secret="s"), identifier="sales",
                                   email="sales@contoso.com"))
    pending = make_account(account.application)
    admin_client.post(reverse("admin:accounts_account_init_token", args=[pending.pk]))
    init_request = InitRequest.objects.get(account=pending)
    return [
        reverse("admin:index"), reverse("admin:accounts_account_changelist"),
        reverse("admin:accounts_account_change", args=[account.pk]), reverse("admin:accounts_account_add"),
        reverse("admin:accounts_account_init_page", args=[init_request.pk]),
        reverse("admin:accounts_account_test_connection", args=[account.pk]),
        reverse("admin:providers_application_change", args=[account.application_id]),
        reverse("admin:providers_application_add"), reverse("admin:api_apiclient_add"),
        reverse("admin:accounts_tokenevent_changelist"),
    ]


@pytest.mark.django_db
def test_every_admin_page_carries_the_policy_and_nothing_it_would_block(admin_client, pages):
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_lives_within_the_policy(response)


@pytest.mark.django_db
def test_the_init_token_page_loads_its_polling_script_from_a_static_file(admin_client, pages):
    page = admin_client.get(pages[4]).content.decode()
    assert re.search(r'<script src="/static/accounts/init_token\.js"', page)
    assert 'id="init-token-page" data-csrf-token="' in page
    assert (ROOT / "accounts/static/accounts/init_token.js").read_text().count("X-CSRFToken") == 1


@pytest.mark.django_db
def test_the_login_page_and_the_api_carry_it_too(client):
    assert_lives_within_the_policy(client.get(reverse("admin:login")))
    assert "Content-Security-Policy" in client.get("/api/v1/accounts/x/token")


# --- Admin sign-in throttling ------------------------------------------------------------------------


def log_in(client, username, password, address="192.0.2.10", **headers):
    return client.post(reverse("admin:login"), {"username": username, "password": password,
                                                "next": reverse("admin:index")}, REMOTE_ADDR=address, **headers)


@pytest.fixture
def olivia(db):
    return make_staff("olivia", "Mailbox operators")  # password pw-olivia


def test_after_5_wrong_passwords_the_login_page_says_it_is_locked(client, olivia):
    for _ in range(4):
        assert log_in(client, "olivia", "guess").status_code == 200
    assert log_in(client, "olivia", "guess").status_code == 429  # the fifth
    response = log_in(client, "olivia", "pw-olivia")  # even the right password, now
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-ins" in page and "locked for 15 minutes" in page
    assert 'name="password"' in page  # still the login page
    assert "_auth_user_id" not in client.session


def test_a_lock_is_per_user_and_address(client, olivia):
    make_staff("adam", "OAuth administrators")
    for _ in range(5):
        log_in(client, "olivia", "guess")
    assert log_in(client, "adam", "pw-adam").status_code == 302
    client.logout()
    assert log_in(client, "olivia", "pw-olivia", address="198.51.100.20").status_code == 302


def test_an_administrator_unlocks_with_axes_reset_username(client, olivia):
    for _ in range(5):
        log_in(client, "olivia", "guess")
    run_command("axes_reset_username", "olivia")
    assert log_in(client, "olivia", "pw-olivia").status_code == 302


def test_a_forged_forwarded_for_does_not_escape_the_lock(client, olivia):
    for n in range(5):
        log_in(client, "olivia", "guess", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert log_in(client, "olivia", "pw-olivia", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_behind_a_configured_proxy_the_forwarded_address_is_the_client(client, olivia, settings):
    settings.OAUTHMAIL_PROXY_COUNT = 1
    for _ in range(5):
        log_in(client, "olivia", "guess", address="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert log_in(client, "olivia", "pw-olivia", address="10.0.0.1",
                  HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert log_in(client, "olivia", "pw-olivia", address="10.0.0.1",
                  HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 302


def test_the_test_clients_logins_still_work(client, olivia):
    assert client.login(username="olivia", password="pw-olivia")
    assert client.get(reverse("admin:accounts_account_changelist")).status_code == 200
