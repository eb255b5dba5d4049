"""Benchmark the token API against a bare Django JSON view, both served by the same gunicorn.

    .venv/bin/python bench/api.py [--database sqlite|postgres|both] [--database-url URL] [--connections 1,8,32]
                                  [--seconds 10] [--warmup 2] [--rounds 3] [--workers 3] [--threads 1]
    .venv/bin/python bench/api.py --during-refresh [--accounts 2000] [--latency 0.05] [--refresh-workers 32]

What it does, every piece a process of its own, with production settings (oauthmail/settings.py):
1. starts the test identity provider (`python -m tests.idp`), whose access tokens live a day;
2. for each database (SQLite: a new file; PostgreSQL: a new database on --database-url's server, dropped
   at the end; by default SQLite, and PostgreSQL too when that server answers): migrates, registers an
   application, imports one account (plus N due ones with --during-refresh) with `import_accounts`,
   refreshes that one with `refresh_tokens IDENT` so that it holds a valid access token for a day, and
   makes an API client for it with `create_api_client`;
3. counts the SQL statements of one API read (the second of two, through Django's test client in a
   `manage.py shell`, connection set-up not included), and how many of them write;
4. starts gunicorn as deploy/oauthmail-web.service runs it (tests/gunicorn.py) but with --workers W
   --threads T (default 3 sync workers) and --max-requests 0 (a worker restart would fall in some
   measurements and not in others), and with bench/_settings.py: production's settings and URLs plus
   /bench/bare, a view answering JsonResponse({"ok": True}) behind the same middleware;
5. checks that the API answers 200 with an access token, then, for each connection count, runs rounds
   of wrk (bench/_wrk.py; a warm-up before each measurement): bare view, API, bare view, API ... and
   prints each round, then the medians, API/bare (of the medians, and the median of each round's ratio:
   a round's two runs are back to back, so its ratio suffers least from the machine's other loads) and
   whether the issue's targets are met: the API at 50 % of the bare view's req/s or more at every
   connection count (the rounds' ratio), its p99 under 20 ms at 8.
   Every answer must be a 2xx: any other status, or a socket error, is counted and fails the run.

With --during-refresh (SQLite by default), instead of 5: wrk reads the API at 8 connections while
`refresh_tokens --workers 32` refreshes N due accounts against a provider answering in L seconds; wrk
starts a second before refresh_tokens and stops when it ends. Targets: API p99 under 200 ms, no error,
all N refreshed and none failed (nor any refresh token used twice).
The machine is shared: see the load average printed with every round, and compare within a round.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

import _wrk  # noqa: E402
import requests  # noqa: E402
from refresh import (  # noqa: E402
    Run,
    environment,
    fresh_database,
    manage,
    register_application,
    start_identity_provider,
    write_accounts,
)

from tests.dovecot import free_port  # noqa: E402
from tests.gunicorn import WEB_UNIT, WebServer, unit_command, unit_directory, unit_environment  # noqa: E402

POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
ACCOUNT = "box000000"  # write_accounts' first account: the one the API reads
BARE, API = "/bench/bare", f"/api/v1/accounts/{ACCOUNT}/token"
API_SHARE, P99_AT_8, P99_DURING_REFRESH = 0.5, 20.0, 200.0  # the targets

COUNT_QUERIES = """
import json, os
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(headers={"authorization": "Bearer " + os.environ["BENCH_API_KEY"]}, SERVER_NAME="127.0.0.1")
client.get(%(path)r)
with CaptureQueriesContext(connection) as queries:
    response = client.get(%(path)r)
