"""Benchmark the SMTP relay: N messages of S KB from C concurrent clients through `manage.py smtp_relay`,
against the same clients sending straight to the same upstream with XOAUTH2.

    .venv/bin/python bench/relay.py [--messages 1000] [--clients 20] [--accounts 20] [--size-kb 100] [--rounds 3]

Every piece is its own process, as in production: the test identity provider (`python -m tests.idp`),
a real Dovecot whose submission service checks each XOAUTH2 token at that provider and relays to a
counting sink (bench/_sink.py), and `manage.py smtp_relay` with production settings on a fresh SQLite
database. The clients are one asyncio process (aiosmtplib), each message its own SMTP session as a
printer's: connect, STARTTLS, log in, MAIL, RCPT, DATA, QUIT.

- direct: log in to Dovecot with AUTH XOAUTH2 and the account's token (from `token_get`);
- relay: log in to the relay with AUTH PLAIN and a relay client's password; the relay forwards.

A message's latency runs from connect to the server's answer to its end of data. Each round runs
direct then relay; the figures of every round are printed, to show how noisy the machine is. The
relay's peak memory is its VmHWM. C clients use A accounts (client i sends as account i mod A): with
A < C the relay's per-account limit (3 at once, Exchange Online's) makes clients wait their turn.
"""
import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

import aiosmtplib  # noqa: E402
import trustme  # noqa: E402
from refresh import cpu_seconds, environment, start_identity_provider, write_accounts  # noqa: E402

from tests.dovecot import OAUTH2_CONFIG, Dovecot, free_port  # noqa: E402

SETUP = """
import json
from accounts.models import Account
from accounts.services import token_get
from relay.services import relay_client_create
accounts = list(Account.objects.order_by("identifier"))
Account.objects.update(smtp_host="127.0.0.1", smtp_port={port}, smtp_security="starttls")
tokens = {{a.email: token_get(account=Account.objects.get(pk=a.pk), actor="bench")[0] for a in accounts}}
clients = []
for n in range({clients}):
    account = accounts[n % len(accounts)]
    client, password = relay_client_create(name=f"printer {{n}}", account=account, actor="bench")
    clients.append({{"username": client.username, "password": password, "email": account.email}})
print(json.dumps({{"tokens": tokens, "clients": clients}}))
"""


class BenchDovecot(Dovecot):
    """The test Dovecot, with its certificate from the benchmark's CA and the provider's CA for introspection."""

    def __init__(self, *, idp_ca_bundle, **kwargs):
        super().__init__(**kwargs)
        self.idp_ca_bundle = idp_ca_bundle

    def _write_config(self):
        super()._write_config()
        (self.root / "idp-ca.pem").write_bytes(Path(self.idp_ca_bundle).read_bytes())
        (self.root / "oauth2.conf.ext").write_text(
            OAUTH2_CONFIG.format(idp_url=self.idp_url, ca_file=self.root / "idp-ca.pem")
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, metavar="N")
    parser.add_argument("--clients", type=int, default=20, metavar="C")
    parser.add_argument("--accounts", type=int, default=None, metavar="A", help="default: one per client")
    parser.add_argument("--size-kb", type=int, default=100, metavar="S")
    parser.add_argument("--rounds", type=int, default=3, metavar="R")
    parser.add_argument("--upstream-idle", type=float, default=None, metavar="SECONDS",
                        help="OAUTHMAIL_RELAY_UPSTREAM_IDLE; 0: a new upstream login for every message")
    parser.add_argument("--profile", metavar="FILE", help="run the relay under cProfile, its statistics to FILE")
    args = parser.parse_args(argv)
    args.accounts = args.accounts or args.clients
    with tempfile.TemporaryDirectory(prefix="oauthmail-bench-relay-") as tmp:
        with Stack(Path(tmp), args) as stack:
            run_benchmark(args, stack)


