"""A subject's status over valid time, as the status read models hold it.

`snapshots` cuts the subject's (current-knowledge) timeline into periods
`[valid_from, valid_to)` with one status document each: one per event, plus one
where a timed suspension runs out. `intervals` merges them, per channel, into
the runs during which the channel had one status. Both are pure functions of
the subject, so recomputing a subject's rows after a late fact is always exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import Subject
from domain.account import AccountState
from domain.platform import PlatformState
from projections.documents import account_json, platform_json

OVERALL = "overall"


@dataclass(frozen=True)
class Snapshot:
    valid_from: datetime
    valid_to: datetime | None
    readings: dict[str, str]  # OVERALL and, for platforms, each channel -> status
    event_id: str | None  # the fact that began it (None where a suspension ran out)
    document: dict[str, Any]  # the status document, without the query's as_of/known_at


@dataclass(frozen=True)
class Interval:
    channel: str
    valid_from: datetime
    valid_to: datetime | None
    status: str
    event_id: str | None


def snapshots(subject: Subject) -> list[Snapshot]:
    points: list[tuple[datetime, str | None, dict[str, str], dict[str, Any]]] = []
    state = subject.initial_state(subject.timeline)

    def mark(moment: datetime, event_id: str | None) -> None:
        if points and points[-1][0] == moment:
            points.pop()  # several changes at one moment: the last one holds
        points.append((moment, event_id, *describe(state)))

    for action in subject.timeline:
        pending = state.next_change()
        if pending is not None and pending <= action.occurred_at:
            state.advance(pending)
            mark(pending, None)
        state.apply(action)
        mark(action.occurred_at, action.event_id)
    pending = state.next_change()
    if pending is not None:
        state.advance(pending)
        mark(pending, None)
    ends: list[datetime | None] = [p[0] for p in points[1:]]
    ends.append(None)
    if not points:
        return []
    return [
        Snapshot(start, end, readings, event_id, document)
        for (start, event_id, readings, document), end in zip(points, ends, strict=True)
    ]


def describe(state: Any) -> tuple[dict[str, str], dict[str, Any]]:
    if isinstance(state, PlatformState):
        channels = {channel.value: value.value for channel, value in state.channels.items()}
        return {OVERALL: state.overall.value, **channels}, platform_json(state)
    assert isinstance(state, AccountState)
    return {OVERALL: state.status.value}, account_json(state)


def intervals(periods: list[Snapshot]) -> list[Interval]:
    """Per channel, the runs of one status (a channel appears with its platform's stores)."""
    runs: dict[str, list[Interval]] = {}
    for period in periods:
        for channel, status in period.readings.items():
            channel_runs = runs.setdefault(channel, [])
            if channel_runs and channel_runs[-1].status == status:
                last = channel_runs[-1]
                channel_runs[-1] = Interval(
                    channel, last.valid_from, period.valid_to, status, last.event_id
                )
            else:
                channel_runs.append(
                    Interval(channel, period.valid_from, period.valid_to, status, period.event_id)
                )
    return [interval for channel_runs in runs.values() for interval in channel_runs]
