"""The one read path: every query goes through `QueryService`, which picks who answers.

The read models answer questions about the store's current knowledge; a fold of
the events answers those about an earlier `known_at`. Callers choose nothing.
Reads never project: a runner beside them does (a thread of the server, or
`deplatform projections run`). A read made after a write of this process (or
after a position the caller names) waits, bounded, for the read models to reach
it, and otherwise answers from them as they are; `progress()` says how far
behind they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from domain.clock import now
from domain.errors import UnknownSubject
from domain.values import Status, SubjectKey
from projections.documents import CHANNEL_ORDER, HistoryEntry, readings
from projections.runner import Progress, Runner
from projections.status import Interval
from service.queries import Queries, SubjectStatus, no_record

READ_WAIT = 2.0  # seconds a read waits for the read models to reach a write it follows


@dataclass(frozen=True)
class Change:
    """A subject whose status on some channel differs between two moments, with the
    statuses then and now and the facts that occurred in between."""

    subject: SubjectKey
    channels: dict[str, tuple[Status | None, Status | None]]
    events: list[HistoryEntry]


class QueryService:
    def __init__(
        self, read_models: Queries, fold: Queries, runner: Runner, *, wait: float = READ_WAIT
    ) -> None:
        self.read_models = read_models
        self.fold = fold
        self.runner = runner
        self.wait = wait
        self.written = 0  # the last position this process wrote

    # Freshness ------------------------------------------------------------------------

    def recorded(self, position: int | None) -> None:
        """A write of this process committed up to `position`: reads after it wait for it."""
        if position:
            self.written = max(self.written, position)
            self.runner.recorded(position)

    def settle(self, after: int | None = None) -> Progress:
        """Waits, at most `wait` seconds, until the read models have applied this process's
        last write (and `after`, if given); returns where they stand then."""
        target = max(self.written, after or 0)
        if target:
            self.runner.wait_for(target, self.wait)
        return self.runner.progress()

    def progress(self) -> Progress:
        return self.runner.progress()

    def _source(self, known_at: datetime | None) -> Queries:
        return self.fold if known_at is not None else self.read_models

    def _behind(self, refusal: UnknownSubject) -> UnknownSubject:
        """A subject the read models do not know may be one they have not reached yet."""
        lag = self.runner.progress().lag
        if not lag:
            return refusal
        return UnknownSubject(f"{refusal} (the read models are {lag} event(s) behind the store)")

    # Queries ------------------------------------------------------------------------------

    def status(
        self, key: SubjectKey, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> SubjectStatus:
        stamp = known_at or now()
        try:
            found = self._source(known_at).status(key, as_of or stamp, known_at)
        except UnknownSubject as refusal:
            raise (self._behind(refusal) if known_at is None else refusal) from None
        return replace(found, known_at=stamp)

    def statuses(
        self,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        status: Status | None = None,
    ) -> list[SubjectStatus]:
        stamp = known_at or now()
        found = self._source(known_at).statuses(as_of or stamp, known_at, status)
        return [replace(s, known_at=stamp) for s in found]

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[HistoryEntry]:
        try:
            return self._source(known_at).history(key, known_at, limit, offset)
        except UnknownSubject as refusal:
            raise (self._behind(refusal) if known_at is None else refusal) from None

    def intervals(self, key: SubjectKey, known_at: datetime | None = None) -> list[Interval]:
        source = self._source(known_at)
        if not source.exists(key, known_at):
            raise self._behind(no_record(key)) if known_at is None else no_record(key)
        return source.intervals([key], known_at)[key]

    def intervals_many(
        self, keys: Sequence[SubjectKey], known_at: datetime | None = None
    ) -> dict[SubjectKey, list[Interval]]:
        return self._source(known_at).intervals(keys, known_at)

    def changes(self, start: datetime, end: datetime) -> list[Change]:
        """Subjects whose status on some channel differs between `start` and `end`."""
        before = {s.subject: readings(s.document) for s in self.statuses(start)}
        after = {s.subject: readings(s.document) for s in self.statuses(end)}
        changed = []
        for key in sorted(before.keys() | after.keys(), key=lambda k: (k.kind, k.identity)):
            then, later = before.get(key, {}), after.get(key, {})
            channels = {
                channel: (then.get(channel), later.get(channel))
                for channel in CHANNEL_ORDER
                if then.get(channel) != later.get(channel)
            }
            if channels:
                events = [
                    entry
                    for entry in self.history(key)
                    if entry.record.occurred_at is not None
                    and start < entry.record.occurred_at <= end
                ]
                changed.append(Change(key, channels, events))
        return changed
