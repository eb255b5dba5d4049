"""oauthmail served as in production: the command lines of the systemd units in deploy/, run here.

``unit_command(unit)`` is a unit's ``ExecStart=`` with only what differs on a test machine replaced:
``/opt/oauthmail`` (the checkout and its venv) and the web server's port. The ``web_server`` fixture
starts gunicorn from it (``web_server.start(env=..., tls=True)``), waits until it answers, and stops it.
The environment stands for the unit's ``EnvironmentFile``: the production settings (oauthmail.settings),
this test's database (``shared_db``) and keys.
"""
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOY = BASE_DIR / "deploy"
WEB_UNIT = DEPLOY / "oauthmail-web.service"
REFRESH_UNIT = DEPLOY / "oauthmail-refresh.service"
INSTALL_DIR = "/opt/oauthmail"
UNIT_BIND = "127.0.0.1:8000"
STARTUP_TIMEOUT = 30


def unit_setting(unit, name):
    """The value of ``name=`` in a unit file (the first one), continuation lines joined as systemd does."""
    for line in Path(unit).read_text().replace("\\\n", " ").splitlines():
        if line.startswith(f"{name}="):
            return line.removeprefix(f"{name}=")
    raise AssertionError(f"{unit} has no {name}=")


def unit_command(unit, *, port=None):
    """The unit's ExecStart as an argv for this machine: the venv's programs, this checkout, ``port``."""
    argv = shlex.split(unit_setting(unit, "ExecStart"))
    venv_bin = f"{INSTALL_DIR}/.venv/bin/"
    assert argv[0].startswith(venv_bin), argv[0]
    argv[0] = str(Path(sys.executable).parent / argv[0].removeprefix(venv_bin))
    argv = [arg.replace(INSTALL_DIR, str(BASE_DIR)) for arg in argv]
    if port is not None:
        assert UNIT_BIND in argv, f"{unit} does not bind {UNIT_BIND}"
        argv[argv.index(UNIT_BIND)] = f"127.0.0.1:{port}"
    return argv


def unit_directory(unit):
    """The unit's WorkingDirectory on this machine: this checkout."""
    return unit_setting(unit, "WorkingDirectory").replace(INSTALL_DIR, str(BASE_DIR))


def unit_environment(unit, run_dir):
    """The unit's ``Environment=`` settings, its ``RuntimeDirectory=`` (/run/NAME) made under ``run_dir``."""
    text = Path(unit).read_text()
    runtime = {line.removeprefix("RuntimeDirectory=") for line in text.splitlines()
               if line.startswith("RuntimeDirectory=")}
    environment = {}
    for line in text.splitlines():
        if line.startswith("Environment="):
            for assignment in shlex.split(line.removeprefix("Environment=")):
                name, _, value = assignment.partition("=")
                for directory in runtime:
                    (Path(run_dir) / directory).mkdir(parents=True, exist_ok=True)
                    value = value.replace(f"/run/{directory}", str(Path(run_dir) / directory))
                environment[name] = value
    return environment


def production_env(shared_db, **extra):
    """What the unit's EnvironmentFile gives: production settings, the test's database and keys."""
    return shared_db.env(DJANGO_SETTINGS_MODULE="oauthmail.settings", **extra)


class WebServer:
    def __init__(self, root):
        self.root = Path(root)
        self.process = self.url = self.log_path = None

    def start(self, *, env, tls_cert=None):
        """gunicorn from the web unit on a free port; ``tls_cert`` (a trustme LeafCert) serves HTTPS."""
        from tests.dovecot import free_port

        port = free_port()
        argv = unit_command(WEB_UNIT, port=port)
        env = {**env, **unit_environment(WEB_UNIT, self.root / "run")}
        if tls_cert is not None:
            cert, key = self.root / "server.pem", self.root / "server.key"
            tls_cert.cert_chain_pems[0].write_to_path(str(cert))
            tls_cert.private_key_pem.write_to_path(str(key))
            argv += ["--certfile", str(cert), "--keyfile", str(key)]
        self.url = f"{'https' if tls_cert else 'http'}://127.0.0.1:{port}"
        self.log_path = self.root / "gunicorn.log"
        with open(self.log_path, "ab") as log:
            # A session of its own, so that stop() can end the workers too, whatever the master does.
            self.process = subprocess.Popen(argv, cwd=unit_directory(WEB_UNIT), env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        self._wait_until_it_answers(env)
        return self

    def _wait_until_it_answers(self, env):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.process.returncode}:\n{self.log()}")
            try:
                requests.get(f"{self.url}/healthz", timeout=2, verify=env.get("REQUESTS_CA_BUNDLE", True))
                return
            except (requests.ConnectionError, requests.Timeout):  # not listening, or no worker yet
                if time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not answer in time:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self):
        """SIGQUIT: at once (systemd's SIGTERM waits for idle keep-alive connections, which no test needs);
        then every process of the server's session is killed: a worker still booting may miss the signal
        (systemd's KillMode=mixed does the same)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def web_server(tmp_path):
    """``web_server.start(env=production_env(shared_db), tls_cert=None)``: gunicorn as the web unit runs it;
    ``.url``, ``.log()``; stopped after the test."""
    server = WebServer(tmp_path)
    yield server
    server.stop()

