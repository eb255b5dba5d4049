"""refresh_tokens stopped by SIGTERM or SIGINT, as systemd, Docker, a container platform or Ctrl-C stop it:
the refreshes in flight finish and their new refresh tokens are stored, no refresh is started or retried,
the accounts not started are left for the next run. A second signal stops waiting for answers still on
their way. Real `manage.py` processes against the test identity provider, which rotates refresh tokens
strictly (each works once: a second use would count in `refresh_token_reuse`)."""
import json
import signal
import time

import pytest

pytest.register_assert_rewrite("tests.fixtures_scale")
pytest_plugins = ["tests.fixtures_scale"]  # the shared_db fixture

from tests.fixtures_scale import make_world, refresh_requests, wait_for  # noqa: E402

pytestmark = pytest.mark.postgres


def answered(idp, status):
    return [r for r in refresh_requests(idp) if r["status"] == status]


def assert_every_stored_refresh_token_works(world, identifiers):
    before = world.idp.refresh_token_reuse
    report = json.loads(world.db.call("refresh_tokens", "--json", *identifiers))
    assert report["summary"] == {"refreshed": len(identifiers), "failed": 0, "skipped": 0}
    assert world.idp.refresh_token_reuse == before == 0


@pytest.mark.parametrize("signum, how", [(signal.SIGTERM, []), (signal.SIGINT, ["--loop", "--interval", "30"])],
                         ids=["SIGTERM", "SIGINT-loop"])
def test_a_stopped_refresh_stores_the_answers_in_flight_and_retries_nothing(shared_db, idp, signum, how):
    world = make_world(shared_db, idp, count=12)
    idp.set(latency=0.5)
    process = shared_db.start("refresh_tokens", "--workers", "3", *how)
    try:
        wait_for(lambda: len(answered(idp, 200)) >= 3, what="a first round of refreshes")
        idp.fail_next(1, status=503, retry_after=30)  # a worker will be waiting 30 s to try again
        wait_for(lambda: answered(idp, 503), what="the failed refresh")
        wait_for(lambda: idp.token_requests_in_flight, what="the other workers' next refresh")
        signalled = time.time()
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)  # not 30 s: no retry after the signal
    finally:
        process.kill()
    assert "Stopped" in err
    ok = answered(idp, 200)
    assert any(r["at"] < signalled < r["answered"] for r in ok)  # some were in flight at the signal ...
    statuses = world.statuses()
    assert list(statuses.values()).count("active") == len(ok) < 11  # ... and every answer was stored
    [failed] = answered(idp, 503)
    assert [r["refresh_token"] for r in refresh_requests(idp)].count(failed["refresh_token"]) == 1  # not retried
    assert list(statuses.values()).count("failing") == 1
    assert not world.accounts().exclude(claim_id="").exists()  # the others given back at once
    idp.set(latency=0)
    assert_every_stored_refresh_token_works(world, world.identifiers)


def test_a_second_signal_stops_waiting_for_answers_on_their_way(shared_db, idp):
    world = make_world(shared_db, idp, count=6)
    idp.set(latency=5)
    process = shared_db.start("refresh_tokens", "--workers", "2")
    try:
        wait_for(lambda: idp.token_requests_in_flight == 2, what="two refreshes in flight")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        process.kill()
    assert stopped_in < 2  # not the 5 s the provider takes to answer
    assert process.returncode == 1 and "Stopped" in err
    assert err.count("cancelled: oauthmail is stopping") == 2, err
    statuses = world.statuses()
    cut = [identifier for identifier, status in statuses.items() if status == "failing"]
    assert len(cut) == 2 and list(statuses.values()).count("new") == 4
    assert not world.accounts().exclude(claim_id="").exists()
    idp.set(latency=0)
    # The provider still answered the two cut requests, to nobody: with a provider that rotates refresh
    # tokens strictly those two grants are lost (as with kill -9); the accounts never started are intact.
    assert_every_stored_refresh_token_works(world, [i for i in world.identifiers if i not in cut])
