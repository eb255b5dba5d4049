"""Benchmark `manage.py refresh_tokens --workers W` over N accounts against an identity provider
that takes L seconds to answer each token request.

    .venv/bin/python bench/refresh.py [--accounts 2000] [--latency 0.05] [--workers 32] [--processes 1]
                                      [--database-url postgres://postgres@127.0.0.1:5432/postgres]

What it does, every step through oauthmail's own commands run as separate processes:
1. starts the test identity provider as its own process (`python -m tests.idp`) and checks that it
   answers W token requests at once, each delayed by L;
2. creates a fresh database (a new SQLite file; or, given --database-url, a new PostgreSQL database
   on that server, dropped at the end), migrates it, and times one `refresh_tokens` with nothing to
   do: the process start-up;
3. registers an application and imports N accounts with `import_accounts`, each with a refresh
   token the provider issued, so that all N are due;
4. times `refresh_tokens --workers W` (or P such processes side by side, W/P workers each) and
   reads each one's peak memory (ru_maxrss) and CPU time, and the provider's CPU time meanwhile;
   CPU per account is the processes' CPU time over N (their start-up included), and the wall time
   is compared with the bound 2 × max(N·L/W, N × CPU per account / cores) + start-up: twice
   whichever of the network (every worker waiting on the provider) and the CPU limits the run;
5. checks that N refreshes reached the provider and none reused a refresh token, and says how
   many requests the provider was answering at once at most;
6. counts the SQL statements of two smaller runs (S and 2S due accounts, S = --query-sample), with
   a counter added to every database connection by Django's `connection_created` signal
   (bench/_count_queries.py): the difference divided by S is the cost of one account.
The settings are production's (oauthmail/settings.py), not the test suite's.
"""
import argparse
import csv
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.idp import RemoteIdentityProvider  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000, metavar="N")
    parser.add_argument("--latency", type=float, default=0.05, metavar="SECONDS")
    parser.add_argument("--workers", type=int, default=32, metavar="W", help="in all processes together")
    parser.add_argument("--processes", type=int, default=1, metavar="P", help="refresh_tokens run side by side")
    parser.add_argument("--query-sample", type=int, default=100, metavar="S")
    parser.add_argument("--database-url", help="a PostgreSQL server to create the benchmark's database on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="oauthmail-bench-") as tmp:
        tmp = Path(tmp)
        idp_process, idp = start_identity_provider(tmp / "idp")
        try:
            with fresh_database(args.database_url, tmp) as database_url:
                run_benchmark(args, tmp, idp, idp_process.pid, environment(database_url, idp))
        finally:
            idp_process.terminate()
            idp_process.wait(timeout=10)


def start_identity_provider(state_dir):
    process = subprocess.Popen([sys.executable, "-m", "tests.idp", "--port", "0", "--state-dir", str(state_dir)],
                               cwd=BASE_DIR, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("READY "):
        process.kill()
        sys.exit(f"the test identity provider did not start: {line!r}")
    return process, RemoteIdentityProvider(line.split()[1], state_dir / "ca.pem")


class fresh_database:
    """A new SQLite file, or a new PostgreSQL database on the server of `url` (dropped on exit)."""

    def __init__(self, url, tmp):
        self.url, self.tmp, self.name = url, tmp, None

    def __enter__(self):
        if not self.url:
            return f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        self.name = f"oauthmail_bench_{uuid.uuid4().hex[:8]}"
        self._execute(f'CREATE DATABASE "{self.name}"')
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{self.name}"))

    def __exit__(self, *exc):
        if self.name:
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _execute(self, sql):
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://", 1), autocommit=True) as connection:
            connection.execute(sql)


def environment(database_url, idp):
    from cryptography.fernet import Fernet

    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="oauthmail.settings",
        OAUTHMAIL_ENV_FILE="",
        SECRET_KEY=secrets.token_urlsafe(40),
        OAUTHMAIL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=database_url,
        REQUESTS_CA_BUNDLE=idp.ca_bundle,
        SSL_CERT_FILE=idp.ca_bundle,
    )


class Run:
    """`manage.py *args` (or, counting its SQL statements, bench/_count_queries.py) as a process."""

    def __init__(self, env, *args, count_queries_to=None):
        self.args = args
        command = [sys.executable, "manage.py", *args]
        if count_queries_to:
            command = [sys.executable, str(BASE_DIR / "bench" / "_count_queries.py"), str(count_queries_to), *args]
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=self.out, stderr=self.err, text=True)

    def wait(self):
        """(seconds, peak memory in MiB, CPU seconds, output) of the finished process."""
        _pid, status, usage = os.wait4(self.process.pid, 0)  # this child's own resource usage
        seconds = time.monotonic() - self.started
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.out.seek(0)
        self.err.seek(0)
        if self.process.returncode != 0:
            sys.exit(f"manage.py {' '.join(self.args)} failed ({self.process.returncode}):\n{self.err.read()}")
        return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, self.out.read()


def manage(env, *args, **kwargs):
    return Run(env, *args, **kwargs).wait()


def cpu_seconds(pid):
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def django_shell(env, code):
    subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=BASE_DIR, env=env,
                   check=True)


