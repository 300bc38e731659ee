"""The runner that keeps a generation of read models up to date from the event stream.

The library's `ProjectionRunner` needs `subscribe()` (PostgreSQL only) and applies
one event per transaction. This runner polls the notification log on either store
and hands each of its projections the events after that projection's own tracking
position: a page at a time, or, for a backlog, a window of the log at once. Each
projection writes its rows with its tracking record in one transaction; a page applied
twice fails the tracking record's forward-only check and rolls back, so a crash or a
second runner never applies an event twice, nor skips one.

The runner runs beside the queries (a thread of the server, or `deplatform
projections run`), never inside them: a query asks it how far it has got, and may
wait, bounded, for a position it needs.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from eventsourcing.persistence import IntegrityError, Tracking

from domain.clock import from_micros, now
from projections.log import pages
from projections.ports import EventSource, Interrupted, Projection, ReadModels

log = structlog.get_logger(__name__)

PAGE = 500
BULK = 2 * PAGE  # a backlog longer than this is applied subject by subject, in windows
WINDOW = 1_000_000  # the most positions a window takes: one transaction (a stop rolls it back)
RETRY_FIRST, RETRY_MOST = 0.5, 10.0  # seconds: a failing runner's backoff (full jitter)


@dataclass(frozen=True)
class Progress:
    """How far the read models have applied the event stream."""

    position: int  # the last position applied
    head: int  # the last position recorded, when last looked
    following: bool  # a runner in this process keeps them up to date
    generation: int
    last_error: str | None = None
    last_error_at: datetime | None = None
    failing_since: datetime | None = None  # the runner here has failed since, and retries

    @property
    def lag(self) -> int:
        return max(self.head - self.position, 0)


class Runner:
    """Keeps one generation of read models up to date: each of its projections from its own
    tracking position."""

    def __init__(
        self,
        events: EventSource,
        view: ReadModels,
        projections: Sequence[Projection],
        page: int = PAGE,
        *,
        serves_readers: bool = True,
        bulk: int = BULK,
        window: int = WINDOW,
    ) -> None:
        self.events = events
        self.bulk, self.window = bulk, window
        self._window = min(window, 2 * bulk) or window  # grows (fourfold) up to `window`
        self.view = view
        self.serves_readers = serves_readers  # follows the generation readers use (not a rebuild)
        self.projections = list(projections)
        self.page = page
        # Each projection's position, cached: a stale one only costs a refused page.
        self._positions: dict[str, int] | None = None
        self._head = 0
        self._following = False
        self._failure: tuple[str, datetime] | None = None  # while failing: error, since
        self._failure_at: datetime | None = None  # when it last failed
        self._applied = threading.Condition()
        self._wake = threading.Event()

    @property
    def names(self) -> list[str]:
        return [projection.name for projection in self.projections]

    def positions(self) -> dict[str, int]:
        """How far each projection has applied the event stream (read from the store)."""
        self._positions = {
            name: self.view.max_tracking_id(self.view.tracking_key(name)) or 0
            for name in self.names
        }
        return self._positions

    @property
    def position(self) -> int:
        """How far every projection has applied the event stream (read from the store)."""
        return min(self.positions().values())

    def _least(self) -> int | None:
        return min(self._positions.values()) if self._positions else None

    def head(self) -> int:
        self._head = self.events.recorder.max_notification_id() or 0
        return self._head

    def progress(self) -> Progress:
        """Where the read models stand: from memory while this process follows the stream
        (no round trip), else read from the store (one)."""
        least = self._least()
        if self._following and least is not None:
            return Progress(least, max(self._head, least), True, self.view.generation)
        position, self._head = self.view.standing(self.events.recorder, self.names)
        return Progress(position, self._head, False, self.view.generation)

    def _forget(self) -> None:
        self._positions = None
        for projection in self.projections:
            projection.forget()

    def catch_up(
        self,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Applies every event recorded so far, a page per transaction, until the end of the
        log or until `stop` is set; returns how many this call applied."""
        if self.serves_readers and self.view.follow_active():  # a rebuild replaced it
            self._forget()
        applied = 0
        while stop is None or not stop.is_set():
            positions = self._positions if self._positions is not None else self.positions()
            after = min(positions.values())
            if self.head() - after > self.bulk:  # a backlog: each subject folded once
                # The first windows are small, so that progress shows at once and a stop is
                # heeded soon, and grow fourfold: each refolds every subject it touches (the
                # hot ones each time) whatever its size. One that would leave less than the
                # next takes the rest as well. Unwatched and unstoppable (a CLI write brought
                # up to date), the backlog is one window, as large as windows get.
                if progress is None and stop is None:
                    self._window = self.window
                grown = min(4 * self._window, self.window)
                upto = after + self._window
                if self._head - upto < grown:
                    upto = min(self._head, after + max(self._window, grown))
                try:
                    applied += self._window_upto(positions, upto, progress, stop)
                except IntegrityError:
                    log.info("window applied by another runner; moving on", after=after)
                    self._positions = None
                    continue
                except Interrupted:
                    return applied
                self._window = grown
                continue
            conflict = False
            for notifications in pages(self.events.recorder, after, self.page):
                page = [(n.id, self.events.mapper.to_domain_event(n)) for n in notifications]
                last = notifications[-1].id
                try:
                    for projection in self.projections:
                        start = positions[projection.name]
                        part = [(i, event) for i, event in page if i > start]
                        if part:
                            tracking = Tracking(self.view.tracking_key(projection.name), last)
                            projection.process_page(part, tracking)
                            self._advanced(projection.name, last)
                except IntegrityError:
                    log.info("page applied by another runner; moving on", after=after)
                    self._positions, conflict = None, True
                    break
                applied += len(page)
                if progress is not None:
                    progress(len(page))
                if stop is not None and stop.is_set():
                    break
            if not conflict:
                return applied
        return applied

    def _window_upto(
        self,
        positions: dict[str, int],
        upto: int,
        progress: Callable[[int], None] | None,
        stop: threading.Event | None,
    ) -> int:
        """Brings every projection up to `upto`, each in a window from where it stands;
        returns how many events the one furthest behind applied (progress counts its)."""
        applied = 0
        behind = min(positions, key=positions.__getitem__)
        for projection in self.projections:
            start = positions[projection.name]
            if start >= upto:
                continue
            told = progress if projection.name == behind else None
            count = projection.process_window(start, upto, told, stop)
            if projection.name == behind:
                applied = count
            self._advanced(projection.name, upto)
        return applied

    def rebuild(self, upto: int, progress: Callable[[int], None] | None = None) -> int:
        """Fills this (empty) generation up to position `upto`, every projection in one
        window; `catch_up` then goes on from there."""
        if not upto:
            return 0
        return self._window_upto({name: 0 for name in self.names}, upto, progress, None)

    def _advanced(self, name: str, position: int) -> None:
        with self._applied:
            if self._positions is None:
                self._positions = {n: 0 for n in self.names}
            self._positions[name] = position
            self._head = max(self._head, position)
            self._applied.notify_all()

    def follow(
        self, stop: threading.Event, poll: float = 0.5, report: Callable[[], None] | None = None
    ) -> None:
        """Catches up, then keeps following new events until `stop` is set (checked between
        pages). A failure (the store unreachable or locked, or anything else) is recorded and
        retried after an exponential backoff with full jitter, so that runners restarted
        together do not retry together; each attempt resumes from the tracking record, so
        nothing is applied twice or skipped."""
        self._following = True
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self.head()
                    if self.catch_up(stop=stop) and report is not None:
                        report()
                except Exception as error:  # a daemon: said, then retried
                    failures += 1
                    self._failed(error, failures)
                    stop.wait(random.uniform(0, min(RETRY_MOST, RETRY_FIRST * 2**failures)))
                    continue
                if failures:
                    log.info("projection resumed", after_failures=failures)
                    failures, self._failure = 0, None
                self._wake.wait(poll)
                self._wake.clear()
        finally:
            self._following = False
            with self._applied:
                self._applied.notify_all()

    def _failed(self, error: Exception, failures: int) -> None:
        message = f"{type(error).__name__}: {error}"
        self._failure = (message, self._failure[1] if self._failure else now())
        self._failure_at = now()
        self._forget()  # positions read again from the tracking records when resuming
        log.warning("projection failed; retrying", error=message, failures=failures)
        with contextlib.suppress(Exception):  # the store may be what failed
            self.view.record_error(message)

    def recorded(self, position: int) -> None:
        """A write of this process reached `position`: a follower here looks at once."""
        self._head = max(self._head, position)
        self._wake.set()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits, at most `timeout` seconds, until the read models have applied `position`;
        says whether they have. A follower in this process is woken to look at once."""
        deadline = time.monotonic() + timeout
        if self._following:
            self.recorded(position)
            with self._applied:
                while (self._least() or 0) < position and self._following:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._applied.wait(remaining)
                if self._following:
                    return True
        delay = 0.01
        while self.position < position:  # another process follows: poll its tracking record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.2)
        return True

    @property
    def failure(self) -> tuple[str, datetime] | None:
        """While this process's runner is failing: its last error, and since when."""
        return self._failure

    def report(self) -> Progress:
        """Where the read models stand, with the last error recorded in the store (by any
        runner) and whether the runner in this process is failing now."""
        meta = self.view.meta()
        at = self.progress()
        error, error_at = meta["last_error"], meta["last_error_at"]
        error_at = from_micros(error_at) if error_at else None
        since = self._failure[1] if self._failure else None
        if self._failure is not None and error != self._failure[0]:
            # Failing now, with an error the store could not keep (a full disk, say).
            error, error_at = self._failure[0], self._failure_at
        return Progress(
            at.position, at.head, at.following, meta["generation"], error, error_at, since
        )

    def remembered(self) -> Progress:
        """Where the read models stood when last seen, from memory only (when the store
        cannot be asked)."""
        error, since = self._failure or (None, None)
        position = self._least() or 0
        return Progress(
            position,
            max(self._head, position),
            self._following,
            self.view.generation,
            error,
            since,
            since,
        )
