import os

import pytest

from tests.browser import admin_page, browser, keep_artifacts, log_in, page  # noqa: F401  (fixtures)
from tests.idp import TestIdentityProvider

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Browser tests: a failure keeps screenshots and HTML (tests/browser.py)."""
    report = yield
    keep_artifacts(item, report)
    return report


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and the roles its migrations made, recorded for make_staff()."""
    from tests.factories import record_roles

    with django_db_blocker.unblock():
        record_roles()


@pytest.fixture
def language_restored():
    """A request with Accept-Language: fr leaves French active in this thread: give the next test its language back."""
    from django.utils import translation

    language = translation.get_language()
    yield
    translation.activate(language)


@pytest.fixture(scope="session")
def idp_server():
    """The test identity provider, started once per session.

    While it runs, REQUESTS_CA_BUNDLE and SSL_CERT_FILE name its CA bundle (system CAs + the
    test CA): requests lets REQUESTS_CA_BUNDLE win over ``Session.verify``, and CI sets it.
    """
    server = TestIdentityProvider().start()
    saved = {name: os.environ.get(name) for name in CA_BUNDLE_VARIABLES}
    os.environ.update(dict.fromkeys(CA_BUNDLE_VARIABLES, server.ca_bundle))
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture
def idp(idp_server):
    """The session's identity provider, reset: no clients, tokens, codes or recorded requests."""
    idp_server.reset()
    return idp_server


# --- Mail servers: Test connection, the token API and the mail backend (tests/dovecot.py) -------
# Imports are local so that this block stays self-contained.


@pytest.fixture
def sign_in(idp):
    """``sign_in(account)``: Init. Token by device code, the mailbox's user approving at once."""
    from accounts import services
    from accounts.models import InitRequest

    def sign_in(account):
        request = services.account_init_start(account=account, actor="test")
        idp.approve(request.user_code, account.sign_in_user or account.email)
        InitRequest.objects.filter(pk=request.pk).update(next_poll_at=None)  # the interval has passed
        request = services.account_init_poll(request_id=request.pk, actor="test")
        assert request.status == InitRequest.Status.SUCCEEDED, request.error
        account.refresh_from_db()
        return account

    return sign_in


@pytest.fixture(scope="session")
def mail_sink_server():
    from tests.dovecot import MailSink

    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def dovecot_server(idp_server, mail_sink_server):
    """A real Dovecot (IMAP, POP3, submission) checking tokens with the test identity provider."""
    from tests.dovecot import Dovecot

    server = Dovecot(idp_url=idp_server.url, ca=idp_server.ca, relay_port=mail_sink_server.port).start()
    yield server
    server.stop()


@pytest.fixture
def mail_sink(mail_sink_server):
    """What Dovecot's submission relayed during this test."""
    mail_sink_server.reset()
    return mail_sink_server


@pytest.fixture
def dovecot(dovecot_server, mail_sink):
    return dovecot_server


@pytest.fixture
def mail_account(idp, dovecot, sign_in):
    """A signed-in Microsoft account whose IMAP, POP and SMTP servers are the test Dovecot."""
    from tests.factories import make_account, make_application

    return sign_in(make_account(make_application(idp), **dovecot.account_fields()))
