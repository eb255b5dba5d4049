"""Start-up refuses a missing or malformed required setting with one line naming it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = "k0vBzfQy4qk1Pz0Yx3cK0d4n1dQ8cWJ0m3cQm1s9cJY="


def run_check(*command, **env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "OAUTHMAIL_ENCRYPTION_KEYS")}
    env.update(DJANGO_SETTINGS_MODULE="oauthmail.settings", OAUTHMAIL_ENV_FILE="", DATABASE_URL="sqlite:///:memory:")
    env.update(env_overrides)
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *(command or ["check"])], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_starts_with_every_required_setting():
    result = run_check(SECRET_KEY="s3cret", OAUTHMAIL_ENCRYPTION_KEYS=GOOD_KEY)
    assert result.returncode == 0, result.stderr


def test_the_minimum_token_validity_may_be_a_fraction_of_a_minute():
    result = run_check(SECRET_KEY="s3cret", OAUTHMAIL_ENCRYPTION_KEYS=GOOD_KEY, OAUTHMAIL_MIN_TOKEN_VALIDITY="2.5")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"OAUTHMAIL_ENCRYPTION_KEYS": GOOD_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": "s3cret"}, "OAUTHMAIL_ENCRYPTION_KEYS"),
        ({"SECRET_KEY": "s3cret", "OAUTHMAIL_ENCRYPTION_KEYS": "not-a-fernet-key"}, "OAUTHMAIL_ENCRYPTION_KEYS"),
        (
            {"SECRET_KEY": "s3cret", "OAUTHMAIL_ENCRYPTION_KEYS": GOOD_KEY, "DATABASE_URL": "nosuchdb://x"},
            "DATABASE_URL",
        ),
        ({"SECRET_KEY": "s3cret", "OAUTHMAIL_ENCRYPTION_KEYS": GOOD_KEY, "DEBUG": "maybe"}, "DEBUG"),
        *[({"SECRET_KEY": "s3cret", "OAUTHMAIL_ENCRYPTION_KEYS": GOOD_KEY, name: value}, name) for name, value in [
            ("OAUTHMAIL_MIN_TOKEN_VALIDITY", "ten"), ("OAUTHMAIL_MIN_TOKEN_VALIDITY", "-1"),
            ("OAUTHMAIL_MIN_TOKEN_VALIDITY", "60"), ("OAUTHMAIL_HTTP_TIMEOUT", "0"), ("OAUTHMAIL_HTTP_TIMEOUT", "x"),
            ("CONN_MAX_AGE", "-5"), ("CONN_MAX_AGE", "soon"), ("CONN_HEALTH_CHECKS", "perhaps"),
        ]],
    ],
)
def test_missing_or_malformed_setting_stops_with_one_line_naming_it(overrides, named):
    result = run_check(**overrides)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr


def test_database_connections_persist_as_long_as_conn_max_age_says():
    show = ["shell", "-v0", "-c", "from django.db import connection as c; "
            "print(c.settings_dict['CONN_MAX_AGE'], c.settings_dict['CONN_HEALTH_CHECKS'])"]
    keys = {"SECRET_KEY": "s3cret", "OAUTHMAIL_ENCRYPTION_KEYS": GOOD_KEY}
    assert run_check(*show, **keys).stdout.split() == ["600", "False"]  # kept ten minutes
    kept = run_check(*show, CONN_MAX_AGE="0", CONN_HEALTH_CHECKS="true", **keys)
    assert kept.stdout.split() == ["0", "True"], kept.stderr