def check_provider_capacity(idp, workers, latency):
    """W token requests sent at once, each on a connection opened beforehand, must all be answered
    within about one latency: returns (seconds, how many the provider was answering at once)."""
    import requests

    idp.set(latency=latency)
    before = len(idp.token_requests)
    ready = threading.Barrier(workers + 1)
    go = threading.Event()

    def one():
        with requests.Session() as session:
            session.get(f"{idp.url}/common/v2.0/.well-known/openid-configuration", verify=idp.ca_bundle, timeout=30)
            ready.wait()
            go.wait()
            session.post(f"{idp.url}/common/oauth2/v2.0/token", data={"grant_type": "refresh_token"},
                         verify=idp.ca_bundle, timeout=30)

    threads = [threading.Thread(target=one) for _ in range(workers)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.monotonic()
    go.set()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, most_at_once(idp.token_requests[before:], latency)


def register_application(env, idp):
    """A Microsoft application 'bench' registered at the provider and in oauthmail; returns its client id."""
    client_id = str(uuid.uuid4())
    idp.add_client(client_id)
    django_shell(env, "from providers.models import Application; Application.objects.create(identifier='bench', "
                      f"name='Bench', provider='microsoft', tenant='contoso.onmicrosoft.com', "
                      f"client_id='{client_id}', authority_url='{idp.url}')")
    return client_id


def write_accounts(path, idp, client_id, count):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["application", "identifier", "name", "email", "flow", "refresh_token"])
        for i in range(count):
            email = f"box{i}@contoso.com"
            writer.writerow(["bench", f"box{i:06d}", f"Mailbox {i}", email, "device_code",
                             idp.issue_refresh_token(client_id, email)])


def run_benchmark(args, tmp, idp, idp_pid, env):
    n, latency, workers, processes = args.accounts, args.latency, args.workers, args.processes
    print(f"{n} accounts, latency {latency * 1000:.0f} ms, {workers} workers in {processes} process(es), "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}, {os.cpu_count()} CPUs", flush=True)
    seconds, at_once = check_provider_capacity(idp, workers, max(latency, 0.5))
    print(f"  provider capacity: {workers} requests sent at once with {max(latency, 0.5):.1f} s latency: "
          f"answered in {seconds:.2f} s, {at_once} at once")
    manage(env, "migrate", "--noinput", "-v0")
    startup, _memory, startup_cpu, _out = manage(env, "refresh_tokens")
    client_id = register_application(env, idp)
    write_accounts(tmp / "accounts.csv", idp, client_id, n)
    imported = manage(env, "import_accounts", str(tmp / "accounts.csv"))[0]
    idp.set(latency=latency)
    before, idp_cpu = idp.stats(), cpu_seconds(idp_pid)
    started = time.monotonic()
    runs = [Run(env, "refresh_tokens", "--workers", str(max(1, workers // processes))) for _ in range(processes)]
    results = [run.wait() for run in runs]
    wall = time.monotonic() - started
    idp_cpu = cpu_seconds(idp_pid) - idp_cpu
    stats = idp.stats()
    requests = [r for r in idp.token_requests if r["grant_type"] == "refresh_token"][-n:]
    ideal = n * latency / workers
    cpu = sum(r[2] for r in results)
    per_account = cpu / n
    cpu_bound = n * per_account / os.cpu_count()
    bound = 2 * max(ideal, cpu_bound) + startup
    print(f"  start-up (refresh_tokens with nothing due): {startup:.2f} s, {startup_cpu:.2f} s CPU")
    print(f"  import_accounts of {n} rows: {imported:.2f} s")
    print(f"  refresh_tokens: {wall:.2f} s wall; ideal N·L/W = {ideal:.2f} s; {wall / (ideal + startup):.2f}× "
          "the ideal plus start-up")
    print(f"  peak memory: {max(r[1] for r in results):.0f} MiB; CPU: {cpu:.1f} s ({per_account * 1000:.2f} ms per "
          f"account: process CPU / N, start-up included), provider {idp_cpu:.1f} s "
          f"({idp_cpu / n * 1000:.1f} ms per request)")
    print(f"  bound 2 × max(N·L/W = {ideal:.2f} s, N × CPU per account / {os.cpu_count()} cores = {cpu_bound:.2f} s)"
          f" + start-up = {bound:.2f} s: wall is {wall / bound:.2f}× the bound "
          f"({'within' if wall <= bound else 'OVER'}); {'CPU' if cpu_bound > ideal else 'network'}-bound")
    print(f"  provider: {stats['token_requests'] - before['token_requests']} token requests, "
          f"{stats['refresh_token_reuse']} refresh tokens reused, at most {most_at_once(requests, latency)} at once")
    for result in results:
        print(f"  report: {result[3].strip()}")
    sample = min(args.query_sample, n // 2)
    counts = []
    for size in (sample, 2 * sample):
        django_shell(env, "from accounts.models import Account; Account.objects.filter(pk__in=list("
                          f"Account.objects.order_by('pk').values_list('pk', flat=True)[:{size}]))"
                          ".update(access_token_expires_at=None)")
        counter = tmp / f"queries-{size}"
        manage(env, "refresh_tokens", "--workers", str(workers), count_queries_to=counter)
        counts.append(int(counter.read_text()))
    print(f"  SQL statements: {counts[0]} for {sample} accounts, {counts[1]} for {2 * sample}: "
          f"{(counts[1] - counts[0]) / sample:.2f} per account")


def most_at_once(requests, latency):
    """The most requests the provider was answering at the same moment (each lasts `latency`)."""
    arrivals = sorted(r["at"] for r in requests)
    best, start = 0, 0
    for end, at in enumerate(arrivals):
        while arrivals[start] <= at - latency:
            start += 1
        best = max(best, end - start + 1)
    return best


if __name__ == "__main__":
    main()
