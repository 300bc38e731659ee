"""The application service: record facts (one or many, atomically), retract them, and ask
what the store knew of a subject at any moment.

Facts are validated in order against the store plus the facts accepted before
them in the same batch; a batch is written in one transaction, with its entries
in the event-id index, so an atomic import either lands whole or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain import Platform, Subject
from domain.account import AccountState
from domain.clock import from_micros, iso, micros, now
from domain.errors import UnknownSubject
from domain.platform import PlatformState
from domain.values import SubjectKey
from projections.documents import history_record, timeline_record
from projections.ports import StatusView
from projections.runner import Runner
from projections.status import OVERALL, describe, intervals, snapshots
from service.ports import EventIndex, StatusReadModels
from service.recording import Batch, NewFact, Outcome

log = structlog.get_logger(__name__)

WRITE_ATTEMPTS = 5
CHANNEL_ORDER = [OVERALL, "web", "ios", "android"]
PAGE = 1000


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

    def attach(self, view: StatusView) -> None:
        """Serves queries from these read models, kept up to date by a runner."""
        self.runner = Runner(self, view)

    @property
    def index(self) -> EventIndex:
        return cast(EventIndex, self.recorder)

    # Writes ---------------------------------------------------------------------

    def record(
        self, facts: Sequence[NewFact], *, atomic: bool = True, commit: bool = True
    ) -> Outcome:
        """Records the valid facts; with `atomic`, nothing unless all are valid."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            batch = Batch(self, facts)
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
        return cast(StatusReadModels, self.runner.view)

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

    def intervals(self, key: SubjectKey, known_at: datetime | None = None) -> list[dict[str, Any]]:
        """Per channel (`overall`, `web`, `ios`, `android`), the runs of one status in valid
        time: `{channel, status, valid_from, valid_to, event_id}`, `valid_to` None if open;
        from the read models, or folded as known at `known_at`."""
        read_models = self.read_models() if known_at is None else None
        if read_models is not None and read_models.subject(key.id.hex) is None:
            raise UnknownSubject(f"no record of {key.kind} {key.key!r}")
        return self._intervals([key], known_at, read_models)[key]

    def intervals_many(
        self, keys: Sequence[SubjectKey], known_at: datetime | None = None
    ) -> dict[SubjectKey, list[dict[str, Any]]]:
        """The intervals of many subjects (as `intervals`): one query on the read models."""
        read_models = self.read_models() if known_at is None else None
        return self._intervals(keys, known_at, read_models)

    def _intervals(
        self,
        keys: Sequence[SubjectKey],
        known_at: datetime | None,
        read_models: StatusReadModels | None,
    ) -> dict[SubjectKey, list[dict[str, Any]]]:
        runs: dict[SubjectKey, list[tuple]] = {key: [] for key in keys}
        if read_models is None:
            for key in keys:
                periods = snapshots(self.subject(key, known_at), known_at)
                runs[key] = [
                    (i.channel, i.status, i.valid_from, i.valid_to, i.event_id)
                    for i in intervals(periods)
                ]
        else:
            by_id = {key.id.hex: key for key in keys}
            for r in read_models.intervals_of(list(by_id)):
                runs[by_id[r["subject_id"]]].append(
                    (
                        r["channel"],
                        r["status"],
                        from_micros(r["valid_from"]),
                        from_micros(r["valid_to"]) if r["valid_to"] is not None else None,
                        r["event_id"],
                    )
                )
        return {
            key: [interval_json(*run) for run in sorted(found, key=channel_order)]
            for key, found in runs.items()
        }

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

    def feed(self, after: int, limit: int) -> tuple[list[StoredFact], int]:
        """The facts recorded after position `after`, in recording order, reading at most
        `limit` positions; and the position to continue from (positions may have gaps)."""
        read_models = self.read_models()
        notifications = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
        events = [(n.id, self.mapper.to_domain_event(n)) for n in notifications]
        facts = [(p, e) for p, e in events if isinstance(e, Subject.Fact)]
        ids = list({e.originator_id for _, e in facts})
        keys = read_models.keys_of([i.hex for i in ids]) if read_models else {}
        missing = [i for i in ids if i.hex not in keys]
        keys |= {s.id.hex: s.subject for s in self.load_many(missing).values()}
        cursor = notifications[-1].id if notifications else after
        return [StoredFact(e, keys[e.originator_id.hex], p) for p, e in facts], cursor

    def changes(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Subjects whose status on some channel differs between `start` and `end`, with the
        statuses then and now and the facts that occurred in between."""
        before = {s.subject: s.document for s in self.statuses(start)}
        after = {s.subject: s.document for s in self.statuses(end)}
        changed = []
        for key in sorted(before.keys() | after.keys(), key=lambda k: (k.kind, k.identity)):
            then, now_ = readings(before.get(key)), readings(after.get(key))
            differences = {
                channel: {"from": then.get(channel), "to": now_.get(channel)}
                for channel in CHANNEL_ORDER
                if then.get(channel) != now_.get(channel)
            }
            if differences:
                events = [
                    record
                    for record in self.history(key)
                    if start < datetime.fromisoformat(record["occurred_at"]) <= end
                ]
                changed.append(
                    {"subject": key.key, "kind": key.kind, "changes": differences, "events": events}
                )
        return changed

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


def channel_order(run: tuple) -> tuple[int, datetime]:
    return CHANNEL_ORDER.index(run[0]), run[2]


def interval_json(
    channel: str, status: str, start: datetime, end: datetime | None, event_id: str | None
) -> dict[str, Any]:
    return {
        "channel": channel,
        "status": status,
        "valid_from": iso(start),
        "valid_to": iso(end) if end else None,
        "event_id": event_id,
    }


def readings(document: dict[str, Any] | None) -> dict[str, str]:
    """A status document's status per channel (`overall` included); none if absent."""
    if document is None:
        return {}
    return {OVERALL: document["status"], **document.get("channels", {})}


def exists(subject: Subject, as_of: datetime, known_at: datetime) -> bool:
    """Platforms exist from registration on, accounts from their first event on."""
    return any(action.occurred_at <= as_of for action in subject.view(known_at))
