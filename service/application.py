"""The application service: record facts (one or many, atomically), retract them, and ask
what the store knew of a subject at any moment.

Facts are validated in order against the store plus the facts accepted before
them in the same batch; a batch is written in one transaction, with its entries
in the event-id index, so an atomic import either lands whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain import FACT_TYPES, SUBJECT_CLASSES, Platform, Subject
from domain.account import AccountState
from domain.clock import from_micros, iso, micros, now
from domain.errors import RuleViolation, UnknownSubject
from domain.platform import PlatformState
from domain.values import SubjectKey
from projections.documents import history_record, timeline_record
from projections.runner import Runner
from projections.status import OVERALL, describe, intervals, snapshots
from service.ports import EventIndex, IndexedEvent, StatusReadModels

log = structlog.get_logger(__name__)

WRITE_ATTEMPTS = 5
CHANNEL_ORDER = [OVERALL, "web", "ios", "android"]
PAGE = 1000


@dataclass(frozen=True)
class NewFact:
    """An input fact, validated for form, ready for its subject's rules."""

    type: str
    subject: SubjectKey | None  # None only for a retraction that names no subject
    event_id: str
    fields: Mapping[str, Any]  # the event's own fields, without event_id
    digest: str  # of the normalised content: same id and digest is a duplicate
    label: int | None = None  # where it came from (an input line), echoed in rejections


@dataclass(frozen=True)
class Rejection:
    label: int | None
    event_id: str
    error: str
    conflicts_with: str | None = None


@dataclass
class Outcome:
    recorded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    committed: bool = False


@dataclass(frozen=True)
class SubjectStatus:
    subject: SubjectKey  # as first spelled
    as_of: datetime
    known_at: datetime
    document: dict[str, Any]  # status, channels, hosting...: see projections.documents

    @property
    def status(self) -> str:
        return self.document["status"]

    def to_json(self) -> dict[str, Any]:
        head = {
            "subject": self.subject.key,
            "kind": self.subject.kind,
            "as_of": iso(self.as_of),
            "known_at": iso(self.known_at),
        }
        return head | self.document


@dataclass(frozen=True)
class StoredFact:
    """A fact as it stands in the store's global order (for export and feeds)."""

    fact: Subject.Fact
    subject: SubjectKey
    position: int


class ConcurrentWrites(RuntimeError):
    """Other writers kept changing the same subjects; the batch was not recorded."""


