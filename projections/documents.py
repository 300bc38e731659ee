"""Typed status documents and fact records: what queries answer, before any format.

A status document is a subject's state at a moment in the domain's words (a
platform's channels, hosts, domain and store listings; an account's status and
the event behind it); a fact record is a stored fact with its place in the store.
Adapters turn them into JSON, tables or HTML.

They are plain dataclasses, not frozen ones: a rebuild makes several for every event, and a
frozen dataclass takes about seven times as long to make (its `__init__` sets each field
through `object.__setattr__`). Nothing changes one once made, but the status fold, which
dates a platform's fresh document (`projections.status.with_since`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import cache
from typing import Any, Literal

from domain import Subject
from domain.account import AccountState
from domain.platform import PlatformState, overall_of
from domain.timeline import State
from domain.values import (
    AccountStatus,
    AppStore,
    Availability,
    Channel,
    HostingScope,
    Status,
    SubjectKey,
)

OVERALL = "overall"  # the channel that sums up a subject: a platform's overall status
CHANNEL_ORDER = (OVERALL, *Channel)


@dataclass
class EventRef:
    """The event that set part of a status."""

    event_id: str
    type: str
    occurred_at: datetime
    provider: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, fact: Subject.Action) -> EventRef:
        provider = fact.provider if isinstance(fact, Subject.ProviderAction) else None
        return cls(fact.event_id, fact.type, fact.occurred_at, provider or None, fact.reason)


@dataclass
class Measure:
    """A measure in force: the event that keeps a subject below `online` (`active`), and the
    channels it binds (none for an account)."""

    event: EventRef
    channels: tuple[Channel, ...] = ()


@dataclass
class RegionAnswer:
    """A country's own answer, where it differs from the worldwide one."""

    status: Status
    channels: dict[Channel, Availability] | None  # None for an account
    measures: tuple[Measure, ...]


@dataclass
class HostEntry:
    provider: str
    scope: HostingScope
    since: EventRef


@dataclass
class ServiceEntry:
    provider: str
    service: str


@dataclass
class PlatformDocument:
    name: str
    status: Availability
    channels: dict[Channel, Availability]
    hosting: tuple[HostEntry, ...]
    domain: Literal["active", "suspended"]
    shut_down: bool
    app_stores: dict[AppStore, Literal["listed", "delisted"]]
    services: tuple[ServiceEntry, ...]
    registered_at: datetime
    since: datetime | None = None  # when the overall status began (set by the status fold)
    last_event: EventRef | None = None  # the event that began it (None: a suspension ran out)
    measures: tuple[Measure, ...] = ()  # in force where no country has a value of its own
    regions: dict[str, RegionAnswer] = field(default_factory=dict)  # countries that differ


@dataclass
class AccountDocument:
    status: AccountStatus
    since: datetime | None = None
    until: datetime | None = None
    last_event: EventRef | None = None
    measures: tuple[Measure, ...] = ()
    regions: dict[str, RegionAnswer] = field(default_factory=dict)


StatusDocument = PlatformDocument | AccountDocument


def readings(document: StatusDocument) -> dict[str, Status]:
    """The document's status per channel, `overall` first."""
    found: dict[str, Status] = {OVERALL: document.status}
    if isinstance(document, PlatformDocument):
        for channel, value in document.channels.items():
            found[channel] = value
    return found


def platform_document(state: PlatformState) -> PlatformDocument:
    assert state.registration is not None
    channels = state.channels
    measures = tuple(Measure(EventRef.of(m), tuple(c)) for m, c in state.measures(None))
    world = RegionAnswer(overall_of(channels), channels, measures)
    regions = {}
    for region in sorted(state.own_regions()):
        there = state.channels_in(region)
        answer = RegionAnswer(
            overall_of(there),
            there,
            tuple(Measure(EventRef.of(m), tuple(c)) for m, c in state.measures(region)),
        )
        if answer != world:
            regions[region] = answer
    return PlatformDocument(
        name=state.registration.name,
        status=overall_of(channels),
        channels=channels,
        hosting=tuple(  # in the order they began (folds that meet may hold them otherwise)
            HostEntry(host.provider, host.scope, EventRef.of(host.since))
            for host in sorted(state.hosting.values(), key=lambda host: host.since.order)
        ),
        domain="suspended" if state.domain_suspended else "active",
        shut_down=state.withdrawn.world[0],
        app_stores={
            store: "delisted" if state.listing(store).world[0] else "listed"
            for store in state.stores
        },
        services=tuple(
            ServiceEntry(action.provider, service)
            for (_, service), action in sorted(state.services.items(), key=lambda s: s[0])
        ),
        registered_at=state.registration.occurred_at,
        measures=measures,
        regions=regions,
    )


