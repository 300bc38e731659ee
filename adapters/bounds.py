"""What bounds the work done for one request of the server: when it must be done by (its
deadline), and whether its client has left. The HTTP layer sets both for each request; the
stores read them wherever the request's work reaches them (a worker thread included, since
the request's context goes with it), and stop that work when either says so."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# The monotonic time by which the current request's work must be done (None: no bound).
DEADLINE: ContextVar[float | None] = ContextVar("deadline", default=None)
# Set when the current request is abandoned: its client went away.
ABANDONED: ContextVar[threading.Event | None] = ContextVar("abandoned", default=None)
NEVER = threading.Event()  # never set: what work outside any request waits on
WATCH_STEP = 0.1  # seconds between a watcher's looks at its request
GRACE = 1.0  # seconds the store gets past the deadline to stop by itself, and to a cancel


def abandoned() -> threading.Event:
    return ABANDONED.get() or NEVER


def remaining() -> float | None:
    """Seconds left to the current request (None: unbounded)."""
    deadline = DEADLINE.get()
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


@dataclass(eq=False)
class _Watch:
    connection: Any
    deadline: float
    left: threading.Event
    cancelled_at: float | None = None


class Watchdog:
    """One thread watching every connection that serves a request (a thread for each use
    cost a request's connection a start and a join, which under load waited for the GIL:
    a fifth of the requests a server answered)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None

    def watch(self, watch: _Watch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="request-bounds", daemon=True
                )
                self._thread.start()

    def release(self, watch: _Watch) -> None:
        """Once it returns, nothing reaches the connection (it can go back to its pool)."""
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_STEP)
            with self._lock:
                now = time.monotonic()
                for watch in list(self._watches):
                    if watch.cancelled_at is not None:
                        if now > watch.cancelled_at + GRACE:  # nothing answered the cancel
                            self._watches.discard(watch)
                            with contextlib.suppress(Exception):  # (closed meanwhile: done)
                                hang_up(watch.connection.fileno())
                    elif watch.left.is_set() or now > watch.deadline + GRACE:
                        with contextlib.suppress(Exception):
                            watch.connection.cancel_safe(timeout=GRACE)
                        watch.cancelled_at = time.monotonic()


WATCHDOG = Watchdog()


@contextmanager
def watched(connection: Any) -> Iterator[None]:
    """While a PostgreSQL connection serves the current request: once the request is past its
    deadline (and the grace the server gets to stop by itself) or abandoned, the statement in
    progress is cancelled, and if nothing answers the cancel (the server or the network holds
    the connection), the connection is hung up under it, so the wait ends in an error."""
    deadline = DEADLINE.get()
    if deadline is None:
        yield
        return
    watch = _Watch(connection, deadline, abandoned())
    WATCHDOG.watch(watch)
    try:
        yield
    finally:
        WATCHDOG.release(watch)


def hang_up(fileno: int) -> None:
    """Shuts a connection's socket down under whoever waits on it, which then fails (the pool
    replaces the connection)."""
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fileno)) as link:
        link.shutdown(socket.SHUT_RDWR)
