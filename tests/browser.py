"""Browser tests: Playwright (from PyPI) driving Debian's headless chromium against pytest-django's
``live_server``. Never ``playwright install``: the browser is /usr/bin/chromium (`make test` installs it).

The fixtures (registered by tests/conftest.py, so every test module has them):

- ``browser``: one headless chromium for the whole session.
- ``page``: a fresh page (its own cookies, English, a 1366 × 768 window: the smallest screen the
  admin must fit without scrolling sideways) whose relative URLs go to ``live_server``:
  ``page.goto("/admin/")``. Asking for it starts ``live_server``, so the test runs with
  ``transactional_db``: the server's thread sees what the test writes, and the database is emptied
  after the test, the migrations' rows too (the "Mailbox operators" and "OAuth administrators"
  groups): ``tests.factories.make_staff`` writes those again when they are missing.
- ``log_in``: ``log_in(user)`` signs ``user`` in on ``page`` (a real session, no login form) and
  returns the page.
- ``admin_page``: ``page`` signed in as a new superuser.

When a test that used ``page`` fails, a screenshot and the HTML of each of its pages are kept in
``test-artifacts/<test name>/`` (gitignored), and the failure report names them.

Playwright's sync API runs in the test's own thread and refuses to run inside an asyncio loop; the
live server and the test identity provider serve from their own threads, so nothing here blocks
them. While it runs, Playwright's own event loop counts as running in the test's thread, so Django
would refuse the test's (synchronous) database queries: ``browser`` sets DJANGO_ALLOW_ASYNC_UNSAFE
for as long as it lives. Keep browser tests few: each costs a page or two of real rendering.
"""
import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 10_000  # every wait and expect(): a page that has not done it by then will not
CONTEXT = pytest.StashKey[object]()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
        finally:
            playwright.stop()


@pytest.fixture
def page(request, browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="en-US", viewport={"width": 1366, "height": 768})
    context.set_default_timeout(TIMEOUT_MS)
    request.node.stash[CONTEXT] = context  # for keep_artifacts(): every page the test opened in it
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def log_in(page, live_server):
    from django.conf import settings
    from django.test import Client

    def log_in(user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
        return page

    return log_in


@pytest.fixture
def admin_page(log_in, django_user_model):
    admin = django_user_model.objects.create_superuser("browser-admin", "admin@example.com", "pw-browser-admin")
    return log_in(admin)


def keep_artifacts(item, report):
    """After a failed test that used ``page``: a screenshot and the HTML of each page, named in the report."""
    context = item.stash.get(CONTEXT, None)
    if report.when != "call" or not report.failed or context is None:
        return
    directory = ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.nodeid)
    directory.mkdir(parents=True, exist_ok=True)
    kept = []
    for number, page in enumerate(context.pages, start=1):
        try:
            page.screenshot(path=directory / f"page-{number}.png", full_page=True)
            (directory / f"page-{number}.html").write_text(page.content(), encoding="utf-8")
        except Exception as exc:  # a crashed page must not hide the test's own failure
            kept.append(f"page {number}: could not be saved ({exc})")
            continue
        kept.append(f"page {number} ({page.url}): {directory / f'page-{number}.png'} and .html")
    report.sections.append(("browser artifacts", "\n".join(kept)))
