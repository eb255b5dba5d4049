"""Write a `.env` with a fresh SECRET_KEY and encryption key when there is none (used by `make run`).

Runs before Django is configured, since the settings need exactly these values. The new `.env` also
takes the machine's time zone, so the admin shows local times from the first run.
"""
import os
import secrets
import subprocess
import sys
import zoneinfo
from pathlib import Path

from cryptography.fernet import Fernet

TEMPLATE = """\
# oauthmail settings, written by `make run` on {host}. Keep this file secret: it holds the
# key that decrypts every stored client secret and token. Back it up with the database.
SECRET_KEY={secret_key}
OAUTHMAIL_ENCRYPTION_KEYS={encryption_key}
DEBUG=False
ALLOWED_HOSTS=127.0.0.1,localhost
# Behind an HTTPS reverse proxy: secure cookies, HSTS, redirect to https (see README, Security).
# OAUTHMAIL_HTTPS=true
# CSRF_TRUSTED_ORIGINS=https://oauthmail.example.com
# DATABASE_URL=postgres://user:password@127.0.0.1:5432/oauthmail   (default: db.sqlite3 beside manage.py)
TIME_ZONE={time_zone}
# LANGUAGE_CODE=fr
"""


def _zone(name):
    """``name`` as an IANA zone name when it is one (``Europe/Paris``), else None."""
    name = (name or "").strip().removeprefix(":")
    for prefix in ("posix/", "right/"):
        name = name.removeprefix(prefix)
    if not name or name.startswith("/") or ".." in name:
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _from_localtime(path):
    """/etc/localtime is usually a link into the zone database: .../zoneinfo/Europe/Paris."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    _, found, name = target.partition("zoneinfo/")
    return _zone(name) if found else None


def _from_timedatectl():
    try:
        result = subprocess.run(["timedatectl", "show", "--property=Timezone", "--value"],
                                capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return _zone(result.stdout) if result.returncode == 0 else None


def machine_time_zone(etc=Path("/etc"), environ=os.environ):
    """The machine's time zone: $TZ, /etc/timezone, the /etc/localtime link, timedatectl; else UTC."""
    try:
        etc_timezone = (etc / "timezone").read_text().strip()
    except (OSError, UnicodeDecodeError):
        etc_timezone = None
    return (
        _zone(environ.get("TZ"))
        or _zone(etc_timezone)
        or _from_localtime(etc / "localtime")
        or _from_timedatectl()
        or "UTC"
    )


def main(path=".env"):
    env_file = Path(path)
    if env_file.exists():
        return
    import socket

    time_zone = machine_time_zone()
    text = TEMPLATE.format(
        host=socket.gethostname(),
        secret_key=secrets.token_urlsafe(50),
        encryption_key=Fernet.generate_key().decode(),
        time_zone=time_zone,
    )
    # Created readable by its owner only, never for a moment by anyone else.
    with os.fdopen(os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)
    print(f"Wrote {env_file} with a new SECRET_KEY and encryption key, and TIME_ZONE={time_zone}.")


if __name__ == "__main__":
    main(*sys.argv[1:])
