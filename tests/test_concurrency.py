"""Several processes refreshing the same accounts against a strictly rotating identity provider
(each refresh token works once: `refresh_token_reuse` counts every second use), and a refresh
process killed mid-way. Each process is a real `manage.py` sharing one real database with the
test (tests/fixtures_scale.py); .ci/postgres runs these against PostgreSQL.
"""
import json
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

pytest.register_assert_rewrite("tests.fixtures_scale")
pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

from providers.models import Application  # noqa: E402
from tests.fixtures_scale import make_world, refresh_requests, wait_for  # noqa: E402
from tests.slowdrip import microsoft_authority  # noqa: E402

pytestmark = pytest.mark.postgres


def answered(idp, status):
    return [r for r in refresh_requests(idp) if r["status"] == status]


def assert_every_stored_refresh_token_works(world):
    """Refresh every account once more, due or not: a lost or stale refresh token would fail here."""
    before = world.idp.refresh_token_reuse
    report = json.loads(world.db.call("refresh_tokens", "--json", *world.identifiers))
    assert report["summary"] == {"refreshed": len(world.identifiers), "failed": 0, "skipped": 0}
    assert world.idp.refresh_token_reuse == before == 0


def test_two_refresh_processes_and_show_token_never_send_a_refresh_token_twice(shared_db, idp):
    world = make_world(shared_db, idp, count=60)
    shared_db.call("refresh_tokens")
    assert set(world.statuses().values()) == {"active"}
    world.accounts().update(access_token_expires_at=timezone.now() + timedelta(minutes=1))  # due for everyone
    already = len(refresh_requests(idp))
    idp.set(latency=0.1)
    refreshers = [shared_db.start("refresh_tokens", "--workers", "4", "--json") for _ in range(2)]
    readers = {identifier: shared_db.start("show_token", identifier) for identifier in world.identifiers[5::25]}
    try:
        reports = [json.loads(process.communicate(timeout=60)[0])["summary"] for process in refreshers]
        tokens = {identifier: process.communicate(timeout=60)[0].strip() for identifier, process in readers.items()}
    finally:
        for process in [*refreshers, *readers.values()]:
            process.kill()
    assert [process.returncode for process in [*refreshers, *readers.values()]] == [0] * 5
    assert idp.refresh_token_reuse == 0
    assert all(report["refreshed"] > 0 and report["failed"] == 0 for report in reports)  # both did share the work
    assert all(idp.valid_access_token(token)["email"] for token in tokens.values())
    requests = refresh_requests(idp)[already:]
    assert len(requests) == len({r["refresh_token"] for r in requests}) == 60  # each account exactly once
    assert set(world.statuses().values()) == {"active"}
    idp.set(latency=0)
    assert_every_stored_refresh_token_works(world)


def test_a_refresh_killed_midway_leaves_every_account_usable(shared_db, idp):
    world = make_world(shared_db, idp, count=40)
    idp.set(latency=0.2)
    process = shared_db.start("refresh_tokens", "--workers", "4")
    try:
        wait_for(lambda: len(answered(idp, 200)) >= 8, what="a few refreshes")
        # From now on each worker's next request fails with a Retry-After: once all four have had
        # theirs, every worker is waiting to try again and no refresh is in flight. Kill it then.
        idp.fail_next(4, status=503, retry_after=30)
        wait_for(lambda: len(answered(idp, 503)) == 4, what="every worker to wait for a retry")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        process.kill()
        process.communicate()
    done = list(world.statuses().values()).count("active")
    held = world.accounts().exclude(claim_id="")
    assert 8 <= done < 40 and held.exists()  # killed mid-way, holding claims
    held.update(claimed_until=timezone.now() - timedelta(seconds=1))  # time passes: the leases run out
    idp.set(latency=0)
    report = json.loads(shared_db.call("refresh_tokens", "--json"))["summary"]
    assert report == {"refreshed": 40 - done, "failed": 0, "skipped": 0}
    assert set(world.statuses().values()) == {"active"}
    assert idp.refresh_token_reuse == 0
    assert_every_stored_refresh_token_works(world)


def test_a_refresh_token_is_never_in_two_requests_even_when_the_provider_answers_slowly(shared_db, idp):
    """show_token claims the account and sends its refresh token to a provider that answers one byte at
    a time (each byte well within the read timeout). A second refresher starts once show_token's lease
    has run out. show_token must have given up, its connection closed, before that: the refresh token
    is sent again only when no answer to the first request can come any more."""
    world = make_world(shared_db, idp, count=1)
    [identifier] = world.identifiers
    env = shared_db.env(OAUTHMAIL_HTTP_TIMEOUT=1, OAUTHMAIL_RETRY_ATTEMPTS=1)
    with microsoft_authority(idp.ca) as slow:
        Application.objects.using(shared_db.alias).filter(pk=world.application.pk).update(authority_url=slow.url)
        holder = shared_db.start("show_token", identifier, env=env)
        try:
            wait_for(slow.dripped, what="show_token's token request")
            lease_ends = world.accounts().get().claimed_until  # read while show_token holds the claim
            time.sleep(max(0.0, lease_ends.timestamp() - time.time()) + 0.1)
            second = shared_db.run("refresh_tokens", identifier, "--json", env=env, check=False, timeout=30)
            _out, err = holder.communicate(timeout=30)
        finally:
            holder.kill()
        first_request, second_request = slow.dripped()
    assert first_request.form["refresh_token"] == second_request.form["refresh_token"]
    assert first_request.closed < lease_ends.timestamp()  # show_token gave up while it held the claim
    assert not first_request.overlaps(second_request)
    assert holder.returncode == 1 and "took too long to answer" in err
    assert "took too long to answer" in json.loads(second.stdout)["failed"][0]["error"]
