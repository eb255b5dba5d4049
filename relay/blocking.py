"""The relay's blocking work (the Django ORM, `token_get`) runs in two bounded thread pools, so the
event loop never waits on a database or an identity provider.

Two pools, so that slow token work (a refresh retried against a slow provider, a claim another
process holds) can never use up the threads that check passwords and write events. Each worker
thread keeps its database connection between jobs; one that an error has left unusable is closed
and the next job opens a new one.
"""
import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import connections


def _run(function, kwargs):
    try:
        return function(**kwargs)
    finally:
        for connection in connections.all(initialized_only=True):
            if connection.errors_occurred:
                connection.close_if_unusable_or_obsolete()


class Blocking:
    def __init__(self, *, workers, token_workers):
        self._pools = {
            "db": ThreadPoolExecutor(workers, thread_name_prefix="relay-db"),
            "token": ThreadPoolExecutor(token_workers, thread_name_prefix="relay-token"),
        }

    async def run(self, function, /, **kwargs):
        """`function(**kwargs)` in a database worker thread."""
        return await self._call("db", function, kwargs)

    async def run_token(self, function, /, **kwargs):
        """`function(**kwargs)` in a token worker thread."""
        return await self._call("token", function, kwargs)

    async def _call(self, pool, function, kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pools[pool], functools.partial(_run, function, kwargs))

    def shutdown(self, timeout=10):
        """Close each worker thread's database connection (a PostgreSQL server would keep them), then stop."""
        for pool in self._pools.values():
            threads = len(pool._threads)  # all idle now: each takes one of these jobs and waits for the rest
            if threads:
                barrier = threading.Barrier(threads, timeout=timeout)
                for future in [pool.submit(_close_connections, barrier) for _ in range(threads)]:
                    future.result()
            pool.shutdown()


def _close_connections(barrier):
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    connections.close_all()