class Stack:
    """The provider, the sink, Dovecot, a database with accounts and relay clients, and the relay."""

    def __init__(self, tmp, args):
        self.tmp, self.args, self.processes, self.dovecot, self.relay_log = tmp, args, [], None, None

    def __enter__(self):
        tmp = self.tmp
        idp_process, self.idp = start_identity_provider(tmp / "idp")
        self.processes.append(idp_process)
        self.idp_pid = idp_process.pid
        ca = trustme.CA()
        self.bundle = tmp / "bundle.pem"  # system CAs + the provider's CA + the benchmark's CA
        self.bundle.write_bytes(Path(self.idp.ca_bundle).read_bytes() + ca.cert_pem.bytes())
        certificate = ca.issue_cert("127.0.0.1", "localhost")
        certificate.private_key_pem.write_to_path(str(tmp / "relay.key"))
        certificate.cert_chain_pems[0].write_to_path(str(tmp / "relay.pem"))
        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, str(BASE_DIR / "bench" / "_sink.py"), str(sink_port)],
                                stdout=subprocess.PIPE, text=True)
        self.processes.append(sink)
        self.sink = sink
        assert sink.stdout.readline().strip() == "READY"
        self.dovecot = BenchDovecot(idp_url=self.idp.url, ca=ca, relay_port=sink_port,
                                    idp_ca_bundle=self.idp.ca_bundle).start()
        self.env = dict(environment(f"sqlite:///{tmp / 'bench.sqlite3'}", self.idp), SSL_CERT_FILE=str(self.bundle),
                        REQUESTS_CA_BUNDLE=str(self.bundle))
        self._manage("migrate", "--noinput", "-v0")
        client_id = str(uuid.uuid4())
        self.idp.add_client(client_id)
        self._manage("shell", "--no-imports", "-c",
                     "from providers.models import Application; Application.objects.create(identifier='bench', "
                     f"name='Bench', provider='microsoft', tenant='contoso.onmicrosoft.com', client_id='{client_id}', "
                     f"authority_url='{self.idp.url}')")
        write_accounts(tmp / "accounts.csv", self.idp, client_id, self.args.accounts)
        self._manage("import_accounts", str(tmp / "accounts.csv"))
        setup = SETUP.format(port=self.dovecot.submission_port, clients=self.args.clients)
        self.world = json.loads(self._manage("shell", "--no-imports", "-c", setup).strip().splitlines()[-1])
        self.relay_port = free_port()
        self.relay_log = open(tmp / "relay.log", "w")  # one line per message  # noqa: SIM115
        self.relay = subprocess.Popen(
            [sys.executable, *(["-m", "cProfile", "-o", self.args.profile] if self.args.profile else []),
             "manage.py", "smtp_relay"], cwd=BASE_DIR, stdout=subprocess.PIPE, text=True,
            stderr=self.relay_log,
            env=dict(self.env, OAUTHMAIL_RELAY_LISTEN=f"127.0.0.1:{self.relay_port}", OAUTHMAIL_RELAY_TLS_LISTEN="",
                     OAUTHMAIL_RELAY_TLS_CERT=str(tmp / "relay.pem"), OAUTHMAIL_RELAY_TLS_KEY=str(tmp / "relay.key"),
                     OAUTHMAIL_RELAY_HOSTNAME="relay.bench.test",
                     **({} if self.args.upstream_idle is None else
                        {"OAUTHMAIL_RELAY_UPSTREAM_IDLE": str(self.args.upstream_idle)})),
        )
        self.processes.append(self.relay)
        assert "listening" in self.relay.stdout.readline()
        return self

    def _manage(self, *args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def delivered(self):
        self.sink.send_signal(signal.SIGUSR1)
        return int(self.sink.stdout.readline().split()[1])

    def relay_memory(self):
        """(current, peak) resident memory of the relay process, MiB."""
        status = dict(line.split(":", 1) for line in Path(f"/proc/{self.relay.pid}/status").read_text().splitlines())
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024

    def __exit__(self, *exc):
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.dovecot:
            self.dovecot.stop()
        if self.relay_log:
            self.relay_log.close()


def payload(email, size_kb):
    line = b"QmVuY2htYXJrIHBheWxvYWQgZm9yIHRoZSBvYXV0aG1haWwgU01UUCByZWxheS4gUGFnZSAxIG9mIDEu"[:76] + b"\r\n"
    head = (f"From: Printer <{email}>\r\nTo: customer@example.com\r\nSubject: Scan\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    return head + line * (size_kb * 1024 // len(line))


async def session(port, context, sender, login, content):
    """One device's session; returns the seconds from connect to the answer to its end of data."""
    started = time.perf_counter()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=True, tls_context=context,
                           local_hostname="printer.bench.test", timeout=120)
    await smtp.connect()
    await login(smtp)
    await smtp.sendmail(sender, ["customer@example.com"], content)
    took = time.perf_counter() - started
    await smtp.quit()
    return took


async def load(port, context, messages, logins, size_kb):
    """`messages` sessions from len(logins) clients at once; returns (seconds, latencies, failures)."""
    queue = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)
    latencies, failures = [], []

    async def client(sender, login):
        content = payload(sender, size_kb)
        while not queue.empty():
            queue.get_nowait()
            try:
                latencies.append(await session(port, context, sender, login, content))
            except (aiosmtplib.SMTPException, OSError) as error:
                failures.append(error)

    started = time.perf_counter()
    await asyncio.gather(*(client(sender, login) for sender, login in logins))
    return time.perf_counter() - started, latencies, failures


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_benchmark(args, stack):
    import ssl

    context = ssl.create_default_context(cafile=str(stack.bundle))
    tokens = stack.world["tokens"]
    direct = [(c["email"], lambda smtp, c=c: smtp.auth_xoauth2(c["email"], tokens[c["email"]]))
              for c in stack.world["clients"]]
    relayed = [(c["email"], lambda smtp, c=c: smtp.login(c["username"], c["password"]))
               for c in stack.world["clients"]]
    paths = {"direct": (stack.dovecot.submission_port, direct), "relay": (stack.relay_port, relayed)}
    reuse = "default" if args.upstream_idle is None else f"{args.upstream_idle:g} s"
    print(f"{args.messages} messages of {args.size_kb} KB, {args.clients} clients at once, {args.accounts} accounts, "
          f"upstream idle {reuse}, {os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for port, logins in paths.values():  # warm up: connections, tokens, code paths
        asyncio.run(load(port, context, len(logins), logins, args.size_kb))
    rows = {"direct": [], "relay": []}
    for round_number in range(1, args.rounds + 1):
        for name, (port, logins) in paths.items():
            before = stack.delivered()
            relay_cpu, idp_cpu = cpu_seconds(stack.relay.pid), cpu_seconds(stack.idp_pid)
            seconds, latencies, failures = asyncio.run(load(port, context, args.messages, logins, args.size_kb))
            delivered = stack.delivered() - before
            row = {
                "rate": len(latencies) / seconds, "p50": percentile(latencies, 0.5) * 1000,
                "p99": percentile(latencies, 0.99) * 1000, "failures": len(failures), "delivered": delivered,
                "relay_cpu": cpu_seconds(stack.relay.pid) - relay_cpu, "idp_cpu": cpu_seconds(stack.idp_pid) - idp_cpu,
                "load": os.getloadavg()[0],
            }
            rows[name].append(row)
            print(f"  round {round_number} {name:6}: {row['rate']:6.1f} msg/s, p50 {row['p50']:6.1f} ms, "
                  f"p99 {row['p99']:6.1f} ms, {delivered} delivered, {len(failures)} failed"
                  f"{f' ({failures[0]})' if failures else ''}; CPU: relay {row['relay_cpu']:.1f} s, provider "
                  f"{row['idp_cpu']:.1f} s; load {row['load']:.1f}", flush=True)
    current, peak = stack.relay_memory()
    direct_rate = statistics.median(r["rate"] for r in rows["direct"])
    relay_rate = statistics.median(r["rate"] for r in rows["relay"])
    print(f"median of {args.rounds} rounds: direct {direct_rate:.1f} msg/s, relay {relay_rate:.1f} msg/s "
          f"({relay_rate / direct_rate:.0%} of direct)")
    for key in ("p50", "p99"):
        direct_ms = statistics.median(r[key] for r in rows["direct"])
        relay_ms = statistics.median(r[key] for r in rows["relay"])
        print(f"  {key}: direct {direct_ms:.1f} ms, relay {relay_ms:.1f} ms: "
              f"the relay adds {relay_ms - direct_ms:+.1f} ms")
    relay_cpu = sum(r["relay_cpu"] for r in rows["relay"]) / (args.messages * args.rounds) * 1000
    print(f"  relay process: {relay_cpu:.1f} ms of CPU per message; memory {current:.0f} MiB now, {peak:.0f} MiB peak")


if __name__ == "__main__":
    main()
