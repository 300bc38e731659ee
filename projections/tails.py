"""Extending a subject's rows with facts that sort last, without deriving them again.

While the runner follows the stream, most facts sort last in their subject's timeline. For
those the rows need not be derived from the whole timeline: the fold goes on from where the
subject's last fact left it (its `Tail`); the period that fact began, and each channel's run
in force then, get new ends; the new periods and runs are added. Any other change (a late
fact, a retraction, a subject this runner has not derived yet) derives the subject's rows
whole, and leaves a tail for the next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import Subject
from domain.timeline import State
from domain.values import SubjectKey
from projections.status import Folded, Interval, Snapshot, fold_periods, intervals


@dataclass(frozen=True)
class Tail:
    """Where a subject's rows end: the fold after its last fact, and what that fact began."""

    key: SubjectKey
    version: int  # the subject's version the rows are of
    state: State  # the fold after `last`
    last: Subject.Action  # the last fact in valid-time order
    point: Snapshot  # the period `last` began, as if still open
    run_starts: dict[str, datetime]  # per channel, when the run in force at `last` began


@dataclass(frozen=True)
class Extension:
    """New rows at the end of a subject's: the rows begun after `after` are replaced by
    `periods` and `intervals`; the period begun at `after` ends at `period_end`, and each
    channel's run in force then (begun at the first datetime) at the second."""

    subject_id: str
    after: datetime
    period_end: datetime | None
    periods: list[Snapshot]
    run_ends: dict[str, tuple[datetime, datetime | None]]
    intervals: list[Interval]


def tail_of(key: SubjectKey, version: int, folded: Folded, runs: list[Interval]) -> Tail | None:
    """The tail of rows derived whole (None if the subject has no fact left)."""
    last = folded.last
    if last is None:
        return None
    moment = last.occurred_at
    point = next(p for p in reversed(folded.periods) if p.valid_from == moment)
    starts = {
        run.channel: run.valid_from
        for run in runs
        if run.valid_from <= moment and (run.valid_to is None or moment < run.valid_to)
    }
    open_point = Snapshot(
        moment, None, point.readings, point.event_id, point.document, point.causes
    )
    return Tail(key, version, folded.state.detached(), last, open_point, starts)


def extend(tail: Tail, events: Sequence[Any]) -> tuple[Extension, Tail | None] | None:
    """The rows `events` (a subject's next events, in recording order) add after `tail`;
    None unless they all are facts that come right after it and sort after its last."""
    if events[0].originator_version != tail.version + 1:
        return None
    if not all(isinstance(event, Subject.Action) for event in events):
        return None
    actions: list[Subject.Action] = sorted(events, key=lambda a: a.order)
    if actions[0].occurred_at <= tail.last.occurred_at:
        return None
    folded = fold_periods(tail.state.copy(), [tail.point], actions)
    first: dict[str, Interval] = {}
    later: list[Interval] = []
    for run in intervals(folded.periods):
        if run.valid_from == tail.point.valid_from:
            first[run.channel] = run
        else:
            later.append(run)
    if first.keys() != tail.run_starts.keys():
        return None
    subject_id = actions[0].originator_id.hex
    extension = Extension(
        subject_id,
        tail.point.valid_from,
        folded.periods[0].valid_to,
        folded.periods[1:],
        {channel: (tail.run_starts[channel], run.valid_to) for channel, run in first.items()},
        later,
    )
    runs = [
        Interval(channel, tail.run_starts[channel], run.valid_to, run.status, run.event_id)
        for channel, run in first.items()
    ] + later
    return extension, tail_of(tail.key, events[-1].originator_version, folded, runs)
