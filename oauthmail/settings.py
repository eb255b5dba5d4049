"""oauthmail settings, read from the environment or from a `.env` file beside manage.py.

A missing or malformed required setting stops start-up with one line naming it.
"""
import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("OAUTHMAIL_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and os.path.isfile(_env_file):
    env.read_env(_env_file)


def _stop(name, problem):
    sys.exit(f"oauthmail: setting {name} {problem}. Set it in the environment or in {_env_file or '.env'}.")


def _required(name):
    value = env.str(name, default="").strip()
    if not value:
        _stop(name, "is missing")
    return value


def _setting(name, parse):
    try:
        return parse()
    except (ValueError, TypeError, KeyError, environ.ImproperlyConfigured) as exc:
        _stop(name, f"is malformed ({exc})")


def _bool(name, default):
    value = env.str(name, default=str(default)).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _number(name, default, *, above=None, at_least=None, below=None):
    value = env.float(name, default=default)
    if above is not None and not value > above:
        raise ValueError(f"{value:g} is not more than {above:g}")
    if at_least is not None and value < at_least:
        raise ValueError(f"{value:g} is less than {at_least:g}")
    if below is not None and not value < below:
        raise ValueError(f"{value:g} is not less than {below:g}")
    return value


SECRET_KEY = _required("SECRET_KEY")
DEBUG = _setting("DEBUG", lambda: _bool("DEBUG", False))
ALLOWED_HOSTS = _setting("ALLOWED_HOSTS", lambda: env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"]))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys, comma-separated: the first encrypts, all decrypt (see oauthmail/crypto.py).
OAUTHMAIL_ENCRYPTION_KEYS = [k.strip() for k in _required("OAUTHMAIL_ENCRYPTION_KEYS").split(",") if k.strip()]


def _check_encryption_keys():
    from cryptography.fernet import Fernet

    for key in OAUTHMAIL_ENCRYPTION_KEYS:
        Fernet(key)  # raises ValueError for a malformed key


_setting("OAUTHMAIL_ENCRYPTION_KEYS", _check_encryption_keys)

SUPPORTED_DATABASES = ("django.db.backends.sqlite3", "django.db.backends.postgresql")


def _database():
    config = env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    if config.get("ENGINE") not in SUPPORTED_DATABASES:
        raise ValueError("use sqlite:///PATH or postgres://USER:PASSWORD@HOST:PORT/NAME")
    return config


DATABASES = {"default": _setting("DATABASE_URL", _database)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (server, cron, CLI) share the file: wait for locks instead of failing at once.
    # WAL: readers (the admin) never wait for writers (cron), and a commit costs one fsync at most.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Statements on a server-binding cursor are prepared after 5 runs on a connection (psycopg's default;
    # Django turns it off). Only the token read uses one (api/lookup.py): Django's own cursors bind on the
    # client and are never prepared. Behind a transaction-pooling PgBouncer older than 1.21, set it to None.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)


def _conn_max_age():
    value = env.int("CONN_MAX_AGE", default=600)
    if value < 0:
        raise ValueError("seconds, 0 or more")
    return value


# Persistent connections (seconds a connection is kept between requests; 0: one per request). Kept by
# default: opening one costs more than a token read (a PostgreSQL login; on SQLite, the WAL pragmas).
# CONN_HEALTH_CHECKS tests a kept connection before reusing it, so a database restart costs no request.
DATABASES["default"]["CONN_MAX_AGE"] = _setting("CONN_MAX_AGE", _conn_max_age)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = _setting("CONN_HEALTH_CHECKS", lambda: _bool("CONN_HEALTH_CHECKS", False))

TIME_ZONE = _setting("TIME_ZONE", lambda: env.str("TIME_ZONE", default="UTC"))
LANGUAGE_CODE = _setting("LANGUAGE_CODE", lambda: env.str("LANGUAGE_CODE", default="en-us"))
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

INSTALLED_APPS = [
    "oauthmail.apps.OAuthmailAdminConfig",  # django.contrib.admin, opening on the dashboard
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "axes",
    "providers",
    "accounts",
    "api",
    "relay",
    "monitoring",
    "alerts",
]

MIDDLEWARE = [
    "oauthmail.health.HealthCheckMiddleware",  # /healthz, before Host checks, redirects and sessions
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a locked-out sign-in into its page
]

ROOT_URLCONF = "oauthmail.urls"
WSGI_APPLICATION = "oauthmail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Admin sign-in throttled against password guessing (django-axes): after OAUTHMAIL_LOGIN_FAILURES wrong
# passwords for one user from one address, that user is locked out from there for
# OAUTHMAIL_LOGIN_COOLOFF_MINUTES (every new try restarts the wait). `manage.py axes_reset_username NAME`
# (or the admin's Axes › Access attempts) unlocks earlier. The address is oauthmail.client_ip's.
AUTHENTICATION_BACKENDS = [
    "oauthmail.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _setting("OAUTHMAIL_LOGIN_FAILURES", lambda: env.int("OAUTHMAIL_LOGIN_FAILURES", default=5))
AXES_COOLOFF_TIME = _setting(
    "OAUTHMAIL_LOGIN_COOLOFF_MINUTES",
    lambda: timedelta(minutes=env.float("OAUTHMAIL_LOGIN_COOLOFF_MINUTES", default=15)),
)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "oauthmail.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "oauthmail.auth.locked_out"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Behind HTTPS (a reverse proxy terminating TLS and setting X-Forwarded-Proto): secure cookies, HSTS and a
# redirect of plain HTTP. With it, DEBUG off and a real SECRET_KEY, `manage.py check --deploy` is clean.
OAUTHMAIL_HTTPS = _setting("OAUTHMAIL_HTTPS", lambda: _bool("OAUTHMAIL_HTTPS", False))
if OAUTHMAIL_HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = True

# Content-Security-Policy (django-csp): scripts, styles, images and fetches from this site only, no inline
# script or style (ours are static files), no plugin, no framing. form-action stays open: Init. Token's
# browser sign-in posts to oauthmail, which redirects to Microsoft's or Google's sign-in page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Secrets stay out of error pages and reports even with DEBUG on (oauthmail/debug.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "oauthmail.debug.SecretsHiddenFilter"

STATIC_URL = "static/"
# Where collectstatic writes the admin's CSS and scripts; whitenoise serves them from there.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The address users reach oauthmail at, e.g. https://oauthmail.example.com, when a proxy hides it;
# the browser sign-in's redirect URI is built from it. Blank: from each request.
OAUTHMAIL_BASE_URL = env.str("OAUTHMAIL_BASE_URL", default="")


# Seconds: the whole of every request to an identity provider (connect, TLS, the complete answer;
# providers/http.py) and of every IMAP/POP/SMTP dialogue (oauthmail/deadlines.py).
OAUTHMAIL_HTTP_TIMEOUT = _setting(
    "OAUTHMAIL_HTTP_TIMEOUT", lambda: _number("OAUTHMAIL_HTTP_TIMEOUT", 15.0, above=0, below=600)
)
# Minutes: a token handed out (show_token, the API, the mail backend, Test connection) is valid at least
# this long, else it is refreshed first. Exchange Online's High Volume Email wants 10. Access tokens live
# about an hour, so an hour or more would refresh at every request.
OAUTHMAIL_MIN_TOKEN_VALIDITY = _setting(
    "OAUTHMAIL_MIN_TOKEN_VALIDITY", lambda: _number("OAUTHMAIL_MIN_TOKEN_VALIDITY", 10.0, at_least=0, below=60)
)
# Transient provider failures (network, timeouts, 5xx, 429) are retried this many times with backoff.
OAUTHMAIL_RETRY_ATTEMPTS = _setting("OAUTHMAIL_RETRY_ATTEMPTS", lambda: env.int("OAUTHMAIL_RETRY_ATTEMPTS", default=3))
OAUTHMAIL_RETRY_BACKOFF = _setting("OAUTHMAIL_RETRY_BACKOFF", lambda: env.float("OAUTHMAIL_RETRY_BACKOFF", default=2.0))

# The token API: wrong keys from one address within a minute before it gets 429 (api/throttle.py).
OAUTHMAIL_API_KEY_FAILURES = _setting(
    "OAUTHMAIL_API_KEY_FAILURES", lambda: env.int("OAUTHMAIL_API_KEY_FAILURES", default=20)
)
# Seconds between two writes of the token reads counted in memory (accounts/services/reads.py): the first
# read of an account by a client in an hour is written at once, the next ones are added to its event this
# often and when the process exits. 0: every read is written as it happens.
OAUTHMAIL_READ_EVENTS_FLUSH = _setting(
    "OAUTHMAIL_READ_EVENTS_FLUSH", lambda: _number("OAUTHMAIL_READ_EVENTS_FLUSH", 60.0, at_least=0, below=3600)
)
# Reverse proxies in front of oauthmail that append the client's address to X-Forwarded-For: the client
# address used for throttling (API keys, admin sign-in) is the entry that many places from the end.
# 0: REMOTE_ADDR, and X-Forwarded-For is ignored (a client could write anything there).
OAUTHMAIL_PROXY_COUNT = _setting("OAUTHMAIL_PROXY_COUNT", lambda: env.int("OAUTHMAIL_PROXY_COUNT", default=0))

# Django's own e-mail (and any project's that installs oauthmail) through this account's SMTP server,
# with XOAUTH2: set it to an account identifier. Blank: EMAIL_URL (smtp+tls://USER:PASSWORD@HOST:587),
# else Django's default (an SMTP server on localhost:25).
OAUTHMAIL_EMAIL_ACCOUNT = env.str("OAUTHMAIL_EMAIL_ACCOUNT", default="")
# With OAUTHMAIL_EMAIL_ACCOUNT, the mailbox's own address: Microsoft and Google refuse a From the account may
# not send as.
DEFAULT_FROM_EMAIL = SERVER_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")
if OAUTHMAIL_EMAIL_ACCOUNT:
    EMAIL_BACKEND = "accounts.mail.OAuth2EmailBackend"
elif env.str("EMAIL_URL", default=""):
    vars().update(_setting("EMAIL_URL", lambda: env.email_url("EMAIL_URL")))

# Health: refresh_tokens is overdue (dashboard, alerts, metrics) when it has not finished a run for this long.
OAUTHMAIL_REFRESH_OVERDUE_MINUTES = _setting(
    "OAUTHMAIL_REFRESH_OVERDUE_MINUTES", lambda: env.int("OAUTHMAIL_REFRESH_OVERDUE_MINUTES", default=30)
)
# prune_events keeps this many days of token events, refresh runs and alerts by default.
OAUTHMAIL_EVENT_RETENTION_DAYS = _setting(
    "OAUTHMAIL_EVENT_RETENTION_DAYS", lambda: env.int("OAUTHMAIL_EVENT_RETENTION_DAYS", default=365)
)
# /metrics answers only with "Authorization: Bearer <this>"; blank: /metrics does not exist (404).
OAUTHMAIL_METRICS_TOKEN = env.str("OAUTHMAIL_METRICS_TOKEN", default="")

# The SMTP relay (`manage.py smtp_relay`, relay/): devices that only know a user and a password send
# through it; it forwards with the account's token. Addresses are HOST:PORT, comma-separated ([::]:587).
def _listen(name, default):
    addresses = []
    for item in filter(None, (item.strip() for item in env.list(name, default=default))):
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not HOST:PORT")
        addresses.append((host.strip("[]") or "0.0.0.0", int(port)))
    return addresses


def _networks(name):
    import ipaddress

    return [ipaddress.ip_network(item.strip(), strict=False) for item in env.list(name, default=[]) if item.strip()]


OAUTHMAIL_RELAY_LISTEN = _setting("OAUTHMAIL_RELAY_LISTEN", lambda: _listen("OAUTHMAIL_RELAY_LISTEN", ["0.0.0.0:587"]))
OAUTHMAIL_RELAY_TLS_LISTEN = _setting(
    "OAUTHMAIL_RELAY_TLS_LISTEN", lambda: _listen("OAUTHMAIL_RELAY_TLS_LISTEN", ["0.0.0.0:465"])
)
OAUTHMAIL_RELAY_TLS_CERT = env.str("OAUTHMAIL_RELAY_TLS_CERT", default="")  # PEM: certificate, then its chain
OAUTHMAIL_RELAY_TLS_KEY = env.str("OAUTHMAIL_RELAY_TLS_KEY", default="")
# Devices on these networks may log in without TLS (e.g. 127.0.0.0/8); nobody else ever may.
OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS = _setting(
    "OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS", lambda: _networks("OAUTHMAIL_RELAY_PLAINTEXT_NETWORKS")
)
OAUTHMAIL_RELAY_HOSTNAME = env.str("OAUTHMAIL_RELAY_HOSTNAME", default="")  # blank: the machine's name
OAUTHMAIL_RELAY_MAX_MESSAGE_MB = _setting(
    "OAUTHMAIL_RELAY_MAX_MESSAGE_MB", lambda: env.float("OAUTHMAIL_RELAY_MAX_MESSAGE_MB", default=35.0)
)
# Every exchange with the upstream server (log in; one message) must end within this many seconds.
OAUTHMAIL_RELAY_UPSTREAM_TIMEOUT = _setting(
    "OAUTHMAIL_RELAY_UPSTREAM_TIMEOUT", lambda: env.float("OAUTHMAIL_RELAY_UPSTREAM_TIMEOUT", default=60.0)
)
# Exchange Online accepts 3 simultaneous SMTP submissions per mailbox (more get 432 4.3.2).
OAUTHMAIL_RELAY_UPSTREAM_CONNECTIONS = _setting(
    "OAUTHMAIL_RELAY_UPSTREAM_CONNECTIONS", lambda: env.int("OAUTHMAIL_RELAY_UPSTREAM_CONNECTIONS", default=3)
)
OAUTHMAIL_RELAY_UPSTREAM_IDLE = _setting(
    "OAUTHMAIL_RELAY_UPSTREAM_IDLE", lambda: env.float("OAUTHMAIL_RELAY_UPSTREAM_IDLE", default=30.0)
)
OAUTHMAIL_RELAY_WORKERS = _setting("OAUTHMAIL_RELAY_WORKERS", lambda: env.int("OAUTHMAIL_RELAY_WORKERS", default=8))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # msal and urllib3 may log request bodies at DEBUG: never let tokens reach a log.
        "msal": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        "google": {"level": "WARNING"},
        # aiosmtpd logs every command line at INFO, AUTH PLAIN's credentials included.
        "mail.log": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # a lock-out is logged (WARNING); not each attempt's bookkeeping
    },
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