assert response.status_code == 200, response.content
print(json.dumps([query["sql"] for query in queries.captured_queries]))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"],
                        help="default: SQLite, and PostgreSQL too when --database-url's server answers "
                             "(with --during-refresh: SQLite)")
    parser.add_argument("--database-url", default=POSTGRES_URL, help=f"the PostgreSQL server (default {POSTGRES_URL})")
    parser.add_argument("--connections", default="1,8,32", help="wrk's connection counts, comma-separated")
    parser.add_argument("--seconds", type=int, default=10, help="each measurement")
    parser.add_argument("--warmup", type=int, default=2, metavar="SECONDS", help="before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="bare view then API, this many times")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn's processes")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn's threads per process (1: sync worker)")
    parser.add_argument("--during-refresh", action="store_true", help="the API while refresh_tokens runs")
    parser.add_argument("--accounts", type=int, default=2000, metavar="N", help="with --during-refresh")
    parser.add_argument("--latency", type=float, default=0.05, metavar="SECONDS", help="with --during-refresh")
    parser.add_argument("--refresh-workers", type=int, default=32, metavar="W", help="with --during-refresh")
    args = parser.parse_args(argv)
    args.connections = [int(n) for n in args.connections.split(",")]
    _wrk.ensure_installed()
    failed = False
    with tempfile.TemporaryDirectory(prefix="oauthmail-bench-api-") as tmp:
        tmp = Path(tmp)
        idp_process, idp = start_identity_provider(tmp / "idp")
        try:
            for label, url in databases(args):
                (tmp / label).mkdir()
                with fresh_database(url, tmp / label) as database_url:
                    env = dict(environment(database_url, idp), DEBUG="false", ALLOWED_HOSTS="127.0.0.1,localhost")
                    failed |= benchmark(args, label, env, idp, tmp / label)
        finally:
            idp_process.terminate()
            idp_process.wait(timeout=10)
    sys.exit(1 if failed else 0)


def databases(args):
    """[(label, PostgreSQL server URL or None for SQLite)] as --database asks."""
    choice = args.database or ("sqlite" if args.during_refresh else None)
    if choice is None:
        choice = "both" if postgres_answers(args.database_url) else "sqlite"
        if choice == "sqlite":
            print(f"PostgreSQL at {args.database_url} does not answer: SQLite only")
    return [(label, url) for label, url in (("SQLite", None), ("PostgreSQL", args.database_url))
            if choice in ("both", label.lower().replace("postgresql", "postgres"))]


