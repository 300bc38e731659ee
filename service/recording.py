"""Recording a batch of facts: each validated against the store plus the facts accepted
before it, the subjects it touches loaded once, the whole written in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast
from uuid import UUID

from domain import RETRACTION, SUBJECT_CLASSES, Subject
from domain.clock import iso, now
from domain.errors import RuleViolation, UnknownEvent
from domain.values import SubjectKey
from service.ports import IndexedEvent


@dataclass(frozen=True)
class NewFact:
    """An input fact, validated for form, ready for its subject's rules."""

    type: str
    subject: SubjectKey | None  # None only for a retraction that names no subject
    event_id: str
    fields: Mapping[str, Any]  # the event's own fields, without event_id
    digest: str  # of the normalised content: same id and digest is a duplicate
    label: int | None = None  # where it came from (an input line), echoed in rejections
    # Its stored state but the recording instant, encoded ahead by whoever parsed it for the
    # writer `recorded_by` names (see `EncodesAhead`); None: encoded when written.
    ahead: bytes | None = None


LISTED = 1000  # rejections a long write lists (the others are counted)


@dataclass(frozen=True)
class Rejection:
    label: int | None
    event_id: str
    error: str
    conflicts_with: str | None = None
    not_found: bool = False  # it names an event the store has no record of


@dataclass
class Outcome:
    recorded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    committed: bool = False
    position: int | None = None  # the store's last position once the write committed
    uncounted: tuple[int, int] = (0, 0)  # recorded and duplicates added without their ids
    unlisted: int = 0  # rejections counted beyond the `LISTED` kept

    def extend(self, other: Outcome, *, ids: bool = True) -> None:
        """Adds what another part of the same write found; without `ids`, only how many
        were recorded and duplicates, and the first `LISTED` rejections (an import of
        millions keeps its memory bounded)."""
        if ids:
            self.recorded += other.recorded
            self.duplicates += other.duplicates
            self.rejected += other.rejected
            return
        recorded, duplicates = self.uncounted
        self.uncounted = (recorded + len(other.recorded), duplicates + len(other.duplicates))
        room = max(LISTED - len(self.rejected), 0)
        self.rejected += other.rejected[:room]
        self.unlisted += len(other.rejected[room:]) + other.unlisted

    @property
    def recorded_count(self) -> int:
        return len(self.recorded) + self.uncounted[0]

    @property
    def duplicate_count(self) -> int:
        return len(self.duplicates) + self.uncounted[1]


class EventIds(Protocol):
    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]: ...


class Subjects(Protocol):
    """Where a batch finds the subjects it touches (the application, or an import)."""

    @property
    def index(self) -> EventIds: ...

    def look_alike_id(self, key: SubjectKey) -> str | None:
        """The index id a subject shares with those it could pass for (None: no such)."""
        ...

    def checkout(self, subject_ids: Sequence[UUID]) -> dict[UUID, Subject]: ...


