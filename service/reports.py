"""Reports over a period `[start, end)`: how long each subject and channel spent in each
status, its outages and what opened and closed them, who acted, how long each provider's
measures kept each subject unavailable (accountability), the supporting services lost and
regained, account suspensions and bans, and the period's events.

Everything is computed from the status intervals and the subjects' histories as the
query service gives them (the read models, at any `known_at`): no event is replayed here.
Durations are exact (`timedelta`, to the microsecond).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain import Platform
from domain.values import (
    STATUSES,
    Status,
    SubjectKey,
    SubjectKind,
    provider_identity,
)
from projections.documents import (
    CHANNEL_ORDER,
    OVERALL,
    FactRecord,
    HistoryEntry,
    Measure,
    in_region,
)
from projections.status import Interval
from service.queries import Period

NOTHING = timedelta()


@dataclass(frozen=True)
class Selection:
    """Which subjects a report covers: those named, else every subject (of one kind), and of
    those only the ones a provider acted on in the period, if one is given; and where: their
    worldwide answers, or their answers in a country (`region`)."""

    subjects: tuple[SubjectKey, ...] = ()
    kind: SubjectKind | None = None
    provider: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Header:
    """What makes a report citable: made again with the same header, it gives the same."""

    start: datetime
    end: datetime
    selection: Selection
    known_at: datetime  # the store's knowledge the report reflects
    position: int  # the store's last position when it was made
    version: str  # of this tool
    made_at: datetime


@dataclass(frozen=True)
class ChannelTime:
    """How a subject's channel spent the period."""

    subject: SubjectKey
    channel: str
    by_status: dict[Status, timedelta]
    before_existence: timedelta  # the part of the period before the subject existed

    @property
    def existed(self) -> timedelta:
        return sum(self.by_status.values(), NOTHING)

    @property
    def available(self) -> timedelta:
        return sum((t for s, t in self.by_status.items() if s.available), NOTHING)

    @property
    def share_available(self) -> float | None:
        """The share of the time it existed in the period that it was available (online, or
        active); None if it did not exist in the period."""
        return self.available / self.existed if self.existed else None


@dataclass(frozen=True)
class Outage:
    """A run of one status in which a channel was not available (an account not active),
    with its own bounds (`end` None while it lasts) and its part of the period."""

    subject: SubjectKey
    channel: str
    status: Status
    start: datetime
    end: datetime | None
    duration: timedelta  # within the period
    opened_by: FactRecord | None
    closed_by: FactRecord | None  # None: ongoing, or a timed suspension ran out

    @property
    def ongoing(self) -> bool:
        return self.end is None

    @property
    def ran_out(self) -> bool:
        """A timed suspension that ended by itself."""
        return self.end is not None and self.closed_by is None


@dataclass(frozen=True)
class ProviderAction:
    """An action a provider took in the period, with the outage time it opened (on the
    subject's overall channel, within the period)."""

    provider: str
    record: FactRecord
    outage: timedelta


@dataclass(frozen=True)
class ServiceSpan:
    """A supporting service a subject lost (and regained, or not yet), overlapping the
    period; `duration` is the part within it."""

    subject: SubjectKey
    provider: str
    service: str
    lost_at: datetime
    regained_at: datetime | None
    duration: timedelta
    lost_by: FactRecord
    regained_by: FactRecord | None


@dataclass(frozen=True)
class Accountability:
    """How long a provider's measures bound a subject's channel (an account: `overall`) within
    the period, in a country (None: the worldwide answer), and how many measures that was.
    Measures that bind at once each count the full time: both providers were needed."""

    provider: str
    subject: SubjectKey
    channel: str
    region: str | None
    time: timedelta
    measures: int
    since: datetime  # when the first of them took effect
    ongoing: bool  # one is still in force at the end of the period


@dataclass(frozen=True)
class Report:
    header: Header
    subjects: list[SubjectKey]
    channels: list[ChannelTime]
    outages: list[Outage]  # platforms' channels and accounts
    providers: list[ProviderAction]
    services: list[ServiceSpan]
    events: list[HistoryEntry]  # of the period, in valid-time order
    intervals: dict[SubjectKey, list[Interval]] = field(default_factory=dict)  # whole lives
    accountability: list[Accountability] = field(default_factory=list)
    accounts: list[Outage] = field(init=False)  # suspensions and bans

    def __post_init__(self) -> None:
        spells = [o for o in self.outages if o.subject.kind == "account"]
        object.__setattr__(self, "accounts", spells)


