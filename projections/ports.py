"""What the projections need: the event store they read, and a read-model store they write
(its SQL lives in adapters/). The rows they hand over, made for every event, are plain
dataclasses (see `projections.documents`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Mapper, Tracking

from domain import Subject
from projections.documents import FactRecord, StatusDocument
from projections.status import Interval, Snapshot
from projections.tails import Extension, Tail


class Stale(Exception):
    """A subject restored from its checkpoints was changed by a later write before all that
    was asked of it was read: it no longer stands for its version (read it anew)."""


class EventSource(Protocol):
    """The event store as projections read it (the application satisfies it)."""

    @property
    def recorder(self) -> ApplicationRecorder: ...

    @property
    def mapper(self) -> Mapper[UUID]: ...

    def load_many(
        self, subject_ids: Sequence[UUID], versions: Mapping[UUID, int] | None = None
    ) -> dict[UUID, Subject]:
        """Many subjects at once, optionally as they stood at given versions."""
        ...

    def restored(
        self, subject_ids: Sequence[UUID], versions: Mapping[UUID, int]
    ) -> dict[UUID, Subject]:
        """Those of these subjects the store keeps checkpoints of, as they stand at exactly
        these versions: their facts are read when a question needs them (`Stale` if a write
        changed them meanwhile)."""
        ...

    def subject_ids(self, upto: int, after: int = 0) -> dict[UUID, int]:
        """Every subject with a fact recorded after position `after`, up to `upto`, with the
        number of events in its history up to `upto`."""
        ...

    def histories(
        self, subject_ids: Sequence[UUID], upto: int
    ) -> dict[UUID, list[tuple[int, Subject.Event]]]:
        """Subjects' events recorded up to position `upto`, with their positions."""
        ...


@dataclass
class SubjectRows:
    """A subject's periods and runs, believed from `known_from` (until `known_to`, open while
    they still are): the whole of what the store believed then, or, in a `Projected` that
    holds `history`, part of it."""

    subject_id: str
    kind: str
    key: str
    identity: str
    exists_from: datetime | None  # when the subject begins to exist (None: every fact retracted)
    first_known: datetime  # when its first fact was recorded
    known_from: datetime
    snapshots: list[Snapshot]
    intervals: list[Interval]
    known_to: datetime | None = None
    # More of the rows of a subject given just before (a long one comes in pieces): added to
    # them, where a first piece replaces (or supersedes) what was stored.
    continued: bool = False


@dataclass
class TimelineRow:
    subject_id: str
    occurred_at: int  # microseconds since the epoch, as every time in the read models
    version: int
    recorded_at: int
    record: FactRecord


@dataclass
class RetractionMark:
    subject_id: str
    target: str
    event_id: str
    recorded_at: int
    reason: str


@dataclass(frozen=True)
class Projected:
    """The rows a batch of subjects gives: each subject's own rows, the batch's new facts on
    their timelines, and the retractions it marks. A subject's first piece of rows either
    supersedes the rows believed until then (they are closed at its `known_from`), or, with
    `history`, is its whole history over transaction time (what was stored is replaced)."""

    subjects: Sequence[SubjectRows]
    timeline: Sequence[TimelineRow]
    retractions: Sequence[RetractionMark]
    extensions: Sequence[Extension] = ()  # subjects whose rows change from a moment on
    history: bool = False


# A table's new rows: tuples of plain values, or already in the store's bulk-load format
# (PostgreSQL's `COPY` text), formatted where they were derived.
Table = list[tuple[Any, ...]] | bytes


@dataclass(frozen=True)
class Rows:
    """A `Projected` without extensions, encoded as the read models store it (each table's
    rows as tuples of plain values): what a worker process that derived it sends back."""

    replaced: list[str]  # the subjects whose rows it replaces (their whole history)
    superseded: list[tuple[str, int]]  # subjects whose rows believed until then it closes, when
    periods: Table
    intervals: Table
    subjects: Table
    timeline: Table
    retractions: list[tuple[Any, ...]]  # marks made in place (UPDATEs), never bulk-loaded


@dataclass(frozen=True)
class BatchDone:
    """A batch of subjects of a window is derived: the events of the window it applies, and
    where its subjects' rows end (their tails)."""

    events: int
    tails: dict[UUID, Tail | None]


class Derivation(Protocol):
    """Derives a window's rows batch by batch elsewhere (worker processes): for each batch
    of subjects, its rows (`Rows`) and then its `BatchDone`; batches may come in any order."""

    def wanted(self, events: int) -> bool:
        """Whether a window of this many events is worth deriving elsewhere."""
        ...

    def __call__(
        self, batches: Iterable[list[UUID]], upto: int, after: int
    ) -> Generator[Rows | BatchDone, None, None]: ...


class ReadModels(Protocol):
    """A generation of read models (the tables of every projection), with each projection's
    tracking position."""

    generation: int

    def tracking_key(self, projection: str) -> str:
        """The name of a projection's tracking record in this generation."""
        ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def standing(self, events: ApplicationRecorder, projections: Sequence[str]) -> tuple[int, int]:
        """How far every one of these projections has got in this generation (the least of
        their positions), and the last position of the log `events` records, read together
        (in one statement)."""
        ...

    def meta(self) -> dict[str, Any]:
        """The generation readers use, and the last error a runner met."""
        ...

    def follow_active(self) -> bool:
        """Moves to the generation readers use; says whether it had to."""
        ...

    def record_error(self, message: str) -> None: ...


class Projection(Protocol):
    """A read model kept up to date from the event stream by a `Runner`, which hands it the
    events after its own tracking position: a page at a time as the log grows, or a window
    of the log at once (a backlog, a rebuild). It writes its rows with its tracking record,
    in one transaction (its tables and queries live with its store, in adapters/)."""

    name: str  # its tracking record's, with the generation

    def process_page(self, page: Sequence[tuple[int, Any]], tracking: Tracking) -> None: ...

    def process_window(
        self,
        after: int,
        upto: int,
        progress: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Applies the events after `after` up to `upto` in one transaction; returns how many
        it applied; raises `Interrupted` (nothing applied) if `stop` is set meanwhile."""
        ...

    def forget(self) -> None:
        """Drops what it keeps in memory about its rows (they may not be what is stored)."""
        ...


class Interrupted(Exception):
    """A window of the log was given up because the runner was asked to stop."""


class StatusView(ReadModels, Protocol):
    """The status read models' store."""

    def standing_at(
        self, points: Sequence[tuple[str, str, datetime]]
    ) -> dict[str, tuple[StatusDocument, dict[str, datetime]]]:
        """For each (subject id, kind, moment): the document of the period the subject's rows
        begin at that moment, and when each channel's run in force then began."""
        ...

    def apply(
        self, changes: Iterable[Projected | Rows], tracking: Tracking | None, *, fresh: bool = False
    ) -> None:
        """Writes the tracking record (if any), then the rows as `changes` yields them, all in
        one transaction; `fresh`: the tables hold no rows yet, so nothing is replaced."""
        ...