class Deplatforming(Application):
    """The tracker's event store and the use cases on it."""

    name = "deplatforming"  # pinned: PostgreSQL tables are named after it
    runner: Runner | None = None  # keeps the read models up to date; see attach()

    def attach(self, read_models: StatusReadModels) -> None:
        """Serves queries from these read models, kept up to date by a runner."""
        self.runner = Runner(self, read_models)

    @property
    def index(self) -> EventIndex:
        return cast(EventIndex, self.recorder)

    # Writes ---------------------------------------------------------------------

    def record(
        self, facts: Sequence[NewFact], *, atomic: bool = True, commit: bool = True
    ) -> Outcome:
        """Records the valid facts; with `atomic`, nothing unless all are valid."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            batch = _Batch(self, facts)
            outcome = batch.run()
            if (atomic and outcome.rejected) or not commit or not batch.accepted:
                return outcome
            try:
                self.save(*batch.aggregates.values(), event_ids=batch.index_rows)
            except IntegrityError as error:
                log.warning("write conflict, retrying", attempt=attempt, error=str(error))
                continue
            outcome.committed = True
            return outcome
        raise ConcurrentWrites(f"gave up after {WRITE_ATTEMPTS} conflicting attempts")

    def load(self, subject_id: UUID) -> Subject:
        return cast(Subject, self.repository.get(subject_id))

    def load_many(
        self, subject_ids: Sequence[UUID], versions: Mapping[UUID, int] | None = None
    ) -> dict[UUID, Subject]:
        """Many subjects at once, optionally as they stood at given versions: one query
        per few thousand subjects."""
        subjects: dict[UUID, Subject] = {}
        for stored in self.index.select_events_of(subject_ids):
            if versions is not None and stored.originator_version > versions[stored.originator_id]:
                continue
            event = self.mapper.to_domain_event(stored)
            subjects[event.originator_id] = event.mutate(subjects.get(event.originator_id))
        return subjects

    # Queries ----------------------------------------------------------------------

    def subject(self, key: SubjectKey, known_at: datetime | None = None) -> Subject:
        try:
            subject = self.load(key.id)
        except AggregateNotFoundError:
            raise UnknownSubject(f"no record of {key.kind} {key.key!r}") from None
        if known_at is not None and not any(
            f.recorded_at <= known_at for f in subject.facts.values()
        ):
            raise UnknownSubject(f"nothing was known of {subject.key!r} at {iso(known_at)}")
        return subject

    def read_models(self) -> StatusReadModels | None:
        """The status read models, caught up with every event recorded so far (so that a
        write followed by a read sees the write), or None when the store has none."""
        if self.runner is None:
            return None
        self.runner.catch_up()
        return self.runner.view

    def status(
        self, key: SubjectKey, as_of: datetime | None = None, known_at: datetime | None = None
    ) -> SubjectStatus:
        """From the read models; as known at an earlier `known_at`, by folding the events."""
        read_models = self.read_models() if known_at is None else None
        known_at = known_at or now()
        as_of = as_of or known_at
        if read_models is None:
            subject = self.subject(key, known_at)
            status = status_of(subject, as_of, known_at)
            registered = cast(Platform, subject).registration if status is None else None
            registered_at = registered.occurred_at if registered else None
        else:
            row = read_models.period_at(key.id.hex, micros(as_of))
            if row is None:
                raise UnknownSubject(f"no record of {key.kind} {key.key!r}")
            key = SubjectKey(row["kind"], row["key"])
            document = json.loads(row["document"]) if row["document"] else None
            if document is None and key.kind == "account":  # before its first event: active
                document = describe(AccountState(account=key.key))[1]
            status = SubjectStatus(key, as_of, known_at, document) if document else None
            registered_at = from_micros(row["exists_from"]) if row["exists_from"] else None
        if status is None:
            since = f" (registered at {iso(registered_at)})" if registered_at else ""
            raise UnknownSubject(f"{key.key!r} did not exist yet at {iso(as_of)}{since}")
        return status

    def statuses(
        self,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        status: str | None = None,
    ) -> list[SubjectStatus]:
        """Every subject that exists at `as_of` (with that overall `status`, if given), as
        known at `known_at`: one range query on the read models, or a fold of every subject."""
        read_models = self.read_models() if known_at is None else None
        known_at = known_at or now()
        as_of = as_of or known_at
        if read_models is not None:
            return [
                SubjectStatus(
                    SubjectKey(row["kind"], row["key"]),
                    as_of,
                    known_at,
                    json.loads(row["document"]),
                )
                for row in read_models.periods_at(micros(as_of), status)
            ]
        found = (
            status_of(s, as_of, known_at) for s in self.subjects() if exists(s, as_of, known_at)
        )
        return sorted(
            (s for s in found if s is not None and status in (None, s.status)),
            key=lambda s: (s.subject.kind != "platform", s.subject.identity),
        )

    def intervals(self, key: SubjectKey) -> list[dict[str, Any]]:
        """Per channel (`overall`, `web`, `ios`, `android`), the runs of one status in valid
        time: `{channel, status, valid_from, valid_to, event_id}`, `valid_to` None if open."""
        read_models = self.read_models()
        if read_models is None:
            periods = snapshots(self.subject(key))
            runs = [
                (i.channel, i.status, i.valid_from, i.valid_to, i.event_id)
                for i in intervals(periods)
            ]
        else:
            if read_models.subject(key.id.hex) is None:
                raise UnknownSubject(f"no record of {key.kind} {key.key!r}")
            runs = [
                (
                    r["channel"],
                    r["status"],
                    from_micros(r["valid_from"]),
                    from_micros(r["valid_to"]) if r["valid_to"] is not None else None,
                    r["event_id"],
                )
                for r in read_models.intervals_of(key.id.hex)
            ]
        return [
            {
                "channel": channel,
                "status": status,
                "valid_from": iso(start),
                "valid_to": iso(end) if end else None,
                "event_id": event_id,
            }
            for channel, status, start, end, event_id in sorted(
                runs, key=lambda r: (CHANNEL_ORDER.index(r[0]), r[2])
            )
        ]

    def subjects(self) -> list[Subject]:
        """Every subject, rebuilt by one pass over the store in recording order."""
        subjects: dict[UUID, Subject] = {}
        for _, event in self._events():
            subjects[event.originator_id] = event.mutate(subjects.get(event.originator_id))
        return list(subjects.values())

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The subject's facts in valid-time order, each with its recorded_at, position and
        retraction mark: from the timeline read model, or folded as known at `known_at`."""
        read_models = self.read_models() if known_at is None else None
        if read_models is not None:
            if read_models.subject(key.id.hex) is None:
                raise UnknownSubject(f"no record of {key.kind} {key.key!r}")
            rows = read_models.timeline(key.id.hex, limit, offset)
            return [timeline_record(row) for row in rows]
        subject = self.subject(key, known_at)
        positions = self.index.select_positions(subject.id)
        facts = sorted(
            (
                f
                for f in subject.facts.values()
                if isinstance(f, Subject.Action) and (known_at is None or f.recorded_at <= known_at)
            ),
            key=lambda a: a.order,
        )[offset : None if limit is None else offset + limit]
        return [
            history_record(
                f,
                subject.subject,
                positions.get(f.originator_version),
                subject.retracted_by(f, known_at),
            )
            for f in facts
        ]

    def export(self) -> Iterator[StoredFact]:
        """Every fact in recording order, streamed page by page."""
        keys: dict[UUID, SubjectKey] = {}
        for position, event in self._events():
            if isinstance(event, Subject.Tracked):
                kind = "platform" if isinstance(event, Platform.Tracked) else "account"
                keys[event.originator_id] = SubjectKey(kind, event.key)
            else:
                yield StoredFact(event, keys[event.originator_id], position)

    def _events(self) -> Iterator[tuple[int, Any]]:
        last = 0
        while True:
            page = self.recorder.select_notifications(last, PAGE, inclusive_of_start=False)
            for notification in page:
                yield notification.id, self.mapper.to_domain_event(notification)
            if len(page) < PAGE:
                return
            last = page[-1].id