def postgres_answers(url):
    import psycopg

    try:
        psycopg.connect(url.replace("postgres://", "postgresql://", 1), connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def benchmark(args, label, env, idp, tmp):
    """One database's run; True when something failed (an error answer, a failed refresh)."""
    due = args.accounts if args.during_refresh else 0
    key = make_world(env, idp, tmp, due)
    statements = count_queries(env, key)
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    print(f"{label}: {len(statements)} SQL statements per API read, {len(writes)} of them writes: "
          f"{', '.join(statements)}", flush=True)
    with Server(tmp).start(env=env, workers=args.workers, threads=args.threads) as server:
        check_api(server.url, key)
        print(f"{label}: gunicorn --workers {args.workers} --threads {args.threads}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        if args.during_refresh:
            return during_refresh(args, label, env, idp, server.url, key)
        return compare(args, label, server.url, key)


def make_world(env, idp, tmp, due):
    """Migrated database, an application, account ACCOUNT with a valid access token (a day's) and `due`
    accounts without any; returns the key of an API client that may read ACCOUNT."""
    idp.set(latency=0, access_token_lifetime=24 * 3600)
    manage(env, "migrate", "--noinput", "-v0")
    client_id = register_application(env, idp)
    write_accounts(tmp / "accounts.csv", idp, client_id, due + 1)
    manage(env, "import_accounts", str(tmp / "accounts.csv"))
    manage(env, "refresh_tokens", ACCOUNT)
    return manage(env, "create_api_client", "bench", "--account", ACCOUNT)[3].strip()


def count_queries(env, key):
    """The SQL statements of one API read, each as its verb and tables (e.g. 'UPDATE api_apiclient')."""
    out = manage(dict(env, BENCH_API_KEY=key), "shell", "--no-imports", "-c", COUNT_QUERIES % {"path": API})[3]
    return [describe(sql) for sql in json.loads(out.strip().splitlines()[-1])]


def describe(sql):
    """'VERB table+table…': every table the statement names (joins and subqueries too), in order."""
    verb = sql.split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return verb
    tables = dict.fromkeys(re.findall(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+"?([a-z]\w*)"?', sql, re.IGNORECASE))
    lock = " FOR UPDATE" if re.search(r"\bFOR UPDATE\b", sql) else ""
    return f"{verb} {'+'.join(tables)}{lock}".strip()


class Server(WebServer):
    """gunicorn from deploy/oauthmail-web.service (tests/gunicorn.py) with the benchmark's worker count,
    no worker restarts, and bench/_settings.py; stopped on leaving the `with` block."""

    def start(self, *, env, workers, threads):
        port = free_port()
        argv = unit_command(WEB_UNIT, port=port)
        for option, value in (("--workers", workers), ("--threads", threads), ("--max-requests", 0)):
            argv[argv.index(option) + 1] = str(value)
        env = {**env, **unit_environment(WEB_UNIT, self.root / "run"), "DJANGO_SETTINGS_MODULE": "bench._settings"}
        self.url, self.log_path = f"http://127.0.0.1:{port}", self.root / "gunicorn.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, cwd=unit_directory(WEB_UNIT), env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        self._wait_until_it_answers(env)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def check_api(url, key):
    """The API must answer 200 with an access token, and the bare view 200, before anything is measured."""
    api = requests.get(url + API, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    answer = api.json() if api.headers.get("Content-Type", "").startswith("application/json") else {}
    if api.status_code != 200 or "access_token" not in answer:
        sys.exit(f"the token API answered {api.status_code}, not 200 with an access token: {api.text[:500]}")
    bare = requests.get(url + BARE, timeout=30)
    if bare.status_code != 200:
        sys.exit(f"the bare view answered {bare.status_code}: {bare.text[:500]}")


def measure(args, url, connections, key=None):
    """A warm-up, then the measurement; the warm-up's errors are added to the measurement's."""
    warmup = _wrk.run(url, connections=connections, seconds=args.warmup, key=key)
    figures = _wrk.run(url, connections=connections, seconds=args.seconds, key=key)
    figures["errors"] += warmup["errors"]
    figures["load"] = os.getloadavg()[0]
    return figures


def compare(args, label, url, key):
    rows = []
    for connections in args.connections:
        bare_runs, api_runs = [], []
        for round_number in range(1, args.rounds + 1):
            bare_runs.append(measure(args, url + BARE, connections))
            api_runs.append(measure(args, url + API, connections, key))
            bare, api = bare_runs[-1], api_runs[-1]
            print(f"  {connections:>2} connections, round {round_number}: bare {bare['rate']:7.1f} req/s "
                  f"(p50 {bare['p50']:.1f}, p99 {bare['p99']:.1f} ms), API {api['rate']:7.1f} req/s "
                  f"(p50 {api['p50']:.1f}, p99 {api['p99']:.1f} ms): {api['rate'] / bare['rate']:.1%}; "
                  f"errors {bare['errors']} + {api['errors']}{statuses(bare, api)}; load {api['load']:.1f}",
                  flush=True)
        api = median(api_runs)
        api["share"] = statistics.median(a["rate"] / b["rate"] for a, b in zip(api_runs, bare_runs, strict=True))
        rows.append((connections, median(bare_runs), api))
    print(f"{label}, medians of {args.rounds} rounds of {args.seconds:g} s (p50/p99 in ms):")
    print("| connections | bare req/s | API req/s | API/bare | API/bare in a round | API p50 | API p99 | bare p99 "
          "| errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for connections, bare, api in rows:
        print(f"| {connections} | {bare['rate']:,.0f} | {api['rate']:,.0f} | {api['rate'] / bare['rate']:.1%} | "
              f"{api['share']:.1%} | {api['p50']:.1f} | {api['p99']:.1f} | {bare['p99']:.1f} | "
              f"{bare['errors'] + api['errors']} |")
    shares = ", ".join(f"{api['share']:.0%} at {n}" for n, _bare, api in rows)
    verdict("the API at 50 % of the bare view's req/s or more (median of the rounds' ratios)",
            all(api["share"] >= API_SHARE for _n, _bare, api in rows), shares)
    at_8 = [api for n, _bare, api in rows if n == 8]
    if at_8:
        verdict("API p99 under 20 ms at 8 connections", at_8[0]["p99"] < P99_AT_8, f"{at_8[0]['p99']:.1f} ms")
    errors = sum(b["errors"] + a["errors"] for _n, b, a in rows)
    verdict("every answer a 2xx, no socket error", errors == 0, f"{errors} errors")
    return errors > 0


def median(runs):
    """The median of each figure over the rounds; errors are added up."""
    return {"rate": statistics.median(r["rate"] for r in runs), "p50": statistics.median(r["p50"] for r in runs),
            "p99": statistics.median(r["p99"] for r in runs), "errors": sum(r["errors"] for r in runs)}


def statuses(*runs):
    other = {s: c for run in runs for s, c in run["statuses"].items() if not 200 <= s < 300}
    return f" (statuses {other})" if other else ""


def verdict(target, met, figures):
    print(f"  target, {target}: {'met' if met else 'NOT met'} ({figures})")


def during_refresh(args, label, env, idp, url, key):
    quiet = measure(args, url + API, 8, key)
    print(f"  API at 8 connections, nothing else running: {quiet['rate']:.1f} req/s, p50 {quiet['p50']:.1f} ms, "
          f"p99 {quiet['p99']:.1f} ms, {quiet['errors']} errors{statuses(quiet)}", flush=True)
    idp.set(latency=args.latency)
    before = idp.stats()
    load = _wrk.start(url + API, connections=8, seconds=24 * 3600, key=key)
    try:
        time.sleep(1)
        refresh = Run(env, "refresh_tokens", "--workers", str(args.refresh_workers), "--json")
        try:
            wall, _memory, cpu, out = refresh.wait()
            counts = json.loads(out)["summary"]
        except SystemExit as failure:  # refresh_tokens failed: report the API's figures all the same
            print(f"  {failure}")
            wall, cpu, counts = time.monotonic() - refresh.started, 0, {}
        _wrk.stop(load)
    finally:
        if load.poll() is None:
            _wrk.stop(load)
    api = _wrk.result(load)
    stats = idp.stats()
    sent, reused = stats["token_requests"] - before["token_requests"], stats["refresh_token_reuse"]
    refreshed, refresh_failed = counts.get("refreshed", 0), counts.get("failed", 0)
    print(f"  refresh_tokens --workers {args.refresh_workers}, {args.accounts} due accounts, provider latency "
          f"{args.latency * 1000:.0f} ms: {wall:.1f} s wall, {cpu:.1f} s CPU; {refreshed} refreshed, "
          f"{refresh_failed} failed, {counts.get('skipped', 0)} skipped; the provider got {sent} token requests, "
          f"{reused} refresh tokens reused")
    print(f"  API at 8 connections meanwhile ({api['seconds']:.1f} s, from a second before the refresh to its "
          f"end): {api['rate']:.1f} req/s, p50 {api['p50']:.1f} ms, p90 {api['p90']:.1f} ms, p99 {api['p99']:.1f} ms, "
          f"max {api['max']:.0f} ms, {api['errors']} errors{statuses(api)}; load {os.getloadavg()[0]:.1f}")
    verdict("API p99 under 200 ms during the refresh", api["p99"] < P99_DURING_REFRESH, f"{api['p99']:.1f} ms")
    ok = (api["errors"] == quiet["errors"] == 0 and refreshed == args.accounts == sent
          and not refresh_failed and not reused)
    verdict("nothing fails", ok, f"{api['errors'] + quiet['errors']} API errors, {refreshed} of {args.accounts} "
                                 f"refreshed, {refresh_failed} failed, {reused} refresh tokens reused")
    return not ok


if __name__ == "__main__":
    main()