def clip(start: datetime, end: datetime | None, lo: datetime, hi: datetime) -> timedelta:
    """The part of [start, end) (end None: open) within [lo, hi)."""
    a, b = max(start, lo), min(end or hi, hi)
    return b - a if b > a else NOTHING


def channel_times(
    key: SubjectKey, intervals: Sequence[Interval], start: datetime, end: datetime
) -> list[ChannelTime]:
    period = end - start
    found = []
    for channel in dict.fromkeys(i.channel for i in intervals):
        runs = [i for i in intervals if i.channel == channel]
        by_status = {s: NOTHING for s in STATUSES if type(s) is type(runs[0].status)}
        for run in runs:
            by_status[run.status] += clip(run.valid_from, run.valid_to, start, end)
        existed = sum(by_status.values(), NOTHING)
        found.append(ChannelTime(key, channel, by_status, period - existed))
    return found


def outages(
    key: SubjectKey,
    intervals: Sequence[Interval],
    facts: dict[str, FactRecord],
    start: datetime,
    end: datetime,
) -> list[Outage]:
    found = []
    for channel in dict.fromkeys(i.channel for i in intervals):
        runs = [i for i in intervals if i.channel == channel]
        for n, run in enumerate(runs):
            if run.status.available:
                continue
            duration = clip(run.valid_from, run.valid_to, start, end)
            if not duration:
                continue
            following = runs[n + 1] if n + 1 < len(runs) else None
            closer = following.event_id if following is not None else None
            found.append(
                Outage(
                    key,
                    channel,
                    run.status,
                    run.valid_from,
                    run.valid_to,
                    duration,
                    facts.get(run.event_id) if run.event_id else None,
                    facts.get(closer) if closer else None,
                )
            )
    return found


LOST, REGAINED = Platform.ServiceTerminated.__name__, Platform.ServiceRestored.__name__


def service_spans(
    key: SubjectKey, history: Sequence[HistoryEntry], start: datetime, end: datetime
) -> list[ServiceSpan]:
    """Pairs each `ServiceTerminated` with the next `ServiceRestored` of the same provider
    and service (valid-time order), and keeps the spans that overlap the period."""
    open_spans: dict[tuple[str, str], FactRecord] = {}
    closed: list[tuple[FactRecord, FactRecord | None]] = []
    for entry in history:
        record = entry.record
        if entry.retracted or record.type not in (LOST, REGAINED):
            continue
        which = (provider_identity(record.fields["provider"]), record.fields["service"])
        if record.type == LOST:
            open_spans.setdefault(which, record)
        elif which in open_spans:
            closed.append((open_spans.pop(which), record))
    closed += [(lost, None) for lost in open_spans.values()]
    found = []
    for lost, regained in closed:
        lost_at = lost.fields["occurred_at"]
        regained_at = regained.fields["occurred_at"] if regained else None
        duration = clip(lost_at, regained_at, start, end)
        if duration or start <= lost_at < end:
            found.append(
                ServiceSpan(
                    key,
                    lost.fields["provider"],
                    lost.fields["service"],
                    lost_at,
                    regained_at,
                    duration,
                    lost,
                    regained,
                )
            )
    return sorted(found, key=lambda s: (s.lost_at, s.service))


def in_period(entry: HistoryEntry, start: datetime, end: datetime) -> bool:
    occurred = entry.record.occurred_at
    return not entry.retracted and occurred is not None and start <= occurred < end


def provider_actions(
    history: Sequence[HistoryEntry],
    intervals: Sequence[Interval],
    start: datetime,
    end: datetime,
) -> list[ProviderAction]:
    opened: dict[str, timedelta] = {}
    for run in intervals:
        if run.channel == OVERALL and not run.status.available and run.event_id:
            opened[run.event_id] = opened.get(run.event_id, NOTHING) + clip(
                run.valid_from, run.valid_to, start, end
            )
    return [
        ProviderAction(
            entry.record.fields["provider"],
            entry.record,
            opened.get(entry.record.event_id, NOTHING),
        )
        for entry in history
        if in_period(entry, start, end) and "provider" in entry.record.fields
    ]