def status_of(subject: Subject, as_of: datetime, known_at: datetime) -> SubjectStatus | None:
    """The subject's status, or None for a platform not yet registered at `as_of`."""
    state = subject.state_at(as_of, known_at)
    if isinstance(state, PlatformState) and state.registration is None:
        return None
    return SubjectStatus(subject.subject, as_of, known_at, describe(state)[1])


def exists(subject: Subject, as_of: datetime, known_at: datetime) -> bool:
    """Platforms exist from registration on, accounts from their first event on."""
    return any(action.occurred_at <= as_of for action in subject.view(known_at))


class _Batch:
    """One attempt at recording a sequence of facts: the subjects they touch, loaded once."""

    def __init__(self, app: Deplatforming, facts: Sequence[NewFact]) -> None:
        self.app = app
        self.facts = facts
        self.accepted: dict[str, IndexedEvent] = {}
        self.now = now()
        targets = [f.fields["retracts"] for f in facts if f.type == "EventRetracted"]
        subjects = [f.subject.id for f in facts if f.subject is not None]
        subjects += [e.originator_id for e in app.index.select_event_ids(targets).values()]
        self.aggregates: dict[UUID, Subject] = app.load_many(subjects)
        self.loaded = set(subjects)
        # Read the index after loading: a subject loaded stale is caught by the version
        # check when saving, but an index read stale would turn duplicates into conflicts.
        self.known = app.index.select_event_ids([f.event_id for f in facts] + targets)

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
                    Rejection(fact.label, fact.event_id, str(violation), violation.conflicts_with)
                )
        return outcome

    def _lookup(self, event_id: str) -> IndexedEvent | None:
        return self.accepted.get(event_id) or self.known.get(event_id)

    def _is_duplicate(self, fact: NewFact) -> bool:
        existing = self._lookup(fact.event_id)
        if existing is None:
            return False
        if existing.digest == fact.digest:
            return True
        raise RuleViolation(
            f"event_id {fact.event_id!r} is already recorded with different content",
            conflicts_with=fact.event_id,
        )

    def _add(self, fact: NewFact) -> None:
        subject = self._subject_for(fact)
        event_class = getattr(type(subject), fact.type)
        fresh = subject.version == 1 and subject.id not in self.aggregates
        subject.record(event_class, now=self.now, event_id=fact.event_id, **fact.fields)
        if fresh:
            self.aggregates[subject.id] = subject
        self.accepted[fact.event_id] = IndexedEvent(fact.event_id, subject.id, fact.digest)

    def _subject_for(self, fact: NewFact) -> Subject:
        if fact.type == "EventRetracted":
            target_id = fact.fields["retracts"]
            target = self._lookup(target_id)
            if target is None:
                raise RuleViolation(f"event {target_id!r} is not recorded; nothing to retract")
            subject = self._loaded(target.originator_id)
            assert subject is not None
            if fact.subject is not None and fact.subject.id != subject.id:
                raise RuleViolation(
                    f"event {target_id!r} belongs to {subject.key!r}, not {fact.subject.key!r}",
                    conflicts_with=target_id,
                )
            return subject
        assert fact.subject is not None
        subject = self._loaded(fact.subject.id)
        if subject is not None:
            return subject
        if FACT_TYPES[fact.type][0] is Platform and fact.type != "PlatformRegistered":
            raise RuleViolation(
                f"unknown platform {fact.subject.key!r}: record its PlatformRegistered first"
            )
        # A subject's first fact: tracked now, kept only if the fact is accepted.
        return SUBJECT_CLASSES[fact.subject.kind].track(fact.subject)

    def _loaded(self, subject_id: UUID) -> Subject | None:
        if subject_id not in self.loaded:  # a retraction target recorded meanwhile
            self.aggregates.update(self.app.load_many([subject_id]))
            self.loaded.add(subject_id)
        return self.aggregates.get(subject_id)
