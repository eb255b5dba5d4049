"""Deadlines for whole network dialogues: an answer that trickles in must not hold anyone for long.

A socket timeout bounds each read, not the dialogue: a server that sends one byte every few seconds
never trips it. A `Deadline` bounds the whole dialogue (connect, TLS handshake, every read and write):
when it passes, a watchdog thread shuts down every socket the deadline watches, so that whatever was
blocked on them returns at once with an error. Use it as a context manager around the dialogue::

    with Deadline(seconds) as deadline:
        client = IMAP4_SSL(host, port, ssl_context=context, timeout=deadline.remaining())
        ...                                   # every step, until the block ends
    # raises whatever the cut-off socket raised; `deadline.expired` says the deadline was the cause

Deadlines nest, per thread: a socket is watched by every deadline the thread is inside of (an HTTP
request's own, and its caller's, such as the lease of an account's claim), and `remaining()` is the
time left before the first of them. Sockets are watched by `watch()`: the mail clients below do it for
the sockets they open, and providers/http.py for HTTP. Thread-safe; one watchdog thread per process.

DNS look-ups (getaddrinfo) cannot be cut off; they are bounded by the system resolver's own timeouts.
"""
import heapq
import imaplib
import itertools
import math
import os
import poplib
import smtplib
import socket
import threading
import time

_local = threading.local()  # .active: the deadlines this thread is inside of, innermost last


class DeadlineExceeded(TimeoutError):
    """A dialogue did not finish before its deadline (or was cancelled: `cancelled`)."""

    def __init__(self, message, *, seconds=None, cancelled=False):
        super().__init__(message)
        self.seconds, self.cancelled = seconds, cancelled


class Deadline:
    """The dialogue inside the `with` block must end within `seconds` (or by `until`, a time.monotonic()
    value); its watched sockets are shut down when it does not. Also bounded by any enclosing deadline."""

    def __init__(self, seconds=None, *, until=None):
        ends = [value for value in (until, None if seconds is None else time.monotonic() + seconds)
                if value is not None]
        self.ends = min(ends) if ends else math.inf
        self.cancelled = False
        self._fired = self._done = False
        self._fds = []  # duplicates of the watched sockets' descriptors
        self._lock = threading.Lock()

    def __enter__(self):
        _active().append(self)
        if self.ends < math.inf:
            _watchdog.add(self)
        return self

    def __exit__(self, *exc_info):
        _active().remove(self)
        _watchdog.discard(self)
        with self._lock:
            self._done = True
            fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    @property
    def expired(self):
        return self._fired or time.monotonic() >= self.ends

    def remaining(self):
        """Seconds left before this deadline or an enclosing one (0 when passed)."""
        return remaining()

    def watch(self, sock):
        """Shut `sock` down when this deadline passes (at once if it has). Works on plain and TLS sockets:
        it keeps a duplicate of the descriptor, so the socket may be wrapped or replaced meanwhile."""
        try:
            fd = os.dup(sock.fileno())
        except OSError:  # already closed: nothing to cut off
            return
        with self._lock:
            if self._done:
                os.close(fd)
                return
            self._fds.append(fd)
            if self._fired:
                _shutdown(fd)

    def fire(self, *, cancelled=False):
        """Cut the dialogue off now: its deadline passed, or (`cancelled`) the process is stopping."""
        with self._lock:
            if self._done or self._fired:
                return
            self._fired, self.cancelled = True, cancelled
            for fd in self._fds:
                _shutdown(fd)


def _active():
    if not hasattr(_local, "active"):
        _local.active = []
    return _local.active


def remaining():
    """Seconds left before the first deadline this thread is inside of: math.inf when none, 0 when passed."""
    ends = min((deadline.ends for deadline in _active()), default=math.inf)
    if any(deadline.expired for deadline in _active()):
        return 0.0
    return max(0.0, ends - time.monotonic())


def expired():
    """Whether a deadline this thread is inside of has passed (or was cancelled)."""
    return any(deadline.expired for deadline in _active())


def cancelled():
    return any(deadline.cancelled for deadline in _active())


def watch(sock):
    """Watch `sock` with every deadline this thread is inside of."""
    for deadline in _active():
        deadline.watch(sock)


def cancel_all():
    """Cut off every dialogue of the process now (a second SIGTERM: stop waiting for answers)."""
    _watchdog.cancel_all()


def _shutdown(fd):
    """Shut the socket down for both directions: a thread blocked on it wakes up at once."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # not connected (any more)
        pass
    finally:
        sock.detach()  # the descriptor stays ours, closed by the deadline


class _Watchdog:
    """One thread per process firing deadlines as they pass, earliest first."""

    def __init__(self):
        self._wake = threading.Condition()
        self._queue = []  # (ends, n, deadline); deadlines that ended early are dropped when met
        self._live = set()
        self._count = itertools.count()
        self._thread, self._pid = None, None

    def add(self, deadline):
        with self._wake:
            self._live.add(deadline)
            heapq.heappush(self._queue, (deadline.ends, next(self._count), deadline))
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()  # a forked child has no watchdog thread yet
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog", daemon=True)
                self._thread.start()
            if self._queue[0][2] is deadline:
                self._wake.notify()

    def discard(self, deadline):
        with self._wake:
            self._live.discard(deadline)
            if len(self._queue) > 2 * len(self._live) + 64:  # mostly deadlines whose dialogue ended early
                self._queue = [entry for entry in self._queue if entry[2] in self._live]
                heapq.heapify(self._queue)

    def cancel_all(self):
        with self._wake:
            live = list(self._live)
        for deadline in live:
            deadline.fire(cancelled=True)

    def _run(self):
        while True:
            with self._wake:
                while self._queue and self._queue[0][2] not in self._live:
                    heapq.heappop(self._queue)
                if not self._queue:
                    self._wake.wait()
                    continue
                wait = self._queue[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                deadline = heapq.heappop(self._queue)[2]
                self._live.discard(deadline)
            deadline.fire()


_watchdog = _Watchdog()


# --- mail clients whose sockets are watched -------------------------------------------------------
# imaplib, poplib and smtplib with one change: the TCP connection they open is watched by every
# deadline the calling thread is inside of, from before the greeting and the TLS handshake. Use them
# as the standard classes, inside a `with Deadline(...)` block.


def connect(host, port, timeout):
    """socket.create_connection(), then watched (see watch())."""
    sock = socket.create_connection((host or None, port), timeout)
    watch(sock)
    return sock


class IMAP4(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return connect(self.host, self.port, timeout)


class IMAP4_SSL(imaplib.IMAP4_SSL):  # noqa: N801 (the standard library's name)
    def _create_socket(self, timeout):
        return self.ssl_context.wrap_socket(connect(self.host, self.port, timeout), server_hostname=self.host)


class POP3(poplib.POP3):
    def _create_socket(self, timeout):
        return connect(self.host, self.port, timeout)


class POP3_SSL(poplib.POP3_SSL):  # noqa: N801
    def _create_socket(self, timeout):
        return self.context.wrap_socket(connect(self.host, self.port, timeout), server_hostname=self.host)


class SMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return connect(host, port, timeout)


class SMTP_SSL(smtplib.SMTP_SSL):  # noqa: N801
    def _get_socket(self, host, port, timeout):
        return self.context.wrap_socket(connect(host, port, timeout), server_hostname=self._host)
