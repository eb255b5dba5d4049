"""Run the test identity provider as its own process (for benchmarks and multi-process tests).

    python -m tests.idp --port 0 --state-dir DIR

writes the CA bundle to DIR/ca.pem, prints ``READY https://127.0.0.1:PORT`` and serves
until SIGTERM or SIGINT. Drive it with ``RemoteIdentityProvider(url, "DIR/ca.pem")``.
"""
import argparse
import signal
import threading
from pathlib import Path

from .server import TestIdentityProvider


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.idp", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True, help="where ca.pem is written")
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    idp = TestIdentityProvider(args.host, args.port, ca_bundle_path=args.state_dir / "ca.pem").start()
    print(f"READY {idp.url}", flush=True)
    try:
        while not stopping.wait(0.1):
            pass
    finally:
        idp.stop()


if __name__ == "__main__":
    main()
