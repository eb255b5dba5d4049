"""What `make run` does on a laptop: a `.env` with fresh keys and the machine's time zone, and a first
administrator, asked for on a terminal or, without one, a command that works without one."""
import os
import stat
import subprocess
import sys
from pathlib import Path

from django.contrib.auth import get_user_model

from oauthmail.bootstrap import machine_time_zone

pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

BASE_DIR = Path(__file__).resolve().parent.parent


def bootstrap(path, **env):
    return subprocess.run([sys.executable, "-m", "oauthmail.bootstrap", str(path)], cwd=BASE_DIR,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=30, check=True)


def read_env(path):
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


# --- .env ---------------------------------------------------------------------------------------------


def test_a_new_env_file_takes_the_machines_time_zone(tmp_path):
    result = bootstrap(tmp_path / ".env", TZ="Europe/Paris")
    assert read_env(tmp_path / ".env")["TIME_ZONE"] == "Europe/Paris"
    assert "TIME_ZONE=Europe/Paris" in result.stdout


def test_a_new_env_file_has_fresh_keys_and_is_readable_by_its_owner_only(tmp_path):
    bootstrap(tmp_path / "one.env")
    bootstrap(tmp_path / "two.env")
    one, two = read_env(tmp_path / "one.env"), read_env(tmp_path / "two.env")
    assert one["SECRET_KEY"] != two["SECRET_KEY"]
    assert one["OAUTHMAIL_ENCRYPTION_KEYS"] != two["OAUTHMAIL_ENCRYPTION_KEYS"]
    assert stat.S_IMODE((tmp_path / "one.env").stat().st_mode) == 0o600


def test_an_existing_env_file_is_left_alone(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=mine\nTIME_ZONE=America/Montreal\n")
    bootstrap(env_file, TZ="Europe/Paris")
    assert env_file.read_text() == "SECRET_KEY=mine\nTIME_ZONE=America/Montreal\n"


def test_the_time_zone_comes_from_etc_timezone(tmp_path):
    (tmp_path / "timezone").write_text("Europe/Brussels\n")
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    assert machine_time_zone(etc=tmp_path, environ={}) == "Europe/Brussels"


def test_the_time_zone_comes_from_the_localtime_link_without_etc_timezone(tmp_path):
    (tmp_path / "localtime").symlink_to("../usr/share/zoneinfo/America/Montreal")
    assert machine_time_zone(etc=tmp_path, environ={}) == "America/Montreal"


def test_the_time_zone_comes_from_timedatectl_without_either_file(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    timedatectl = bin_dir / "timedatectl"
    timedatectl.write_text("#!/bin/sh\necho Africa/Abidjan\n")
    timedatectl.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert machine_time_zone(etc=tmp_path / "etc", environ={}) == "Africa/Abidjan"


def test_the_time_zone_is_utc_when_the_machine_says_nothing_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no timedatectl
    (tmp_path / "timezone").write_text("Not/AZone\n")
    (tmp_path / "localtime").write_text("a copy of a zone file, not a link")
    assert machine_time_zone(etc=tmp_path, environ={"TZ": "CET-1CEST"}) == "UTC"


# --- the first administrator ------------------------------------------------------------------------


def ensure_admin(shared_db):
    """`manage.py ensure_admin` as `make run` runs it with no terminal (standard input not a tty)."""
    return subprocess.run([sys.executable, "manage.py", "ensure_admin"], cwd=BASE_DIR, env=shared_db.env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=True)


def test_without_a_terminal_ensure_admin_prints_a_command_that_creates_the_administrator(shared_db, tmp_path):
    out = ensure_admin(shared_db).stdout
    command = out.splitlines()[-1].strip()
    assert "createsuperuser --noinput" in command
    # Run it as printed, from another directory, with no terminal either.
    subprocess.run(["bash", "-c", command], cwd=tmp_path, env=shared_db.env(), stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, timeout=60, check=True)
    admin = get_user_model().objects.using(shared_db.alias).get(is_superuser=True)
    assert admin.username == "admin" and admin.is_staff
    assert admin.check_password("choose-a-long-password")
    assert ensure_admin(shared_db).stdout == ""  # and the next `make run` says nothing
