"""Running oauthmail's commands as separate processes that share one real database with the test.

``shared_db`` is that database: pytest-django's test database, committed (``transactional_db``), which
the processes reach by its name (PostgreSQL) or its file (SQLite: tests/settings.py keeps the test
database in a file). ``db.accounts`` and ``db.alias`` name it for the test's own queries.

``world`` builds on it: an application registered with the test identity provider and accounts
imported by ``import_accounts`` (the service ``manage.py import_accounts`` runs; in the test's own
process, which saves a Python start per test), each with a refresh token the provider issued, so that
they are due at once.
"""
import csv
import io
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection

from accounts import services
from accounts.models import Account
from providers.models import Application

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class SharedDatabase:
    alias: str
    url: str

    @property
    def accounts(self):
        return Account.objects.using(self.alias)

    def env(self, **extra):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=self.url, PYTHONUNBUFFERED="1")
        env.update({name: str(value) for name, value in extra.items()})
        return env

    def start(self, *args, env=None, **kwargs):
        """``manage.py *args`` as its own process (text pipes for stdout and stderr unless told otherwise)."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env or self.env(),
                                text=True, **kwargs)

    def call(self, *args):
        """``manage.py *args`` in the test's own process, for what a test only prepares or checks: no Python to
        start. Returns standard output."""
        out = io.StringIO()
        call_command(*args, stdout=out, stderr=io.StringIO())
        return out.getvalue()

    def run(self, *args, env=None, timeout=60, check=True):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env or self.env(),
                                text=True, capture_output=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result


def database_url(settings_dict):
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict["USER"] or "", safe="")
    password = f":{quote(settings_dict['PASSWORD'], safe='')}" if settings_dict["PASSWORD"] else ""
    host = settings_dict["HOST"] or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{settings_dict['NAME']}"


@pytest.fixture
def shared_db(transactional_db):
    assert connection.vendor != "sqlite" or not connection.is_in_memory_db(), "tests/settings.py: a file database"
    return SharedDatabase("default", database_url(connection.settings_dict))


@dataclass
class World:
    db: SharedDatabase
    idp: object
    application: Application
    identifiers: list

    def accounts(self):
        return self.db.accounts.filter(identifier__in=self.identifiers)

    def statuses(self):
        return dict(self.accounts().values_list("identifier", "status"))


def wait_for(condition, timeout=20, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Lines:
    """The lines a process writes to a pipe, collected as they come by a thread of their own, so that a
    test can wait for one (``wait_for(lambda: "..." in lines.text())``) instead of sleeping a fixed time."""

    def __init__(self, pipe):
        self.lines = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        for line in pipe:
            self.lines.append(line)

    def text(self):
        return "".join(self.lines)

    def all(self, timeout=20):
        """Everything, once the process has closed the pipe (it has ended)."""
        self._thread.join(timeout)
        return self.text()


COLUMNS = ("application", "identifier", "name", "email", "flow", "refresh_token")


def csv_text(rows, *, columns=COLUMNS):
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    writer.writerows(rows)
    return text.getvalue()


def write_csv(path, rows, *, columns=COLUMNS):
    path.write_text(csv_text(rows, columns=columns), encoding="utf-8")
    return path


def make_world(db, idp, *, count=0, prefix="box", mailboxes=()):
    """An application and `count` accounts (or these ``(identifier, email)`` mailboxes) imported with fresh
    refresh tokens, so all due at once."""
    client_id = str(uuid.uuid4())
    idp.add_client(client_id)
    application = Application(identifier=f"app-{uuid.uuid4().hex[:8]}", name="Scale test", provider="microsoft",
                              tenant="contoso.onmicrosoft.com", client_id=client_id, authority_url=idp.url)
    application.save(using=db.alias)
    mailboxes = list(mailboxes) or [(f"{prefix}-{n:04d}", f"{prefix}.{n}@contoso.com") for n in range(count)]
    identifiers, rows = [], []
    for n, (identifier, email) in enumerate(mailboxes):
        identifiers.append(identifier)
        rows.append([application.identifier, identifier, f"Mailbox {n}", email, "device_code",
                     idp.issue_refresh_token(client_id, email)])
    report = services.import_accounts(file=io.StringIO(csv_text(rows)), actor="import")
    assert not report.errors, report.errors
    return World(db, idp, application, identifiers)


def refresh_requests(idp):
    return [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]
