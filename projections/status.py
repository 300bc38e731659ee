"""A subject's status over valid time, as the status read models hold it.

`snapshots` cuts the subject's (current-knowledge) timeline into periods
`[valid_from, valid_to)` with one status document each: one per event, plus one
where a timed suspension runs out. `intervals` merges them, per channel, into
the runs during which the channel had one status. Both are pure functions of
the subject, so recomputing a subject's rows after a late fact is always exact.
(Periods and runs, made for every event, are plain dataclasses: see `projections.documents`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from domain import Subject
from domain.clock import FIRST
from domain.timeline import State
from domain.values import AccountStatus, Status
from projections.documents import (
    CHANNEL_ORDER,
    OVERALL,
    EventRef,
    PlatformDocument,
    StatusDocument,
    document,
    readings,
)


@dataclass
class Snapshot:
    valid_from: datetime
    valid_to: datetime | None
    readings: dict[str, Status]  # OVERALL and, for platforms, each channel -> status
    event_id: str | None  # the fact that began it (None where a suspension ran out)
    document: StatusDocument
    causes: dict[str, str | None]  # channel -> the fact at valid_from that changed it


@dataclass
class Interval:
    """A run of one status on one channel: `[valid_from, valid_to)`, open if `valid_to` is
    None, begun by `event_id` (None where a timed suspension ran out)."""

    channel: str
    valid_from: datetime
    valid_to: datetime | None
    status: Status
    event_id: str | None

    @property
    def order(self) -> tuple[int, datetime]:
        """Channels in their fixed order (overall, web, ios, android), then valid time."""
        return CHANNEL_ORDER.index(self.channel), self.valid_from


def snapshots(subject: Subject, known_at: datetime | None = None) -> list[Snapshot]:
    """The subject's periods, from its timeline as known now (or at `known_at`)."""
    return fold_periods(subject.initial_state(), [], subject.view(known_at)).periods


@dataclass(frozen=True)
class Folded:
    """Periods folded from a timeline, and where the fold stood after its last action
    (before a timed suspension that follows it runs out): enough to go on from there."""

    periods: list[Snapshot]
    state: State  # after the last action
    last: Subject.Action | None


def fold_periods(
    state: State, points: list[Snapshot], timeline: Iterable[Subject.Action]
) -> Folded:
    """Folds `timeline` into `state`, adding a period after `points` (the periods so far,
    the last still open) wherever the status can change."""

    def mark(moment: datetime, action: Subject.Action | None) -> None:
        event_id = action.event_id if action is not None else None
        now = document(state)
        values = readings(now)
        before = points[-1].readings if points else {}
        causes = {c: event_id for c, status in values.items() if before.get(c) != status}
        merged = None
        if points and points[-1].valid_from == moment:  # several facts at one moment:
            merged = points.pop()  # the last state holds, each change its cause
            causes = merged.causes | causes
        if isinstance(now, PlatformDocument):
            # Of the facts at this moment, the one that changed the overall status began it.
            overall_cause = causes.get(OVERALL)
            cause = EventRef.of(action) if action and action.event_id == overall_cause else None
            if (
                cause is None
                and merged is not None
                and isinstance(merged.document, PlatformDocument)
            ):
                earlier = merged.document.last_event
                cause = earlier if earlier and earlier.event_id == overall_cause else None
            with_since(now, moment, cause, points[-1] if points else None)
        points.append(Snapshot(moment, None, values, event_id, now, causes))

    last = None
    for action in timeline:
        pending = state.next_change()
        if pending is not None and pending <= action.occurred_at:
            state.advance(pending)
            mark(pending, None)
        state.apply(action)
        mark(action.occurred_at, action)
        last = action
    after_last = state.copy()
    pending = state.next_change()
    if pending is not None:
        state.advance(pending)
        mark(pending, None)
    ends = [p.valid_from for p in points[1:]] + [None] if points else []  # none: all retracted
    periods = [
        Snapshot(p.valid_from, end, p.readings, p.event_id, p.document, p.causes)
        for p, end in zip(points, ends, strict=True)
    ]
    return Folded(periods, after_last, last)


def with_since(
    now: PlatformDocument,
    moment: datetime,
    cause: EventRef | None,
    previous: Snapshot | None,
) -> None:
    """Sets when the platform's overall status began and the event that began it (`cause`,
    None where a suspension ran out) on its document (the fold's own, just made): carried on
    from the period before while the overall status holds."""
    if previous is not None and previous.readings[OVERALL] == now.status:
        before = previous.document
        assert isinstance(before, PlatformDocument)
        now.since, now.last_event = before.since, before.last_event
    else:
        now.since, now.last_event = moment, cause


def folds(
    state: State,
    timeline: Sequence[Subject.Action],
    size: int,
    points: list[Snapshot] | None = None,
) -> Iterator[tuple[list[Snapshot], Folded]]:
    """`fold_periods` of a long timeline (after `points`, as `fold_periods` takes them),
    `size` actions at a time, so that its periods need not all be held at once: yields the
    periods each slice makes final (the last slice: all it has; an empty timeline: one slice)
    with its fold. The periods yielded, in order, are those of the whole fold."""
    points = [] if points is None else points
    for start in range(0, max(len(timeline), 1), size):
        folded = fold_periods(state, points, timeline[start : start + size])
        if start + size >= len(timeline):
            yield folded.periods, folded
            return
        assert folded.last is not None  # the slice is not empty
        # The period the slice's last action began goes on into the next slice (which may
        # merge facts at the same moment into it, or end a timed suspension after it).
        moment = folded.last.occurred_at
        at = max(i for i, p in enumerate(folded.periods) if p.valid_from == moment)
        yield folded.periods[:at], folded
        state, points = folded.state, [replace(folded.periods[at], valid_to=None)]


