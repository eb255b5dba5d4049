"""Write a `.env` with a fresh SECRET_KEY and encryption key when there is none (used by `make run`).

Runs before Django is configured, since the settings need exactly these values.
"""
import secrets
import sys
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
# TIME_ZONE=Europe/Paris
# LANGUAGE_CODE=fr
"""


def main(path=".env"):
    env_file = Path(path)
    if env_file.exists():
        return
    import socket

    env_file.write_text(
        TEMPLATE.format(
            host=socket.gethostname(),
            secret_key=secrets.token_urlsafe(50),
            encryption_key=Fernet.generate_key().decode(),
        )
    )
    env_file.chmod(0o600)
    print(f"Wrote {env_file} with a new SECRET_KEY and encryption key.")


if __name__ == "__main__":
    main(*sys.argv[1:])
