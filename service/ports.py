"""What the service needs from the event store beyond the library's recorder interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.values import SubjectKey


class IndexedEvent(NamedTuple):
    """Where an event_id was recorded, and a digest of its content (for idempotency)."""

    event_id: str
    originator_id: UUID
    digest: str


class EventIndex(Protocol):
    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]: ...

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The stored events of many aggregates in one round trip, by aggregate then version."""
        ...

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        """Each stored version of an aggregate -> its position in the store's global order."""
        ...


class StatusReadModels(Protocol):
    """The status read models as the queries use them (times in epoch microseconds)."""

    def subject(self, subject_id: str) -> dict[str, Any] | None: ...

    def period_at(self, subject_id: str, as_of: int) -> dict[str, Any] | None: ...

    def periods_at(self, as_of: int, status: str | None = None) -> list[dict[str, Any]]: ...

    def timeline(
        self, subject_id: str, limit: int | None, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def intervals_of(self, subject_ids: list[str]) -> list[dict[str, Any]]: ...

    def keys_of(self, subject_ids: list[str]) -> dict[str, SubjectKey]: ...
