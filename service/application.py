"""The application service: record facts (one or many, atomically), load subjects, and read
the store's log (export, feed).

Facts are validated in order against the store plus the facts accepted before
them in the same batch; a batch is written in one transaction, with its entries
in the event-id index, so an atomic import either lands whole or not at all.
Queries live in `service.queries`: this class only writes and loads.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain import Subject, tracked_key
from domain.clock import now
from domain.values import SubjectKey
from projections.log import pages
from projections.subject_cache import PICKLED, SubjectCache
from service.ports import BulkWrite, Checkpoints, EncodesAhead, EventIndex
from service.recording import Batch, NewFact, Outcome

log = structlog.get_logger(__name__)

CACHE_FACTS = 200_000  # facts of recently written subjects kept in memory between writes
IMPORT_FACTS = 200_000  # facts of the subjects an import touched lately, kept in memory
WRITE_ATTEMPTS = 8
RETRY_WAIT = 0.005  # seconds; the n-th retry waits up to RETRY_WAIT * 2**n
PAGE = 1000
LOAD_GROUP = 8  # subjects whose histories a write reads and folds together (then compacts)
KEEP_FACTS = 20_000  # facts of the subjects whose kept timelines are written together


@dataclass(frozen=True)
class StoredFact:
    """A fact as it stands in the store's global order (for export and feeds)."""

    fact: Subject.Fact
    subject: SubjectKey
    position: int


class Writing:
    """The store as a write holding its lock sees it: reads go through the write's
    transaction (nobody else can commit meanwhile), and subjects come from `held` when they
    are there, brought up to date first unless `current` (held by this very transaction)."""

    def __init__(
        self, app: Deplatforming, write: BulkWrite, held: SubjectCache, *, current: bool
    ) -> None:
        self.app = app
        self.index = write
        self.held = held
        self.current = current
        self.look_alike_id = app.look_alike_id

    def checkout(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]:
        taken = self.held.take(subject_ids)
        checkpoints = self.app.checkpoints
        if not self.current:
            for subject in list(taken.values()):
                newer = self.index.select_events_after(subject.id, subject.version)
                if newer and checkpoints is not None:  # restored as another writer kept it
                    del taken[subject.id]
                    continue
                for stored in newer:
                    self.app.decode(stored).mutate(subject)
        missing = [i for i in dict.fromkeys(subject_ids) if i not in taken]
        if checkpoints is not None and missing:
            taken |= checkpoints.restore(missing)
            missing = [i for i in missing if i not in taken]
        for start in range(0, len(missing), LOAD_GROUP):  # one group's histories live at once
            group = missing[start : start + LOAD_GROUP]
            for subject in self.app.fold(self.index.select_events_of(group)).values():
                subject.compact(PICKLED)
                taken[subject.id] = subject
        return taken


class RolledBack(Exception):
    """An import that is not to be kept: its transaction is rolled back."""


class StoreNotEmpty(RuntimeError):
    """A copy's target already holds events."""


class ConcurrentWrites(RuntimeError):
    """Other writers kept changing the same subjects; the batch was not recorded."""