class Batch:
    """One attempt at recording a sequence of facts: the subjects they touch, loaded once."""

    def __init__(
        self,
        store: Subjects,
        facts: Sequence[NewFact],
        recorded_by: str | None = None,
        recorded_at: datetime | None = None,
    ) -> None:
        self.store = store
        self.facts = facts
        self.recorded_by = recorded_by
        self.accepted: dict[str, IndexedEvent] = {}
        # The new events, in the order their facts were accepted (a subject's start first),
        # with their states encoded ahead (if they were): the order they are stored in.
        self.events: list[tuple[Subject.Event, bytes | None]] = []
        self.now = recorded_at or now()
        targets = [f.fields["retracts"] for f in facts if f.type == RETRACTION]
        keys = list(dict.fromkeys(f.subject for f in facts if f.subject is not None))
        subjects = [key.id for key in keys]
        subjects += [e.originator_id for e in store.index.select_event_ids(targets).values()]
        self.aggregates: dict[UUID, Subject] = store.checkout(subjects)
        self.loaded = set(subjects)
        # Only a subject the store has no record of is checked for look-alikes.
        spellings = [store.look_alike_id(k) for k in keys if k.id not in self.aggregates]
        # Read the index after loading: a subject loaded stale is caught by the version
        # check when saving, but an index read stale would turn duplicates into conflicts.
        self.known = store.index.select_event_ids(
            [f.event_id for f in facts] + targets + [s for s in spellings if s is not None]
        )

    @property
    def index_rows(self) -> list[IndexedEvent]:
        return list(self.accepted.values())

    def run(self) -> Outcome:
        outcome = Outcome()
        for fact in self.facts:
            try:
                if self._is_duplicate(fact):
                    outcome.duplicates.append(fact.event_id)
                else:
                    self._add(fact)
                    outcome.recorded.append(fact.event_id)
            except RuleViolation as violation:
                outcome.rejected.append(
                    Rejection(
                        fact.label,
                        fact.event_id,
                        str(violation),
                        violation.conflicts_with,
                        isinstance(violation, UnknownEvent),
                    )
                )
        return outcome

    def _lookup(self, event_id: str) -> IndexedEvent | None:
        return self.accepted.get(event_id) or self.known.get(event_id)

    def _is_duplicate(self, fact: NewFact) -> bool:
        existing = self._lookup(fact.event_id)
        if existing is None:
            return False
        subject = self._loaded(existing.originator_id)
        retraction = subject.retractions.get(fact.event_id) if subject is not None else None
        if retraction is not None:  # not silently left out: it is not in force
            raise RuleViolation(
                f"event {fact.event_id!r} was retracted by event {retraction.event_id} "
                f"(recorded {iso(retraction.recorded_at)}); to record the fact again, give it "
                "a new event_id",
                conflicts_with=retraction.event_id,
            )
        if existing.digest == fact.digest:
            return True
        raise RuleViolation(
            f"event_id {fact.event_id!r} is already recorded with different content",
            conflicts_with=fact.event_id,
        )

    def _add(self, fact: NewFact) -> None:
        subject = self._subject_for(fact)
        fresh = subject.version == 1 and subject.id not in self.aggregates
        recorded = subject.record(
            fact.type,
            now=self.now,
            event_id=fact.event_id,
            recorded_by=self.recorded_by,
            **fact.fields,
        )
        new = cast(list[Subject.Event], subject.collect_events())
        self.events += [(e, fact.ahead if e is recorded else None) for e in new]
        if fresh:
            self.aggregates[subject.id] = subject
            assert fact.subject is not None  # a retraction's subject is never fresh
            spelled = self.store.look_alike_id(fact.subject)
            if spelled is not None:  # kept beside its facts: later look-alikes find it
                self.accepted[spelled] = IndexedEvent(spelled, subject.id, fact.subject.key)
        self.accepted[fact.event_id] = IndexedEvent(fact.event_id, subject.id, fact.digest)

    def _subject_for(self, fact: NewFact) -> Subject:
        if fact.type == RETRACTION:
            target_id = fact.fields["retracts"]
            target = self._lookup(target_id)
            if target is None:
                raise UnknownEvent(f"event {target_id!r} is not recorded; nothing to retract")
            subject = self._loaded(target.originator_id)
            assert subject is not None
            subject.check_named_in_retraction(fact.subject, target_id)
            return subject
        assert fact.subject is not None
        subject = self._loaded(fact.subject.id)
        if subject is not None:
            return subject
        # A subject's first fact: tracked now, kept only if the fact is accepted.
        self._check_no_look_alike(fact.subject)
        return SUBJECT_CLASSES[fact.subject.kind].start(fact.subject, fact.type, self.now)

    def _check_no_look_alike(self, key: SubjectKey) -> None:
        """Refuses a new subject that could pass for one recorded (or in this batch)."""
        spelled = self.store.look_alike_id(key)
        found = self._lookup(spelled) if spelled is not None else None
        if found is not None and found.originator_id != key.id:
            raise RuleViolation(
                f"{key.kind} {key.key!r} could pass for {found.digest!r}, already recorded: "
                "look-alike handles are refused"
            )

    def _loaded(self, subject_id: UUID) -> Subject | None:
        if subject_id not in self.loaded:  # a retraction target recorded meanwhile
            self.aggregates.update(self.store.checkout([subject_id]))
            self.loaded.add(subject_id)
        return self.aggregates.get(subject_id)
