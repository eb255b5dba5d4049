"""A slow peer for the tests: a server that answers one byte at a time, each byte well within any
read timeout, so that only a deadline on the whole dialogue ends the wait.

``SlowServer(greeting=b"* OK ...")`` drips a greeting as soon as a client connects (IMAP, POP, SMTP).
``SlowServer(answer=b"HTTP/1.1 200 ...", fast={...})`` reads HTTP requests, answers those in ``fast``
(``(method, path) -> response bytes``) at once, and drips ``answer`` for any other; with ``ca``
(a trustme CA) it speaks TLS. Each request is recorded as an ``Exchange``: what was asked, when, and
when the client went away (wall-clock times, comparable with other processes and the database).
"""
import json
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass
class Exchange:
    method: str = ""
    path: str = ""
    form: dict = field(default_factory=dict)
    opened: float = field(default_factory=time.time)
    closed: float | None = None  # when the client went away (or the answer was all sent)

    def overlaps(self, other):
        """Whether both were open at some moment."""
        end, other_end = self.closed or time.time(), other.closed or time.time()
        return self.opened < other_end and other.opened < end


def http_answer(body, status="200 OK", content_type="application/json"):
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class SlowServer:
    __test__ = False

    def __init__(self, *, ca=None, interval=0.3, greeting=None, answer=None, fast=None):
        self.interval, self.greeting, self.answer, self.fast = interval, greeting, answer, fast or {}
        self.context = None
        if ca is not None:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.context)
        self.exchanges = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()

    @property
    def url(self):
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._stopping.set()
        self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def dripped(self):
        """The exchanges that got the slow answer."""
        return [exchange for exchange in self.exchanges if (exchange.method, exchange.path) not in self.fast]

    def _accept(self):
        while not self._stopping.is_set():
            try:
                conn, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(10)
            if self.context:
                conn = self.context.wrap_socket(conn, server_side=True)
            if self.greeting is not None:
                exchange = Exchange()
                self.exchanges.append(exchange)
                self._drip(conn, self.greeting, exchange)
                return
            while (exchange := self._read_request(conn)) is not None:
                self.exchanges.append(exchange)
                fast = self.fast.get((exchange.method, exchange.path))
                if fast is None:
                    self._drip(conn, self.answer, exchange)
                    return
                conn.sendall(fast)
                exchange.closed = time.time()
        except OSError:
            pass
        finally:
            conn.close()

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _sep, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        while len(body) < int(headers.get("content-length", 0)):
            body += conn.recv(65536)
        method, path = lines[0].split()[:2]
        return Exchange(method=method, path=path.split("?")[0], form=dict(parse_qsl(body.decode())))

    def _drip(self, conn, data, exchange):
        """One byte every `interval` seconds, until all is sent or the client goes away."""
        try:
            for byte in data:
                if select.select([conn], [], [], self.interval)[0] and not conn.recv(1):
                    break  # the client closed or shut the connection down
                conn.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            exchange.closed = time.time()


def microsoft_authority(ca, *, tenant="contoso.onmicrosoft.com", interval=0.3):
    """A Microsoft-shaped authority at `server.url`: discovery is answered at once, every other
    request (token, device code) gets a dripped answer."""
    server = SlowServer(ca=ca, interval=interval)
    base = f"{server.url}/{tenant}"
    discovery = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "issuer": f"{server.url}/{tenant}/v2.0",
    }
    server.fast = {("GET", f"/{tenant}/v2.0/.well-known/openid-configuration"): http_answer(discovery)}
    server.answer = http_answer({  # a valid answer, were anyone patient enough to read it all
        "token_type": "Bearer", "expires_in": 3600, "access_token": "slow" * 100, "refresh_token": "slow-refresh",
    })
    return server


def google_authority(ca, *, interval=0.3):
    """A Google-shaped authority at `server.url`: discovery is answered at once, the token endpoint drips."""
    server = SlowServer(ca=ca, interval=interval)
    discovery = {"issuer": server.url, "token_endpoint": f"{server.url}/token",
                 "authorization_endpoint": f"{server.url}/o/oauth2/v2/auth"}
    server.fast = {("GET", "/.well-known/openid-configuration"): http_answer(discovery)}
    server.answer = http_answer({"token_type": "Bearer", "expires_in": 3600, "access_token": "slow" * 100})
    return server
