"""refresh_tokens at scale: the worker pool, batch claims, --loop and the progress bar.

Tests marked `postgres` run oauthmail's commands as separate processes sharing one database
(tests/fixtures_scale.py): a SQLite file here, the test database when DATABASE_URL names a
PostgreSQL (.ci/postgres).
"""
import json
import os
import pty
import select
import signal
import subprocess
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import claims, services
from accounts.models import Account, TokenEvent
from tests.factories import make_account, make_application

pytest.register_assert_rewrite("tests.fixtures_scale")
pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

from tests.fixtures_scale import Lines, make_world, refresh_requests, wait_for  # noqa: E402


def most_at_once(requests, latency):
    """The most token requests the identity provider was answering at the same moment."""
    arrivals = sorted(r["at"] for r in requests)
    return max((sum(1 for other in arrivals if at - latency < other <= at) for at in arrivals), default=0)


# --- the worker pool -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_workers_refresh_many_accounts_at_once_each_exactly_once(shared_db, idp):
    world = make_world(shared_db, idp, count=30)
    idp.set(latency=0.05)
    result = shared_db.run("refresh_tokens", "--workers", "8", "--json")
    report = json.loads(result.stdout)
    assert report["summary"] == {"refreshed": 30, "failed": 0, "skipped": 0}
    assert set(world.statuses().values()) == {"active"}
    requests = refresh_requests(idp)
    assert len(requests) == 30 and len({r["refresh_token"] for r in requests}) == 30
    assert idp.refresh_token_reuse == 0
    assert most_at_once(requests, 0.05) >= 2
    assert not world.accounts().exclude(claim_id="").exists()


@pytest.mark.django_db
def test_refresh_costs_the_same_number_of_queries_for_each_account(idp):
    app = make_application(idp)
    made = []

    def queries_to_refresh(count):
        for n in range(len(made), len(made) + count):
            email = f"box{n}@contoso.com"
            made.append(make_account(app, identifier=f"box{n}", email=email))
            Account.objects.filter(pk=made[-1].pk).update(refresh_token=idp.issue_refresh_token(app.client_id, email))
        with CaptureQueriesContext(connection) as queries:
            call_command("refresh_tokens", stdout=StringIO())  # one batch each
        assert Account.objects.filter(status="active").count() == len(made)
        return len(queries)

    three, six, nine = queries_to_refresh(3), queries_to_refresh(6), queries_to_refresh(9)
    assert nine - six == six - three  # each account costs the same, whatever their number
    # in one transaction (here a savepoint and its release, inside the test's), store the tokens giving
    # the claim back in the same UPDATE, and log the event; the claim came with the batch's
    assert (six - three) / 3 <= 4


@pytest.mark.django_db
def test_the_calling_thread_refreshes_when_its_transaction_hides_the_rows_from_workers(idp):
    app = make_application(idp)
    account = make_account(app)
    Account.objects.filter(pk=account.pk).update(refresh_token=idp.issue_refresh_token(app.client_id, account.email))
    out = StringIO()
    call_command("refresh_tokens", "--workers", "1", stdout=out)  # the test runs inside a transaction
    assert out.getvalue().startswith("1 refreshed, 0 failed")


@pytest.mark.django_db(transaction=True)
def test_tokens_obtained_after_the_claim_was_lost_are_stored_and_the_new_holder_keeps_its_claim(idp):
    app = make_application(idp)
    account = make_account(app)
    sent = idp.issue_refresh_token(app.client_id, account.email)
    Account.objects.filter(pk=account.pk).update(refresh_token=sent)
    idp.set(latency=1.0)

    def refresh():
        try:
            call_command("refresh_tokens", stdout=StringIO())
        finally:
            connection.close()

    thread = threading.Thread(target=refresh)
    thread.start()
    wait_for(lambda: idp.token_requests_in_flight, what="the token request")
    Account.objects.filter(pk=account.pk).update(claim_id="another-process")  # as if the lease had run out
    thread.join(timeout=20)
    account.refresh_from_db()
    assert account.status == Account.Status.ACTIVE and account.refresh_token not in ("", sent)  # nothing lost
    assert account.claim_id == "another-process"
    assert TokenEvent.objects.filter(account=account, kind=TokenEvent.Kind.REFRESH).count() == 1


# --- batch claims --------------------------------------------------------------------------------


@pytest.fixture
def due_pair(idp):
    app = make_application(idp)
    accounts = [make_account(app, identifier=name, email=f"{name}@contoso.com") for name in ("first", "second")]
    Account.objects.update(refresh_token="a-refresh-token")  # imported: due at once
    return accounts


@pytest.mark.django_db
def test_a_batch_claim_skips_an_account_another_process_holds(due_pair):
    first, second = due_pair
    assert claims.try_claim(first.pk)
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id="pool", size=10)
    assert [a.identifier for a in batch.claimed] == ["second"] and batch.busy == ["first"]
    assert Account.objects.get(pk=second.pk).claim_id == "pool"
    assert Account.objects.get(pk=first.pk).claim_id != "pool"


@pytest.mark.django_db
def test_an_expired_lease_can_be_claimed_again(due_pair):
    first, _second = due_pair
    assert claims.try_claim(first.pk)
    Account.objects.filter(pk=first.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id="pool", size=10)
    assert [a.identifier for a in batch.claimed] == ["first", "second"]


