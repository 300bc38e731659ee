"""What the service needs from the event store beyond the library's recorder interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from domain import Subject


class IndexedEvent(NamedTuple):
    """Where an event_id was recorded, and a digest of its content (for idempotency)."""

    event_id: str
    originator_id: UUID
    digest: str


@dataclass(frozen=True)
class BulkWrite:
    """A long write's one transaction: what it reads sees what it has written so far."""

    select_event_ids: Callable[[Sequence[str]], dict[str, IndexedEvent]]
    select_events_of: Callable[[Sequence[UUID]], Sequence[StoredEvent]]
    select_events_after: Callable[[UUID, int], Sequence[StoredEvent]]
    """An aggregate's events after a version (to bring a copy held in memory up to date)."""
    insert: Callable[[Sequence[StoredEvent], Sequence[IndexedEvent]], int | None]
    """Writes stored events and their index rows; returns the last one's position."""
    checkpoints: Any
    """The subjects' checkpoints, read and written in the write's transaction."""


class EncodesAhead(Protocol):
    """The store's mapper, which completes a state encoded ahead of the write (by an
    import's parsing worker: all but the recording instant) into the stored event."""

    def to_stored_event(self, event: Subject.Event) -> StoredEvent: ...

    def completed(self, event: Subject.Event, ahead: bytes) -> StoredEvent: ...


class Checkpoints(Protocol):
    """Subjects' timelines kept in the store beside their events: a write restores a subject
    from them reading only what its facts touch, and keeps what it changed."""

    def using(self, rows: Any) -> AbstractContextManager[None]:
        """Reads what restored subjects need through a write's checkpoints meanwhile."""
        ...

    def restore(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]:
        """Those of these subjects the store keeps checkpoints of, as their events stand."""
        ...

    def keep(self, rows: Any, subjects: Sequence[Subject]) -> None:
        """Writes what changed in these subjects' timelines since they were kept."""
        ...


class EventIndex(Protocol):
    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]: ...

    def bulk(self) -> AbstractContextManager[BulkWrite]:
        """A transaction for a long write, which commits when the block ends without error
        and holds the store's write lock throughout."""
        ...

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The stored events of many aggregates in one round trip, by aggregate then version."""
        ...

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        """Each stored version of an aggregate -> its position in the store's global order."""
        ...

    def select_first_events(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The first stored event (version 1) of many aggregates, in one round trip."""
        ...

    def select_subject_ids(self, upto: int, after: int = 0) -> dict[UUID, int]:
        """Every aggregate with an event recorded after position `after`, up to `upto`, with
        its last version up to `upto` (how many events its history has by then)."""
        ...

    def select_history(self, originator_ids: Sequence[UUID], upto: int) -> list[Notification]:
        """The events of many aggregates recorded up to position `upto`, with their positions,
        by aggregate then version."""
        ...
