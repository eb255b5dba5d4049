"""Settings for the test suite: fixed keys, no `.env`; DATABASE_URL still chooses the database."""
import os
import tempfile

os.environ["OAUTHMAIL_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production")
# Two fixed Fernet keys: tests of key rotation add and drop them.
os.environ.setdefault(
    "OAUTHMAIL_ENCRYPTION_KEYS",
    "k0vBzfQy4qk1Pz0Yx3cK0d4n1dQ8cWJ0m3cQm1s9cJY=",
)

from oauthmail.settings import *  # noqa: E402,F403

OAUTHMAIL_RETRY_BACKOFF = 0.05
# Every token read written as it happens, so that no count waits in memory past its test; the tests of
# summarised reads set a period and write the counts themselves (reads.flush()).
OAUTHMAIL_READ_EVENTS_FLUSH = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_ROOT = None

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file rather than SQLite's shared in-memory database: the SMTP relay's worker threads write while the
    # test runs, and only a file database waits for a lock (busy timeout, WAL) as production's does; the
    # in-memory one answers "database table is locked" at once.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"oauthmail-test-{os.getpid()}.sqlite3"),
    }