@pytest.mark.django_db
def test_a_worker_does_not_start_an_account_whose_lease_another_process_took_over(due_pair):
    first, _second = due_pair
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id="pool", size=10)
    Account.objects.filter(pk=first.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert claims.try_claim(first.pk)  # the lease ran out: another process takes the account
    assert not claims.start(batch.claimed[0].pk, "pool")
    assert claims.start(batch.claimed[1].pk, "pool")


@pytest.mark.django_db
def test_a_pool_starts_an_account_without_a_statement_while_its_lease_is_known_to_hold(due_pair):
    leases = claims.PoolLeases()
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id=leases.claim_id, size=10)
    leases.claimed(batch)
    with CaptureQueriesContext(connection) as queries:
        deadline = leases.start(batch.claimed[0].pk)
    assert len(queries) == 0
    assert deadline.ends - time.monotonic() >= claims.lease_seconds() - claims.lease_margin() - 1


@pytest.fixture
def short_leases(settings, monkeypatch):
    """Leases of seconds: a refresh's lease 3 s (one attempt, 0.5 s timeouts, a 2 s margin), a pool's 4 s."""
    settings.OAUTHMAIL_HTTP_TIMEOUT = 0.5
    settings.OAUTHMAIL_RETRY_ATTEMPTS = 1
    monkeypatch.setattr(claims, "KEEP_ALIVE_EVERY", 0.5)


@pytest.mark.django_db
def test_a_pool_renewal_written_too_late_makes_each_start_ask_the_database(due_pair, short_leases):
    first, second = due_pair
    leases = claims.PoolLeases()
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id=leases.claim_id, size=10)
    leases.claimed(batch)
    time.sleep(batch.work_ends - time.monotonic() + 0.1)  # the process was stopped past its leases' known end
    Account.objects.filter(pk=first.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert claims.try_claim(first.pk)  # another process took the account whose lease ran out
    leases.keep_alive()  # too late: it cannot know which rows were still its own
    with CaptureQueriesContext(connection) as queries:
        assert leases.start(first.pk) is None
        assert leases.start(second.pk) is not None
    assert len(queries) == 2


@pytest.mark.django_db
def test_a_pool_renewal_in_time_keeps_its_leases_known(due_pair, short_leases):
    leases = claims.PoolLeases()
    batch = claims.claim_batch(services.due_accounts(within=timedelta(0)), claim_id=leases.claim_id, size=10)
    leases.claimed(batch)
    time.sleep(max(0.0, batch.work_ends - time.monotonic() - 0.5))  # the known lease is now too short to start
    leases.keep_alive()
    with CaptureQueriesContext(connection) as queries:
        assert leases.start(batch.claimed[0].pk) is not None
    assert len(queries) == 0
    assert Account.objects.get(pk=batch.claimed[0].pk).claimed_until > timezone.now() + timedelta(seconds=3)


# --- --loop ---------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_loop_exits_cleanly_on_sigterm_after_finishing_the_accounts_in_hand(shared_db, idp):
    world = make_world(shared_db, idp, count=20)
    idp.set(latency=0.2)
    process = shared_db.start("refresh_tokens", "--loop", "--interval", "30", "--workers", "2")
    try:
        wait_for(lambda: refresh_requests(idp), what="the first refresh")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Stopped" in err
    refreshed = int(out.split(" refreshed")[0].split()[-1])
    statuses = world.statuses()
    assert 0 < refreshed < 20 and list(statuses.values()).count("active") == refreshed
    assert not world.accounts().exclude(claim_id="").exists()  # every claim given back at once
    idp.set(latency=0)
    rest = json.loads(shared_db.call("refresh_tokens", "--json"))["summary"]
    assert rest == {"refreshed": 20 - refreshed, "failed": 0, "skipped": 0}
    assert idp.refresh_token_reuse == 0


@pytest.mark.postgres
def test_loop_refreshes_again_every_interval(shared_db, idp):
    make_world(shared_db, idp, count=1)
    process = shared_db.start("refresh_tokens", "--loop", "--interval", "0.3")
    out, err = Lines(process.stdout), Lines(process.stderr)

    def summaries():
        return [line for line in out.text().splitlines() if "refreshed," in line]

    try:  # however long Python and Django take to start on a busy machine
        wait_for(lambda: len(summaries()) >= 3 or process.poll() is not None, timeout=90, what="three runs")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    finally:
        process.kill()
    out.all()
    assert process.returncode == 0, err.all()
    runs = summaries()
    assert runs[0].startswith("1 refreshed") and len(runs) >= 3
    assert all(line.startswith("0 refreshed") for line in runs[1:])


# --- progress -------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_progress_bar_is_drawn_on_a_terminal(shared_db, idp):
    make_world(shared_db, idp, count=5)
    controller, terminal = pty.openpty()
    process = shared_db.start("refresh_tokens", stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    shown = b""
    while process.poll() is None or select.select([controller], [], [], 0)[0]:
        if select.select([controller], [], [], 0.1)[0]:
            try:
                shown += os.read(controller, 4096)
            except OSError:  # the terminal closed
                break
    os.close(controller)
    text = shown.decode()
    assert process.wait(timeout=20) == 0
    assert "\rRefreshing [" in text and "5/5" in text
    assert text.rstrip().endswith("5 refreshed, 0 failed, 0 skipped (busy elsewhere).")


@pytest.mark.django_db
def test_no_progress_bar_when_not_on_a_terminal(idp):
    app = make_application(idp)
    account = make_account(app)
    Account.objects.filter(pk=account.pk).update(refresh_token=idp.issue_refresh_token(app.client_id, account.email))
    out = StringIO()
    call_command("refresh_tokens", stdout=out)
    assert out.getvalue() == "1 refreshed, 0 failed, 0 skipped (busy elsewhere).\n"