class Deplatforming(Application[UUID]):
    """The tracker's event store and the use cases that write to it."""

    name = "deplatforming"  # pinned: PostgreSQL tables are named after it

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        look_alike_id: Callable[[SubjectKey], str | None] = lambda key: None,
        checkpoints: Callable[[Deplatforming], Checkpoints] | None = None,
    ) -> None:
        """`look_alike_id`: the index id a subject shares with those it could pass for, so
        that a new one is refused (by default none is). `checkpoints`: what keeps subjects'
        timelines beside their events, made for this application (by default nothing does:
        a write reads the whole history of each subject it does not hold)."""
        super().__init__(env)
        self._written = SubjectCache(CACHE_FACTS)
        self.look_alike_id = look_alike_id
        self.checkpoints = checkpoints(self) if checkpoints is not None else None

    @property
    def index(self) -> EventIndex:
        return cast(EventIndex, self.recorder)

    # Writes ---------------------------------------------------------------------

    def record(
        self,
        facts: Sequence[NewFact],
        *,
        atomic: bool = True,
        commit: bool = True,
        recorded_by: str | None = None,
    ) -> Outcome:
        """Records the valid facts, as recorded by `recorded_by`; with `atomic`, nothing
        unless all are valid; with `commit=False`, only checks them. A write takes the
        store's write lock before it reads what it checks the facts against, so writers
        queue instead of colliding (each checks against what the one before it wrote); it
        waits for the lock as long as the store's lock timeout, then fails (a
        `PersistenceError`)."""
        if not commit:
            return Batch(self, facts).run()  # its subjects hold unwritten facts: dropped
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return self._write(facts, atomic, recorded_by)
            except IntegrityError as error:  # a writer that does not lock (an older version)
                log.info("write conflict, retrying", attempt=attempt, error=str(error))
                # Writers that collided wait apart (full jitter), so they do not collide again.
                time.sleep(random.uniform(0, RETRY_WAIT * 2**attempt))
        raise ConcurrentWrites(f"gave up after {WRITE_ATTEMPTS} conflicting attempts")

    def _write(self, facts: Sequence[NewFact], atomic: bool, recorded_by: str | None) -> Outcome:
        with self.index.bulk() as write, self._reading(write):
            batch = Batch(Writing(self, write, self._written, current=False), facts, recorded_by)
            outcome = batch.run()
            if not batch.accepted:  # its subjects are as stored: kept for the next write
                self._written.checkin(batch.aggregates.values())
                return outcome  # nothing written: the transaction commits nothing
            if atomic and outcome.rejected:
                return outcome  # nothing written; its subjects hold unwritten facts: dropped
            outcome.position = self._insert(write, batch)
        self._written.checkin(batch.aggregates.values())  # once what they hold is stored
        outcome.committed = True
        return outcome

    def _insert(self, write: BulkWrite, batch: Batch, keep: bool = True) -> int | None:
        """Writes a batch's new events and index rows in the write's transaction, and (with
        `keep`) what changed in its subjects' timelines; returns the last event's position."""
        mapper = cast(EncodesAhead, self.mapper)
        stored = [
            mapper.to_stored_event(e) if ahead is None else mapper.completed(e, ahead)
            for e, ahead in batch.events
        ]
        position = write.insert(stored, batch.index_rows)
        if keep:
            changed = dict.fromkeys(e.originator_id for e, _ in batch.events)
            self._keep(write, [batch.aggregates[i] for i in changed])
        return position

    def _keep(self, write: BulkWrite, subjects: Sequence[Subject]) -> None:
        """Keeps what changed in these subjects' timelines, a few thousand facts' worth at a
        time (an import keeps all it holds at its end: its memory stays bounded)."""
        if self.checkpoints is None:
            return
        group: list[Subject] = []
        weight = 0
        for subject in subjects:
            group.append(subject)
            weight += len(subject.timeline)
            if weight >= KEEP_FACTS:
                self.checkpoints.keep(write.checkpoints, group)
                group, weight = [], 0
        if group:
            self.checkpoints.keep(write.checkpoints, group)

    def _reading(self, write: BulkWrite) -> AbstractContextManager[None]:
        """Restored subjects read what they need through the write's transaction meanwhile."""
        if self.checkpoints is None:
            return nullcontext()
        return self.checkpoints.using(write.checkpoints)

    def import_stream(
        self,
        chunks: Iterable[Sequence[NewFact]],
        *,
        atomic: bool = True,
        commit_if: Callable[[], bool] = lambda: True,
        progress: Callable[[int], None] | None = None,
        recorded_by: str | None = None,
    ) -> Outcome:
        """Records a stream of facts of any length, chunk by chunk, in one transaction: each
        fact validated against the store and the facts before it, as `record` does, with
        memory bounded (subjects not touched lately are dropped, and read back through the
        transaction when a later fact needs them). With `atomic`, nothing is kept unless every
        fact is valid; nothing either unless `commit_if()` says so once the stream ends."""
        outcome = Outcome()
        try:
            with self.index.bulk() as write, self._reading(write):
                # Its subjects' timelines are kept once they leave its memory, or at its end
                # (not after each chunk: a subject in many chunks is written once).
                held = SubjectCache(IMPORT_FACTS, partial(self._keep, write))
                importing = Writing(self, write, held, current=True)
                started = now()  # one transaction: its facts become known at one instant
                for chunk in chunks:
                    batch = Batch(importing, chunk, recorded_by, started)
                    outcome.extend(batch.run(), ids=False)
                    last = self._insert(write, batch, keep=False)
                    outcome.position = last if last is not None else outcome.position
                    held.checkin(batch.aggregates.values())
                    if progress is not None:
                        progress(len(chunk))
                if (atomic and outcome.rejected) or not outcome.recorded_count or not commit_if():
                    raise RolledBack
                self._keep(write, held.held())
        except RolledBack:
            outcome.position = None
            return outcome
        outcome.committed = True
        return outcome

    # Loading --------------------------------------------------------------------

    def load(self, subject_id: UUID) -> Subject | None:
        try:
            return cast(Subject, self.repository.get(subject_id))
        except AggregateNotFoundError:
            return None

    def load_many(
        self, subject_ids: Sequence[UUID], versions: Mapping[UUID, int] | None = None
    ) -> dict[UUID, Subject]:
        """Many subjects at once, optionally as they stood at given versions: one query
        per few thousand subjects."""
        return self.fold(self.index.select_events_of(subject_ids), versions)

    def restored(
        self, subject_ids: Sequence[UUID], versions: Mapping[UUID, int]
    ) -> dict[UUID, Subject]:
        if self.checkpoints is None:
            return {}
        found = self.checkpoints.restore(subject_ids)
        return {i: s for i, s in found.items() if s.version == versions[i]}

    def fold(
        self, events: Iterable[StoredEvent], versions: Mapping[UUID, int] | None = None
    ) -> dict[UUID, Subject]:
        """The subjects these stored events (by subject, then version) make."""
        subjects: dict[UUID, Subject] = {}
        for stored in events:
            if (
                versions is not None
                and stored.originator_version > versions[UUID(str(stored.originator_id))]
            ):
                continue
            event = self.decode(stored)
            subjects[event.originator_id] = cast(
                Subject, event.mutate(subjects.get(event.originator_id))
            )
        return subjects

    def checkout(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]:
        """Subjects for a write, which owns them until it checks them back in. A subject this
        process wrote lately comes from memory with only its newer events read, so that a
        subject with a long history takes one more fact at the cost of a short one."""
        cached = self._written.take(subject_ids)
        for subject in list(cached.values()):
            newer = self.recorder.select_events(subject.id, gt=subject.version)
            if newer and self.checkpoints is not None:  # its kept blocks may have changed
                del cached[subject.id]
                continue
            for stored in newer:
                self.decode(stored).mutate(subject)
        return cached | self.load_many([i for i in subject_ids if i not in cached])

    def decode(self, stored: StoredEvent) -> Subject.Event:
        return cast(Subject.Event, self.mapper.to_domain_event(stored))

    def subject_ids(self, upto: int, after: int = 0) -> dict[UUID, int]:
        """Every subject with a fact recorded after position `after`, up to `upto`, with the
        number of events in its history up to `upto`."""
        return self.index.select_subject_ids(upto, after)

    def histories(
        self, subject_ids: Sequence[UUID], upto: int
    ) -> dict[UUID, list[tuple[int, Subject.Event]]]:
        """Subjects' events recorded up to position `upto`, with their positions, in one
        round trip per few thousand subjects."""
        found: dict[UUID, list[tuple[int, Subject.Event]]] = {}
        for notification in self.index.select_history(subject_ids, upto):
            event = self.decode(notification)
            found.setdefault(event.originator_id, []).append((notification.id, event))
        return found

    def subjects(self) -> Iterator[Subject]:
        """Every subject, rebuilt by one pass over the store in recording order."""
        subjects: dict[UUID, Subject] = {}
        for _, event in self._events():
            subjects[event.originator_id] = cast(
                Subject, event.mutate(subjects.get(event.originator_id))
            )
        yield from subjects.values()

    # The log ----------------------------------------------------------------------

    def head(self) -> int:
        """The store's last position (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def last_recorded_at(self) -> datetime | None:
        """When the store's last fact was recorded: as of then, the store knew everything it
        knows now (a `known_at` that gives the same answers for good)."""
        return self.recorded_at(self.head())

    def recorded_at(self, position: int) -> datetime | None:
        """When the event at `position` was recorded (None for an empty store)."""
        found = self.recorder.select_notifications(position, 1) if position else []
        return self.decode(found[0]).timestamp if found else None

    def feed(self, after: int, limit: int) -> tuple[list[StoredFact], int]:
        """At most `limit` facts recorded after position `after`, in recording order (as many
        as there are, up to `limit`), and the position to continue from: the last one read.
        The store's own records (a subject's start) are read past, never counted."""
        facts: list[tuple[int, Subject.Fact]] = []
        cursor = after
        while len(facts) < limit:
            page = self.recorder.select_notifications(
                cursor, limit - len(facts), inclusive_of_start=False
            )
            for notification in page:
                cursor = notification.id
                event = self.decode(notification)
                if isinstance(event, Subject.Fact):
                    facts.append((notification.id, event))
            if not page:
                break
        keys = self.keys_of([e.originator_id for _, e in facts])
        return [StoredFact(e, keys[e.originator_id], p) for p, e in facts], cursor

    def keys_of(self, subject_ids: Sequence[UUID]) -> dict[UUID, SubjectKey]:
        """Subjects' keys as first spelled, from their first events (one round trip)."""
        first = self.index.select_first_events(list(dict.fromkeys(subject_ids)))
        events = (self.decode(stored) for stored in first)
        return {e.originator_id: tracked_key(e) for e in events if isinstance(e, Subject.Tracked)}

    def export(self, after: int = 0) -> Iterator[StoredFact]:
        """Every fact recorded after position `after`, in recording order, page by page."""
        keys: dict[UUID, SubjectKey] = {}
        for page in pages(self.recorder, after, PAGE):
            events = [(n.id, self.decode(n)) for n in page]
            for _, event in events:
                if isinstance(event, Subject.Tracked):
                    keys[event.originator_id] = tracked_key(event)
            missing = {e.originator_id for _, e in events if e.originator_id not in keys}
            if missing:  # subjects that began before `after`
                keys |= self.keys_of(list(missing))
            for position, event in events:
                if isinstance(event, Subject.Fact):
                    yield StoredFact(event, keys[event.originator_id], position)

    def copy_to(self, target: Deplatforming, progress: Callable[[int], None] | None = None) -> int:
        """Copies every stored event as it is stored (its recording time, in its order), with
        its event-id index entries, into an empty store, in one transaction (all or nothing);
        returns how many. Only new positions differ."""
        copied = 0
        with target.index.bulk() as write:
            if target.head():
                raise StoreNotEmpty("the target store already holds events: copy into an empty one")
            for page in pages(self.recorder, 0, PAGE):
                stored = [
                    StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
                    for n in page
                ]
                events = [self.decode(n) for n in page]
                ids = [e.event_id for e in events if isinstance(e, Subject.Fact)]
                tracked = [tracked_key(e) for e in events if isinstance(e, Subject.Tracked)]
                spelled = [s for s in map(self.look_alike_id, tracked) if s is not None]
                index = self.index.select_event_ids(ids + spelled)
                # Every fact has its entry; an account, its look-alike entry (if it was made).
                entries = [index[i] for i in ids] + [index[s] for s in spelled if s in index]
                write.insert(stored, entries)
                copied += len(page)
                if progress is not None:
                    progress(len(page))
        return copied

    def _events(self) -> Iterator[tuple[int, Subject.Event]]:
        for page in pages(self.recorder, 0, PAGE):
            for notification in page:
                yield notification.id, self.decode(notification)