def account_document(state: AccountState) -> AccountDocument:
    measures = tuple(Measure(EventRef.of(m)) for m in state.measures(None))
    world = RegionAnswer(state.status_in(None), None, measures)
    regions = {}
    for region in sorted(state.own_regions()):
        there = tuple(Measure(EventRef.of(m)) for m in state.measures(region))
        answer = RegionAnswer(state.status_in(region), None, there)
        if answer != world:
            regions[region] = answer
    return AccountDocument(
        status=state.status,
        since=state.since,
        until=state.until,
        last_event=EventRef.of(state.cause) if state.cause is not None else None,
        measures=measures,
        regions=regions,
    )


def in_region(document: StatusDocument, region: str) -> StatusDocument:
    """The answer in a country: its own where it differs from the worldwide one, else the
    worldwide one (a country's answer lists no other countries)."""
    answer = document.regions.get(region)
    if isinstance(document, PlatformDocument):
        if answer is None:
            return replace(document, regions={})
        assert isinstance(answer.status, Availability) and answer.channels is not None
        return replace(
            document,
            status=answer.status,
            channels=answer.channels,
            measures=answer.measures,
            regions={},
        )
    if answer is None:
        return replace(document, regions={})
    assert isinstance(answer.status, AccountStatus)
    return replace(document, status=answer.status, measures=answer.measures, regions={})


def document(state: State) -> StatusDocument:
    if isinstance(state, PlatformState):
        return platform_document(state)
    assert isinstance(state, AccountState)
    return account_document(state)


LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


@cache
def own_fields(fact_type: type[Subject.Fact]) -> tuple[str, ...]:
    """A fact type's own fields, in order: not the library's, nor what the store sets."""
    return tuple(
        f.name
        for f in fields(fact_type)
        if f.name not in LIBRARY_FIELDS and f.name not in ("event_id", "recorded_by")
    )


@dataclass
class FactRecord:
    """A stored fact: its type, subject and own fields (times as datetimes, absent values
    left out, in the order of the event's fields), with the store's id, time and position."""

    type: str
    subject: SubjectKey
    fields: dict[str, Any]
    event_id: str
    recorded_at: datetime
    position: int | None
    recorded_by: str | None = None

    @classmethod
    def of(cls, fact: Subject.Fact, subject: SubjectKey, position: int | None) -> FactRecord:
        own = {}
        for name in own_fields(type(fact)):
            value = getattr(fact, name)
            if value is not None and value != []:
                own[name] = value
        return cls(
            fact.type, subject, own, fact.event_id, fact.recorded_at, position, fact.recorded_by
        )

    @property
    def occurred_at(self) -> datetime | None:
        return self.fields.get("occurred_at")


@dataclass(frozen=True)
class RetractionRef:
    event_id: str
    recorded_at: datetime
    reason: str


@dataclass(frozen=True)
class HistoryEntry:
    """A fact as history shows it: its record, and whether (and how) it was retracted."""

    record: FactRecord
    retraction: RetractionRef | None = field(default=None)

    @property
    def retracted(self) -> bool:
        return self.retraction is not None

    @classmethod
    def of(
        cls,
        fact: Subject.Action,
        subject: SubjectKey,
        position: int | None,
        retraction: Subject.EventRetracted | None,
    ) -> HistoryEntry:
        ref = (
            RetractionRef(retraction.event_id, retraction.recorded_at, retraction.reason)
            if retraction is not None
            else None
        )
        return cls(FactRecord.of(fact, subject, position), ref)
