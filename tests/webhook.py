"""A webhook receiver for the alert tests: a real HTTPS server on 127.0.0.1 with a certificate from a
`trustme` CA (the test identity provider's, which the tests trust, unless told otherwise). It keeps
every request and answers with the statuses queued in `answers` (then 200)."""
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with receiver.lock:
            receiver.requests.append(Received(self.path, dict(self.headers), body))
            status = receiver.answers.pop(0) if receiver.answers else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status < 300 else b"not now")

    def log_message(self, *args):
        pass


class WebhookReceiver:
    def __init__(self, ca):
        self.ca = ca
        self.requests, self.answers, self.lock = [], [], threading.Lock()

    def start(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.receiver = self
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hooks/oauthmail"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
