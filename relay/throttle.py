"""Repeated failed logins from one address are answered ever more slowly.

Only failures wait: a device that logs in correctly is answered at once, even behind the same NAT
as a misconfigured one. The delay doubles with each failure from the address in the last
`window` seconds (0.5 s, 1 s, 2 s ... up to `cap`). Memory is bounded: at most `max_addresses`
addresses are remembered, the least recently failing forgotten first.
"""
import time
from collections import OrderedDict, deque


class FailureThrottle:
    def __init__(self, *, base=0.5, cap=30.0, window=900.0, max_addresses=10_000):
        self.base, self.cap, self.window, self.max_addresses = base, cap, window, max_addresses
        self._failures = OrderedDict()  # address -> deque of monotonic times

    def failed(self, address):
        """Record a failure from `address`; returns how many seconds to wait before answering it."""
        now = time.monotonic()
        times = self._failures.pop(address, None) or deque()
        while times and times[0] < now - self.window:
            times.popleft()
        times.append(now)
        self._failures[address] = times
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return min(self.cap, self.base * 2 ** (len(times) - 1))