@dataclass(slots=True)
class OpenRun:
    """A run still in force, extended in place (a hot subject has hundreds of thousands of
    periods: one `Interval` for each would be replaced as often)."""

    valid_from: datetime
    valid_to: datetime | None
    status: Status
    event_id: str | None

    def ended(self, channel: str) -> Interval:
        return Interval(channel, self.valid_from, self.valid_to, self.status, self.event_id)


class Runs:
    """`intervals`, a few periods at a time: each run is given back once it has ended."""

    def __init__(self, current: dict[str, OpenRun] | None = None) -> None:
        self.current = {} if current is None else current  # per channel, the run in force

    def add(self, periods: Iterable[Snapshot]) -> list[Interval]:
        """Takes the next periods (final, in order); returns the runs that ended."""
        ended = []
        for period in periods:
            for channel, status in period.readings.items():
                run = self.current.get(channel)
                if run is not None and run.status == status:
                    run.valid_to = period.valid_to
                    continue
                if run is not None:
                    ended.append(run.ended(channel))
                cause = period.causes.get(channel, period.event_id)
                self.current[channel] = OpenRun(period.valid_from, period.valid_to, status, cause)
        return ended

    def end(self) -> list[Interval]:
        """The runs still in force after the last period."""
        return [run.ended(channel) for channel, run in self.current.items()]


def intervals(periods: list[Snapshot]) -> list[Interval]:
    """Per channel, the runs of one status (a channel appears with its platform's stores)."""
    runs = Runs()
    found = runs.add(periods) + runs.end()
    return sorted(found, key=lambda interval: interval.order)


@dataclass(frozen=True)
class Stretch:
    """A period over which a country has readings of its own, with the fact that began it."""

    valid_from: datetime
    valid_to: datetime | None
    readings: dict[str, Status]
    event_id: str | None


def overlaid(
    world: Sequence[Interval],
    stretches: Sequence[Stretch],
    resumed: Mapping[datetime, str | None],
) -> list[Interval]:
    """A country's runs: the worldwide runs, but over `stretches` (in order, not overlapping)
    the country's own readings, merged where a status goes on. Where a worldwide run goes
    on after a stretch, the fact that ended the stretch (`resumed`, by moment) began it.
    (The read models hold only the stretches where a country's answer is its own, never a
    copy of every run.)"""
    found = []
    for channel in CHANNEL_ORDER:
        runs = [
            (r.valid_from, r.valid_to, r.status, r.event_id) for r in world if r.channel == channel
        ]
        own = [
            (s.valid_from, s.valid_to, s.readings[channel], s.event_id)
            for s in stretches
            if channel in s.readings
        ]
        found += _merged(channel, _overlay(runs, own, resumed))
    return found


Piece = tuple[datetime, datetime | None, Status, str | None]


def _overlay(
    under: list[Piece], over: list[Piece], resumed: Mapping[datetime, str | None]
) -> list[Piece]:
    """`under` with `over` laid on it (both in order, neither overlapping itself)."""
    pieces: list[Piece] = []
    n, done = 0, None  # the next piece of `under`, and the moment `pieces` reach

    def under_until(bound: datetime | None) -> None:
        nonlocal n
        while n < len(under):
            start, end, status, cause = under[n]
            begins = start if done is None or start >= done else done
            if bound is not None and begins >= bound:
                return
            ends = end if bound is None or (end is not None and end <= bound) else bound
            pieces.append((begins, ends, status, cause if begins == start else resumed.get(begins)))
            if ends != end:
                return
            n += 1

    for piece in over:
        under_until(piece[0])
        pieces.append(piece)
        if piece[1] is None:
            return pieces
        done = ends = piece[1]
        while n < len(under) and (end := under[n][1]) is not None and end <= ends:
            n += 1
    under_until(None)
    return pieces


def _merged(channel: str, pieces: list[Piece]) -> list[Interval]:
    """Runs of one status from pieces in order: a piece that goes on a run's status extends
    it (the run keeps the fact that began it)."""
    runs: list[Interval] = []
    for start, end, status, cause in pieces:
        last = runs[-1] if runs else None
        if last is not None and last.status == status and last.valid_to == start:
            last.valid_to = end
        else:
            runs.append(Interval(channel, start, end, status, cause))
    return runs


def from_the_start(runs: Sequence[Interval]) -> list[Interval]:
    """An account's runs with the time before its first fact as `active`: an account counts
    as active before its first event (a platform does not exist before its registration)."""
    found = list(runs)
    first = next((n for n, r in enumerate(found) if r.channel == OVERALL), None)
    if first is None or found[first].valid_from == FIRST:
        return found
    run = found[first]
    if run.status == AccountStatus.ACTIVE:
        found[first] = replace(run, valid_from=FIRST)
    else:
        found.insert(first, Interval(OVERALL, FIRST, run.valid_from, AccountStatus.ACTIVE, None))
    return found
