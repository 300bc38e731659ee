"""Redoing a subject's rows from a moment on, without deriving them again from its start.

While the runner follows the stream, most facts sort last in their subject's timeline. For
those the rows need not be derived from the whole timeline: the fold goes on from where the
subject's last fact left it (its `Tail`); the period that fact began, and each channel's run
in force then, get new ends; the new periods and runs are added. A late fact or a
retraction changes the rows only from its valid time on: they are redone from a `Tail` cut
just before it (the fold there, from the subject's checkpoints; the period and the runs in
force there, from the rows), the same way. Only a change before a subject's first fact, or
a subject this runner has no rows for, derives its rows whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import Subject
from domain.timeline import State
from domain.values import SubjectKey
from projections.status import Folded, Interval, OpenRun, Runs, Snapshot, folds


@dataclass(frozen=True)
class Tail:
    """Where a subject's rows end (or, cut before a late fact, where they are to be redone
    from): the fold after `last`, and what that fact began."""

    key: SubjectKey
    version: int  # the subject's version the rows are of
    state: State  # the fold after `last`
    last: Subject.Action  # the last fact in valid-time order (of a cut: before the change)
    point: Snapshot  # the period `last` began, as if still open
    run_starts: dict[str, datetime]  # per channel, when the run in force at `last` began

    @property
    def complete(self) -> bool:
        """Whether it knows the run in force on each channel of its period (rows that say
        otherwise are not extended from it: they are derived again)."""
        return self.run_starts.keys() == self.point.readings.keys()


@dataclass(frozen=True)
class Extension:
    """New rows after a moment of a subject's, believed from `known_at`: the rows begun after
    `after` are superseded by `periods` and `intervals`; the period begun at `after` ends at
    `period_end`, and runs stored before (begun at the first datetime) end at the second. A
    `continued` extension adds to the one before it (a long one comes in pieces): it
    supersedes nothing."""

    subject_id: str
    known_at: datetime  # when the facts that make it were recorded
    after: datetime
    period_end: datetime | None
    periods: list[Snapshot]
    run_ends: dict[str, tuple[datetime, datetime | None]]
    intervals: list[Interval]
    continued: bool = False


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
    return Tail(key, version, folded.state.copy(), last, open_point, starts)


def extend(
    tail: Tail, events: Sequence[Any], size: int, tails: dict[UUID, Tail | None]
) -> Iterator[Extension] | None:
    """The rows `events` (a subject's next events, in recording order) add after `tail`;
    None unless they all are facts that come right after it and sort after its last."""
    if events[0].originator_version != tail.version + 1:
        return None
    if not all(isinstance(event, Subject.Action) for event in events):
        return None
    actions: list[Subject.Action] = sorted(events, key=lambda a: a.order)
    if actions[0].occurred_at <= tail.last.occurred_at:
        return None
    if not tail.complete:
        return None
    last = events[-1]
    return resume(tail, last.originator_version, last.recorded_at, actions, size, tails)


def resume(
    cut: Tail,
    version: int,
    known_at: datetime,
    suffix: Sequence[Subject.Action],
    size: int,
    tails: dict[UUID, Tail | None],
) -> Iterator[Extension]:
    """The rows of a subject (at `version`, as the store knew it from `known_at`) from `cut`
    on, where `suffix` is its timeline after the cut's last fact: what is stored after the
    cut is superseded, in pieces of about `size` facts. Its new tail is added to `tails`
    once the last piece is given."""
    subject_id = cut.last.originator_id
    after = cut.point.valid_from
    stored = cut.run_starts  # the runs in force at the cut: only their ends change
    runs = Runs(
        {c: OpenRun(start, None, cut.point.readings[c], None) for c, start in stored.items()}
    )
    last: Folded | None = None
    ended: list[Interval] = []
    for n, (periods, folded) in enumerate(folds(cut.state.copy(), suffix, size, [cut.point])):
        last = folded
        ended = runs.add(periods)  # the first piece's first period: the cut's, new end and all
        run_ends, new = _split(ended, stored)
        period_end = periods[0].valid_to if n == 0 else None
        yield Extension(
            subject_id.hex,
            known_at,
            after,
            period_end,
            periods[1:] if n == 0 else periods,
            run_ends,
            new,
            continued=n > 0,
        )
    in_force = runs.end()
    run_ends, new = _split(in_force, stored)
    yield Extension(subject_id.hex, known_at, after, None, [], run_ends, new, continued=True)
    assert last is not None  # (`folds` gives at least one slice)
    if last.last is None:  # nothing after the cut: its last fact is the last
        tails[subject_id] = replace(cut, version=version)
    else:
        tails[subject_id] = tail_of(cut.key, version, last, ended + in_force)


def _split(
    runs: list[Interval], stored: dict[str, datetime]
) -> tuple[dict[str, tuple[datetime, datetime | None]], list[Interval]]:
    """Runs that were stored before (their ends, by channel), and new ones (every new run
    begins after the cut, so later than any stored one on its channel)."""
    ends = {
        r.channel: (r.valid_from, r.valid_to) for r in runs if stored.get(r.channel) == r.valid_from
    }
    return ends, [r for r in runs if stored.get(r.channel) != r.valid_from]