def accountability(
    key: SubjectKey,
    periods: Sequence[Period],
    start: datetime,
    end: datetime,
    region: str | None = None,
) -> list[Accountability]:
    """Per provider, channel and country (None: worldwide), the time within the period during
    which the provider's measures in force bound the channel, from the subject's periods: in
    one country, if `region` is given (its own answer, or the worldwide one)."""
    spans: dict[tuple[str, str, str | None], tuple[str, timedelta, set[str]]] = {}
    since: dict[tuple[str, str, str | None], datetime] = {}
    ongoing: set[tuple[str, str, str | None]] = set()
    for period in periods:
        spent = clip(period.valid_from, period.valid_to, start, end)
        if not spent:
            continue
        lasting = period.valid_to is None or period.valid_to >= end
        document = period.document
        answers: list[tuple[str | None, tuple[Measure, ...]]]
        if region is not None:
            answers = [(region, in_region(document, region).measures)]
        else:
            answers = [(None, document.measures)]
            answers += [(code, answer.measures) for code, answer in document.regions.items()]
        for where, measures in answers:
            for measure in measures:
                provider = measure.event.provider or ""
                for channel in measure.channels or (OVERALL,):
                    at = (provider_identity(provider), str(channel), where)
                    name, time, events = spans.get(at, (provider, NOTHING, set()))
                    spans[at] = (name, time + spent, events | {measure.event.event_id})
                    since[at] = min(
                        since.get(at, measure.event.occurred_at), measure.event.occurred_at
                    )
                    if lasting:
                        ongoing.add(at)
    return [
        Accountability(name, key, at[1], at[2], time, len(events), since[at], at in ongoing)
        for at, (name, time, events) in spans.items()
    ]


@dataclass(frozen=True)
class ProviderStanding:
    """A provider over a period: the subjects its measures kept unavailable, and how long
    they bound each channel in each country (None: worldwide), most first."""

    provider: str
    subjects: int
    time: timedelta  # the longest it bound any one subject's channel
    bound: list[Accountability]


def standings(rows: Sequence[Accountability]) -> list[ProviderStanding]:
    """Providers ranked by the subjects their measures cut off, then by the time they bound."""
    by_provider: dict[str, list[Accountability]] = {}
    for row in rows:
        by_provider.setdefault(provider_identity(row.provider), []).append(row)
    found = [
        ProviderStanding(
            bound[0].provider,
            len({row.subject for row in bound}),
            max(row.time for row in bound),
            sorted(bound, key=lambda row: (-row.time, row.subject.key)),
        )
        for bound in by_provider.values()
    ]
    return sorted(found, key=lambda p: (-p.subjects, -p.time, provider_identity(p.provider)))


def build(
    header: Header,
    keys: Sequence[SubjectKey],
    intervals: dict[SubjectKey, list[Interval]],
    histories: dict[SubjectKey, list[HistoryEntry]],
    periods: dict[SubjectKey, list[Period]],
) -> Report:
    """The report of these subjects, from their intervals, histories and periods."""
    start, end = header.start, header.end
    wanted = header.selection.provider
    by_wanted = provider_identity(wanted) if wanted is not None else None
    channels, found_outages, actions, spans, events, bound = [], [], [], [], [], []
    for key in keys:
        runs, history = intervals[key], histories[key]
        facts = {e.record.event_id: e.record for e in history}
        channels += channel_times(key, runs, start, end)
        found_outages += outages(key, runs, facts, start, end)
        actions += provider_actions(history, runs, start, end)
        spans += service_spans(key, history, start, end)
        events += [e for e in history if in_period(e, start, end)]
        bound += accountability(key, periods[key], start, end, header.selection.region)
    if by_wanted is not None:
        actions = [a for a in actions if provider_identity(a.provider) == by_wanted]
        bound = [a for a in bound if provider_identity(a.provider) == by_wanted]

    def when(entry: HistoryEntry) -> tuple[datetime, int]:
        return entry.record.fields["occurred_at"], entry.record.position or 0

    return Report(
        header,
        list(keys),
        channels,
        sorted(found_outages, key=lambda o: (o.start, o.subject.key, o.channel)),
        sorted(
            actions, key=lambda a: (provider_identity(a.provider), a.record.fields["occurred_at"])
        ),
        spans,
        sorted(events, key=when),
        {key: intervals[key] for key in keys},
        sorted(
            bound,
            key=lambda a: (
                provider_identity(a.provider),
                a.subject.key,
                a.region or "",
                CHANNEL_ORDER.index(a.channel),
            ),
        ),
    )
