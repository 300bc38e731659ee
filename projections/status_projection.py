"""The status projection: each subject's status periods, per-channel runs and timeline, over
valid time and transaction time (see `adapters.read_models` for its tables and queries).

A page of the log is applied part by part, each part recorded at one instant (a write's):
the subjects it touches are redone only from where their new facts change them, and the
rows they supersede are closed at that instant. A window of the log (a backlog, a rebuild)
derives each subject it touches from its whole history, once, possibly in worker processes.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from itertools import chain, groupby
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import Tracking

from domain import Subject, tracked_key
from domain.clock import micros
from domain.timeline import State
from domain.values import SubjectKey
from projections.belief import Belief
from projections.documents import FactRecord, readings
from projections.ports import (
    BatchDone,
    Derivation,
    EventSource,
    Interrupted,
    Projected,
    RetractionMark,
    Rows,
    Stale,
    StatusView,
    SubjectRows,
    TimelineRow,
)
from projections.status import Folded, Interval, Runs, Snapshot, fold_periods, folds, intervals
from projections.subject_cache import SubjectCache
from projections.tails import Extension, Tail, extend, resume, tail_of

T = TypeVar("T")

TAILS = 20_000  # subjects whose tail a runner keeps
BATCH = 200  # subjects read, folded and written together in a window, at most ...
BATCH_EVENTS = 20_000  # ... and as many as hold about this many events (a hot one alone)
SUBJECT_FACTS = 200_000  # facts of the subjects a runner keeps in memory between pages
SLICE = 5_000  # rows derived and written together (a long subject's, in several pieces)
RETRY_FIRST, RETRY_MOST = 0.5, 10.0  # seconds: a failing runner's backoff (full jitter)


class StatusProjection:
    """Status periods, per-channel intervals and timelines of every subject. (The library's
    `Projection` processes one event at a time; this one takes a page.)"""

    name = "status"

    def __init__(
        self, view: StatusView, events: EventSource, derivation: Derivation | None = None
    ) -> None:
        self.view = view
        self.events = events
        self.derivation = derivation  # derives large windows elsewhere (worker processes)
        self.tails: OrderedDict[UUID, Tail] = OrderedDict()  # where subjects' rows end
        # Subjects as the rows hold them, with their timelines' checkpoints: a late fact for
        # one redoes its rows from where it lands, without reading its history again.
        self.subjects = SubjectCache(SUBJECT_FACTS)

    def forget(self) -> None:
        self.tails.clear()

    def process_page(self, page: Sequence[tuple[int, Any]], tracking: Tracking) -> None:
        """Applies a page of the log, one transaction for each part of it recorded at one
        instant (a write's), so that the rows keep each belief of the store's, from when it
        was recorded: a page applied twice fails at its first part's tracking record."""
        start = 0
        for end in range(1, len(page) + 1):
            if end == len(page) or page[end][1].timestamp != page[start][1].timestamp:
                part = page[start:end]
                last = (
                    tracking
                    if end == len(page)
                    else Tracking(tracking.application_name, part[-1][0])
                )
                self._process_part(part, last)
                start = end

    def _process_part(self, page: Sequence[tuple[int, Any]], tracking: Tracking) -> None:
        """Applies events recorded at one instant: a subject whose new facts all sort last
        has its rows extended from where they end; one with a late fact or a retraction has
        them redone from just before the first valid time the page changes (its fold there
        taken from the subject's checkpoints, kept in memory between pages); only a new
        subject, or a change before a subject's first fact, derives a subject's rows whole.
        The rows they supersede are closed at that instant."""
        known_at: datetime = page[0][1].timestamp
        events_of: dict[UUID, list[Any]] = {}
        for _, event in page:
            events_of.setdefault(event.originator_id, []).append(event)
        held = self.subjects.take(list(events_of))
        grown: list[Iterator[Extension]] = []
        tails: dict[UUID, Tail | None] = {}
        keys: dict[UUID, SubjectKey] = {}
        changed: dict[UUID, Subject] = {}  # not extended: redone from a cut, or whole
        keep: list[Subject] = []  # kept in memory for the next pages, once these are stored
        for subject_id, events in events_of.items():
            subject = held.get(subject_id)
            try:
                if subject is not None and subject.version == events[0].originator_version - 1:
                    for event in events:
                        event.mutate(subject)
                else:
                    subject = None  # behind what the rows hold (a window applied meanwhile)
            except Stale:  # restored, and changed by another writer since: read anew
                subject = None
            tail = self.tails.get(subject_id)
            extended = extend(tail, events, SLICE, tails) if tail is not None else None
            if tail is not None and extended is not None:
                grown.append(extended)
                keys[subject_id] = tail.key
                if subject is not None:
                    keep.append(subject)
            elif subject is not None:
                changed[subject_id] = subject
        versions = {
            subject_id: events[-1].originator_version
            for subject_id, events in events_of.items()
            if subject_id not in keys and subject_id not in changed
        }
        # Read from their checkpoints (what a late fact needs of a long history), unless a
        # write changed them since these versions: then whole, as the others.
        restored = self.events.restored(list(versions), versions)
        changed |= restored
        changed |= self._whole([i for i in versions if i not in restored], versions)
        keys |= {i: s.subject for i, s in changed.items()}
        try:
            cuts = self._cuts(changed, events_of)
        except Stale:  # one was changed by a write since it was restored: restored again
            elsewhere = {i: s.version for i, s in changed.items() if not s.timeline.in_memory()}
            again = self.events.restored(list(elsewhere), elsewhere)
            changed |= again | self._whole([i for i in elsewhere if i not in again], elsewhere)
            try:
                cuts = self._cuts(changed, events_of)
            except Stale:  # and again meanwhile: read whole
                changed |= self._whole(list(again), elsewhere)
                cuts = self._cuts(changed, events_of)
        # A subject derived whole is read whole (not block by block from its checkpoints).
        whole_read = {
            i: s.version for i, s in changed.items() if i not in cuts and not s.timeline.in_memory()
        }
        changed |= self._whole(list(whole_read), whole_read)
        keep += changed.values()
        grown += [
            resume(cut, changed[i].version, known_at, suffix, SLICE, tails)
            for i, (cut, suffix) in cuts.items()
        ]
        whole = {i: s for i, s in changed.items() if i not in cuts}
        extensions = (
            Projected([], [], [], batch)
            for batch in batched(chain(*grown), lambda e: len(e.periods) + len(e.intervals) + 1)
        )
        changes = chain(extensions, projected(whole, page, keys, tails, known_at))
        self._apply(changes, tracking, tails)
        self.subjects.checkin(keep)

    def _whole(self, subject_ids: list[UUID], versions: dict[UUID, int]) -> dict[UUID, Subject]:
        """Subjects read whole from their events, as they stood at these versions."""
        return self.events.load_many(subject_ids, versions) if subject_ids else {}

    def _cuts(
        self, subjects: dict[UUID, Subject], events_of: dict[UUID, list[Any]]
    ) -> dict[UUID, tuple[Tail, list[Subject.Action]]]:
        """Where each subject's rows are to be redone from: just before the first valid time
        its new events change (a late fact's, a retracted fact's), with its timeline from
        there on. A subject the rows do not hold from before the page, or changed before its
        first fact, has none."""
        found: dict[UUID, tuple[State, Subject.Action, datetime]] = {}
        for subject_id, subject in subjects.items():
            events = events_of[subject_id]
            if events[0].originator_version == 1:
                continue
            moments = [
                target.occurred_at
                for event in events
                if isinstance(target := _changed_fact(subject, event), Subject.Action)
            ]
            if not moments:
                continue
            moment = min(moments)
            before = subject.timeline.before(moment)
            if before is not None:
                found[subject_id] = (*before, moment)
        standing = self.view.standing_at(
            [(i.hex, subjects[i].kind, last.occurred_at) for i, (_, last, _) in found.items()]
        )
        cuts = {}
        for subject_id, (state, last, moment) in found.items():
            rows = standing.get(subject_id.hex)
            if rows is None:
                continue
            document, run_starts = rows
            point = Snapshot(
                last.occurred_at, None, readings(document), last.event_id, document, {}
            )
            subject = subjects[subject_id]
            cut = Tail(subject.subject, subject.version, state.copy(), last, point, run_starts)
            if cut.complete:
                cuts[subject_id] = (cut, list(subject.timeline.since(moment)))
        return cuts

    def _apply(
        self,
        changes: Iterable[Projected | Rows],
        tracking: Tracking,
        tails: dict[UUID, Tail | None],
        fresh: bool = False,
    ) -> None:
        """Writes the changes; the tails they leave count once they are stored."""
        try:
            self.view.apply(changes, tracking, fresh=fresh)
        except BaseException:
            self.tails.clear()  # what they describe may not be what is stored
            raise
        for subject_id, tail in tails.items():
            self.tails.pop(subject_id, None)
            if tail is not None:
                self.tails[subject_id] = tail
        while len(self.tails) > TAILS:
            self.tails.popitem(last=False)

    def process_window(
        self,
        after: int,
        upto: int,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Applies the events recorded after position `after` up to `upto`, a batch of
        subjects at a time: each subject they touch is read and folded once, whatever the
        order its facts were recorded in, and everything is written in one transaction with
        the tracking record. Returns how many events it applied; `Interrupted` (nothing
        applied) if `stop` is set meanwhile."""
        applied = 0
        tails: dict[UUID, Tail | None] = {}

        def changes() -> Iterator[Projected | Rows]:
            nonlocal applied
            if stop is not None and stop.is_set():
                raise Interrupted
            work = batches(self.events.subject_ids(upto, after))
            derived: Generator[Projected | Rows | BatchDone, None, None]
            if self.derivation is not None and self.derivation.wanted(upto - after):
                derived = self.derivation(work, upto, after)
            else:
                derived = self._derived_here(work, upto, after)
            with contextlib.closing(derived):  # workers stop with the window
                for item in derived:
                    if not isinstance(item, BatchDone):
                        yield item
                        continue
                    applied += item.events
                    tails.update(item.tails)
                    if progress is not None:
                        progress(item.events)
                    if stop is not None and stop.is_set():
                        raise Interrupted

        # From the first position, the tables hold no rows (rows are written only with a
        # tracking record beyond it): nothing to replace.
        self._apply(
            changes(), Tracking(self.view.tracking_key(self.name), upto), tails, fresh=after == 0
        )
        return applied

    def _derived_here(
        self, work: Iterable[list[UUID]], upto: int, after: int
    ) -> Generator[Projected | BatchDone, None, None]:
        for batch in work:
            tails: dict[UUID, Tail | None] = {}
            events, pieces = window_batch(self.events, batch, upto, after, tails)
            yield from pieces
            yield BatchDone(events, tails)


def window_batch(
    events: EventSource,
    batch: list[UUID],
    upto: int,
    after: int,
    tails: dict[UUID, Tail | None],
) -> tuple[int, Iterator[Projected]]:
    """A batch of subjects of a window: how many of their events were recorded after `after`
    (up to `upto`), and their rows over transaction time, derived whole from their histories
    up to `upto` (their tails added to `tails`)."""
    histories = events.histories(batch, upto)
    page = [
        (position, event)
        for history in histories.values()
        for position, event in history
        if position > after
    ]
    keys = {i: key_of(history[0][1]) for i, history in histories.items()}
    return len(page), histories_projected(histories, page, keys, tails)


def batched(items: Iterable[T], size: Callable[[T], int]) -> Iterator[list[T]]:
    """Items in batches of about `SLICE` rows, as `size` counts an item's (and one, maybe
    empty, at the end)."""
    batch: list[T] = []
    held = 0
    for item in items:
        batch.append(item)
        held += size(item)
        if held >= SLICE:
            yield batch
            batch, held = [], 0
    yield batch


def _changed_fact(subject: Subject, event: Any) -> Subject.Fact | None:
    """The fact whose valid time an event changes the timeline at: itself, or the fact it
    retracts (None for the store's own records)."""
    if isinstance(event, Subject.EventRetracted):
        return subject.fact(event.retracts)
    return event if isinstance(event, Subject.Action) else None


def batches(lengths: dict[UUID, int]) -> Iterator[list[UUID]]:
    """Subjects in batches of at most `BATCH`, holding at most `BATCH_EVENTS` events in all
    (but a subject longer than that, alone): memory follows the batch, not the history."""
    batch: list[UUID] = []
    events = 0
    for subject_id, length in lengths.items():
        if batch and (len(batch) == BATCH or events + length > BATCH_EVENTS):
            yield batch
            batch, events = [], 0
        batch.append(subject_id)
        events += length
    if batch:
        yield batch


def projected(
    subjects: dict[UUID, Subject],
    page: Sequence[tuple[int, Any]],
    keys: dict[UUID, SubjectKey],
    tails: dict[UUID, Tail | None],
    known_at: datetime,
) -> Iterator[Projected]:
    """The rows of these subjects as the store knew them from `known_at` (their tails added
    to `tails`), the page's facts on their timelines (`keys`: the key of each subject the
    page touches), its retractions; in pieces of about `SLICE` rows, so that a subject with a
    long history is never held derived whole."""
    yield from timeline_pieces(page, keys)
    yield from in_pieces(
        piece
        for subject_id, subject in subjects.items()
        for piece in subject_rows(subject_id, subject, tails, known_at)
    )


def histories_projected(
    histories: dict[UUID, list[tuple[int, Any]]],
    page: Sequence[tuple[int, Any]],
    keys: dict[UUID, SubjectKey],
    tails: dict[UUID, Tail | None],
) -> Iterator[Projected]:
    """`projected`, for subjects given by their whole histories: their rows over transaction
    time, each belief of the store's from when it was recorded (they replace what is stored)."""
    yield from timeline_pieces(page, keys)
    yield from in_pieces(
        (
            piece
            for subject_id, history in histories.items()
            for piece in history_rows(subject_id, [event for _, event in history], tails)
        ),
        history=True,
    )


def timeline_pieces(
    page: Sequence[tuple[int, Any]], keys: dict[UUID, SubjectKey]
) -> Iterator[Projected]:
    for start in range(0, len(page), SLICE):
        yield Projected([], *facts_of(page[start : start + SLICE], keys))


def in_pieces(pieces: Iterable[SubjectRows], history: bool = False) -> Iterator[Projected]:
    """Subjects' rows in batches of about `SLICE` rows."""
    for batch in batched(pieces, lambda p: len(p.snapshots) + len(p.intervals) + 1):
        yield Projected(batch, [], [], history=history)


def facts_of(
    page: Sequence[tuple[int, Any]], keys: dict[UUID, SubjectKey]
) -> tuple[list[TimelineRow], list[RetractionMark]]:
    """The page's facts as rows of their subjects' timelines, and the retractions it marks."""
    timeline: list[TimelineRow] = []
    retractions: list[RetractionMark] = []
    for position, event in page:
        if isinstance(event, Subject.EventRetracted):
            retractions.append(
                RetractionMark(
                    event.originator_id.hex,
                    event.retracts,
                    event.event_id,
                    micros(event.recorded_at),
                    event.reason,
                )
            )
        elif isinstance(event, Subject.Action):
            key = keys[event.originator_id]
            timeline.append(
                TimelineRow(
                    event.originator_id.hex,
                    micros(event.occurred_at),
                    event.originator_version,
                    micros(event.recorded_at),
                    FactRecord.of(event, key, position),
                )
            )
    return timeline, retractions


def subject_rows(
    subject_id: UUID, subject: Subject, tails: dict[UUID, Tail | None], known_at: datetime
) -> Iterator[SubjectRows]:
    """A subject's rows, derived whole, as the store knew it from `known_at`, in pieces of
    about `SLICE` periods; its tail is added to `tails`."""
    header = header_of(subject_id, subject, subject.exists_from(), known_at)
    runs = Runs()
    pieces = 0
    held: tuple[list[Snapshot], list[Interval], Folded] | None = None  # the slice in hand
    for periods, folded in folds(subject.initial_state(), subject.view(), SLICE):
        if held is not None:
            yield replace(header, snapshots=held[0], intervals=held[1], continued=pieces > 0)
            pieces += 1
        held = (periods, runs.add(periods), folded)
    assert held is not None  # (every fact retracted: one slice, without periods)
    periods, ended, whole = held
    # The runs in force at the last fact ended in the last slice, or are still in force.
    last = ended + runs.end()
    yield replace(header, snapshots=periods, intervals=last, continued=pieces > 0)
    tails[subject_id] = tail_of(subject.subject, subject.version, whole, last)


def header_of(
    subject_id: UUID, subject: Subject, exists_from: datetime | None, known_from: datetime
) -> SubjectRows:
    """A piece of a subject's rows without rows: what says which subject it is."""
    key = subject.subject
    return SubjectRows(
        subject_id.hex,
        key.kind,
        key.key,
        key.identity,
        exists_from,
        subject.created_on,
        known_from,
        [],
        [],
    )


def history_rows(
    subject_id: UUID, history: Sequence[Any], tails: dict[UUID, Tail | None]
) -> Iterator[SubjectRows]:
    """A subject's rows over transaction time, from its history (in recording order): for
    each instant at which facts of it were recorded, the rows the store believed from then,
    each row once, with when it was believed. A subject recorded at one instant has its rows
    derived once, in pieces; another is derived again at each instant, and the rows that
    change are closed there and added anew."""
    instants = [list(g) for _, g in groupby(history, key=lambda e: e.timestamp)]
    subject: Any = None
    if len(instants) == 1:
        for event in history:
            subject = event.mutate(subject)
        yield from subject_rows(subject_id, subject, tails, instants[0][0].timestamp)
        return
    belief: Belief | None = None
    tail: Tail | None = None
    found: dict[UUID, Tail | None] = {}
    for events in instants:
        for event in events:
            subject = event.mutate(subject)
        extended = extend(tail, events, SLICE, found) if tail is not None else None
        if belief is None:  # the subject's own row, as it ends (its rows replace what is stored)
            header = header_of(subject_id, subject, exists_from(history), subject.created_on)
            yield header
            belief = Belief(header)
        if extended is not None:  # facts that sort last: the rows change from the last on
            yield from belief.extend(extended)
            tail = found[subject_id]
            continue
        folded = fold_periods(subject.initial_state(), [], subject.view())
        runs = intervals(folded.periods)
        yield from belief.revise(folded.periods, runs, events[0].timestamp)
        tail = tail_of(subject.subject, subject.version, folded, runs)
    assert belief is not None
    yield from belief.held()
    tails[subject_id] = tail


def key_of(first: Subject.Event) -> SubjectKey:
    """The key of the subject a history's first event starts."""
    assert isinstance(first, Subject.Tracked)
    return tracked_key(first)


def exists_from(history: Sequence[Any]) -> datetime | None:
    """When a subject begins to exist by the end of its history: its first fact not retracted."""
    retracted = {e.retracts for e in history if isinstance(e, Subject.EventRetracted)}
    return min(
        (
            e.occurred_at
            for e in history
            if isinstance(e, Subject.Action) and e.event_id not in retracted
        ),
        default=None,
    )
