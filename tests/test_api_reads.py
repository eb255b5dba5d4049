"""Reading a valid token over the API: one statement, no write, and still every read in the audit trail.

Reads are summarised in one event per client, account and hour (accounts/services/reads.py): the first read
of the hour is written at once, the next ones are counted in memory and added every
OAUTHMAIL_READ_EVENTS_FLUSH seconds and when the process exits.
"""
import signal
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, TokenEvent
from accounts.services import reads
from api.models import ApiClient
from tests.factories import make_account, make_application
from tests.test_api import create_client, get

pytest.register_assert_rewrite("tests.fixtures_scale", "tests.gunicorn")
pytest_plugins = ["tests.fixtures_scale", "tests.gunicorn"]  # shared_db, web_server

from tests.fixtures_scale import wait_for  # noqa: E402
from tests.gunicorn import production_env  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]  # api/lookup.py: SQL by hand


@pytest.fixture
def account(idp, sign_in):
    return sign_in(make_account(make_application(idp)))


@pytest.fixture
def key(account):
    return create_client("erp", account.identifier)


@pytest.fixture
def summarised(settings):
    """Reads counted in memory and written once a minute, as in production."""
    settings.OAUTHMAIL_READ_EVENTS_FLUSH = 60
    reads.forget()  # the events an earlier test's reads wrote were rolled back with it
    yield
    reads.forget()


def read_events(account):
    return TokenEvent.objects.filter(account=account, kind=TokenEvent.Kind.READ)


def test_reading_a_valid_token_again_is_one_select_and_no_write(client, account, key, summarised):
    get(client, account.identifier, key)  # the hour's first read: its event and last_used_at are written
    with CaptureQueriesContext(connection) as queries:
        response = get(client, account.identifier, key)
    assert response.status_code == 200
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["SELECT"]


def test_the_first_read_of_the_hour_is_in_the_trail_at_once(client, account, key, summarised):
    get(client, account.identifier, key)
    event = read_events(account).get()
    assert (event.actor, event.count) == ("api:erp", 1)
    assert reads.pending_reads() == 0


def test_later_reads_are_counted_into_the_hours_event(client, account, key, summarised):
    for _ in range(4):
        assert get(client, account.identifier, key).status_code == 200
    assert reads.pending_reads() == 3
    reads.flush()
    event = read_events(account).get()
    assert event.count == 4 and event.last_at >= event.at
    assert "4 times" in event.text
    assert reads.pending_reads() == 0


def test_each_client_has_its_own_count(client, account, key, summarised):
    other = create_client("crm", account.identifier)
    for _ in range(2):
        get(client, account.identifier, key)
    get(client, account.identifier, other)
    reads.flush()
    assert dict(read_events(account).values_list("actor", "count")) == {"api:erp": 2, "api:crm": 1}


def test_a_count_whose_event_was_pruned_meanwhile_gets_an_event_of_its_own(client, account, key, summarised):
    get(client, account.identifier, key)
    TokenEvent.objects.filter(kind=TokenEvent.Kind.READ).delete()
    get(client, account.identifier, key)
    reads.flush()
    assert read_events(account).get().count == 1


def test_without_a_period_every_read_is_written_as_it_happens(client, account, key, settings):
    settings.OAUTHMAIL_READ_EVENTS_FLUSH = 0
    for _ in range(3):
        get(client, account.identifier, key)
    assert read_events(account).get().count == 3
    assert reads.pending_reads() == 0


def test_last_used_at_is_written_at_most_once_a_minute(client, account, key):
    get(client, account.identifier, key)
    first = ApiClient.objects.get(name="erp").last_used_at
    get(client, account.identifier, key)
    assert ApiClient.objects.get(name="erp").last_used_at == first
    ApiClient.objects.filter(name="erp").update(last_used_at=first - timedelta(minutes=2))
    get(client, account.identifier, key)
    assert ApiClient.objects.get(name="erp").last_used_at > first


def test_a_stored_token_of_an_account_needing_reauthorisation_is_not_handed_out(client, account, key):
    Account.objects.filter(pk=account.pk).update(status=Account.Status.REAUTH_REQUIRED)
    response = get(client, account.identifier, key)
    assert response.status_code == 409 and response.json()["error"] == "reauth_required"


def test_a_read_of_a_valid_token_takes_no_claim(client, account, key):
    """A reader never waits behind a refresh of the same account: the valid token is read as it is."""
    Account.objects.filter(pk=account.pk).update(claim_id="held-by-a-refresh",
                                                 claimed_until=timezone.now() + timedelta(minutes=5))
    response = get(client, account.identifier, key)
    assert response.status_code == 200 and response.json()["access_token"] == account.access_token
    assert Account.objects.get(pk=account.pk).claim_id == "held-by-a-refresh"


def read_through(server, account, key, times):
    for _ in range(times):
        response = requests.get(f"{server.url}/api/v1/accounts/{account.identifier}/token",
                                headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert response.status_code == 200, server.log()


def test_the_web_server_writes_its_counted_reads_when_it_stops(shared_db, web_server, idp, sign_in):
    account = sign_in(make_account(make_application(idp)))
    key = create_client("erp", account.identifier)
    server = web_server.start(env=production_env(shared_db, OAUTHMAIL_READ_EVENTS_FLUSH=600))
    read_through(server, account, key, 5)  # spread over its processes: each writes its first read at once
    server.process.send_signal(signal.SIGTERM)  # systemctl stop: the workers finish and exit
    server.process.wait(timeout=30)
    assert read_events(account).get().count == 5


def test_the_web_server_writes_its_counted_reads_every_period(shared_db, web_server, idp, sign_in):
    account = sign_in(make_account(make_application(idp)))
    key = create_client("erp", account.identifier)
    server = web_server.start(env=production_env(shared_db, OAUTHMAIL_READ_EVENTS_FLUSH=1))
    read_through(server, account, key, 5)
    wait_for(lambda: read_events(account).get().count == 5, timeout=10)
    web_server.stop()  # then killed: nothing was left to write
    assert read_events(account).get().count == 5
