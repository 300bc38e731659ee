"""The reference the read models are checked against: the `Queries` port answered by
folding the subjects' histories as known at `known_at` (the domain's own rules, replayed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from domain import SUBJECT_CLASSES, Subject
from domain.values import Status, SubjectKey, SubjectKind, provider_identity
from projections.documents import FactRecord, HistoryEntry, document, in_region, readings
from projections.status import Interval, Snapshot, intervals, snapshots
from service.application import Deplatforming
from service.queries import (
    Period,
    SubjectStatus,
    change_order,
    no_record,
    not_yet,
    nothing_known,
    sort_key,
)


class FoldQueries:
    """The `Queries` port, folded from the event store."""

    def __init__(self, app: Deplatforming) -> None:
        self.app = app

    def _subject(self, key: SubjectKey, known_at: datetime | None) -> Subject:
        subject = self.app.load(key.id)
        if subject is None:
            raise no_record(key)
        if known_at is not None and not subject.was_known_at(known_at):
            raise nothing_known(subject.subject, known_at)
        return subject

    def changed(self, start: datetime, end: datetime) -> list[SubjectKey]:
        return sorted(
            (
                s.subject
                for s in self.app.subjects()
                if any(start < p.valid_from <= end for p in snapshots(s))
            ),
            key=change_order,
        )

    def probe(self) -> None:
        """The fold reads the event store: nothing to probe beyond it."""

    def exists(self, key: SubjectKey, known_at: datetime | None) -> bool:
        subject = self.app.load(key.id)
        return subject is not None and (known_at is None or subject.was_known_at(known_at))

    def status(self, key: SubjectKey, as_of: datetime, known_at: datetime | None) -> SubjectStatus:
        subject = self._subject(key, known_at)
        found = status_of(subject, as_of, known_at)
        if found is None:
            raise not_yet(subject.subject, as_of, subject.exists_from(known_at))
        return found

    def statuses(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None = None,
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> list[SubjectStatus]:
        found = (
            found.in_region(region).stamped(stamp or known_at)
            for s in self.app.subjects()
            if s.exists_at(as_of, known_at) and (found := status_of(s, as_of, known_at)) is not None
        )
        return sorted(
            (s for s in found if s is not None and status in (None, s.status)),
            key=lambda s: sort_key(s.subject),
        )

    def page(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None,
        kind: SubjectKind | None,
        limit: int,
        offset: int,
        *,
        search: str | None = None,
        provider: str | None = None,
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        wanted = provider_identity(provider) if provider else None

        def acted(key: SubjectKey) -> bool:
            return any(
                not entry.retracted
                and provider_identity(entry.record.fields.get("provider", "")) == wanted
                and (entry.record.occurred_at or as_of) <= as_of
                for entry in self.history(key, known_at)
            )

        found = [
            s
            for s in self.statuses(as_of, known_at, status, region, stamp)
            if kind in (None, s.subject.kind)
            and (not search or search.casefold() in s.subject.identity)
            and (wanted is None or acted(s.subject))
        ]
        return found[offset : offset + limit], len(found)

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None,
        limit: int | None = None,
        offset: int = 0,
        region: str | None = None,
        between: tuple[datetime, datetime] | None = None,
    ) -> list[HistoryEntry]:
        subject = self._subject(key, known_at)
        positions = self.app.index.select_positions(subject.id)
        facts = sorted(
            (
                f
                for f in subject.facts.values()
                if isinstance(f, Subject.Action)
                and (known_at is None or f.recorded_at <= known_at)
                and (region is None or region in (getattr(f, "regions", None) or [region]))
                and (between is None or between[0] < f.occurred_at <= between[1])
            ),
            key=lambda a: a.order,
        )[offset : None if limit is None else offset + limit]
        return [
            HistoryEntry.of(
                f,
                subject.subject,
                positions.get(f.originator_version),
                subject.retracted_by(f, known_at),
            )
            for f in facts
        ]

    def naming(self, region: str, known_at: datetime | None, limit: int) -> list[FactRecord]:
        found = [
            entry.record
            for s in self.app.subjects()
            if known_at is None or s.was_known_at(known_at)
            for entry in self.history(s.subject, known_at, region=region)
            if not entry.retracted and region in entry.record.fields.get("regions", ())
        ]
        found.sort(key=lambda r: (r.recorded_at, r.subject.id.hex, r.position or 0), reverse=True)
        return found[:limit]

    def acted_on(
        self, provider: str, start: datetime, end: datetime, known_at: datetime | None
    ) -> list[SubjectKey]:
        wanted = provider_identity(provider)
        return sorted(
            (
                s.subject
                for s in self.app.subjects()
                if (known_at is None or s.was_known_at(known_at))
                and any(
                    not entry.retracted
                    and provider_identity(entry.record.fields.get("provider", "")) == wanted
                    and start <= (entry.record.occurred_at or end) < end
                    for entry in self.history(s.subject, known_at)
                )
            ),
            key=sort_key,
        )

    def periods(
        self, keys: Sequence[SubjectKey], start: datetime, end: datetime, known_at: datetime | None
    ) -> dict[SubjectKey, list[Period]]:
        subjects = self.app.load_many([key.id for key in keys])
        found: dict[SubjectKey, list[Period]] = {}
        for key in keys:
            subject = subjects.get(key.id)
            known = subject is not None and (known_at is None or subject.was_known_at(known_at))
            found[key] = [
                Period(p.valid_from, p.valid_to, p.document)
                for p in (snapshots(subject, known_at) if known and subject else [])
                if p.valid_from < end
                and (p.valid_to is None or p.valid_to > start)
                and (not p.document.status.available or p.document.regions)
            ]
        return found

    def intervals(
        self, keys: Sequence[SubjectKey], known_at: datetime | None, region: str | None = None
    ) -> dict[SubjectKey, list[Interval]]:
        subjects = self.app.load_many([key.id for key in keys])
        return {
            key: intervals(in_country(snapshots(subject, known_at), region))
            if subject is not None and (known_at is None or subject.was_known_at(known_at))
            else []
            for key, subject in ((key, subjects.get(key.id)) for key in keys)
        }


def status_of(subject: Subject, as_of: datetime, known_at: datetime | None) -> SubjectStatus | None:
    """The subject's status at `as_of`, or None where it did not exist yet."""
    if subject.exists_at(as_of, known_at):
        # The period in force, as the read models hold it (with since when, and why).
        periods = snapshots(subject, known_at)
        found = next(p for p in reversed(periods) if p.valid_from <= as_of)
        return SubjectStatus(subject.subject, as_of, known_at, found.document)
    state = SUBJECT_CLASSES[subject.kind].state_before_first_fact(subject.key)
    if state is None:
        return None
    return SubjectStatus(subject.subject, as_of, known_at, document(state))


def in_country(periods: list[Snapshot], region: str | None) -> list[Snapshot]:
    """The periods' readings in a country: where its answer is its own, the period's fact
    began whatever changed; elsewhere the worldwide causes hold."""
    if region is None:
        return periods
    return [
        replace(
            p,
            readings=readings(in_region(p.document, region)),
            causes={} if region in p.document.regions else p.causes,
        )
        for p in periods
    ]
