"""What the store believed of a subject over transaction time, as bitemporal rows.

A rebuild derives a subject's rows from its whole history: where its facts were recorded at
several instants, the rows are derived again at each, and compared with those believed until
then. A row that no longer holds is closed at that instant (believed `[known_from,
known_to)`); a row that still holds is kept, once, whatever was recorded meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from projections.documents import OVERALL
from projections.ports import SubjectRows
from projections.status import Interval, Snapshot
from projections.tails import Extension

K = TypeVar("K")
R = TypeVar("R", Snapshot, Interval)


def same_period(a: Snapshot, b: Snapshot) -> bool:
    """Whether two periods are stored alike (their causes are not stored)."""
    return (
        a.valid_to == b.valid_to
        and a.readings[OVERALL] == b.readings[OVERALL]
        and a.document == b.document
    )


def same_run(a: Interval, b: Interval) -> bool:
    return a.valid_to == b.valid_to and a.status == b.status and a.event_id == b.event_id


class Belief:
    """A subject's rows as believed now, each with when it was first believed."""

    def __init__(self, header: SubjectRows) -> None:
        self.header = header  # which subject (a piece of rows without rows)
        self.periods: dict[datetime, tuple[Snapshot, datetime]] = {}
        self.runs: dict[tuple[str, datetime], tuple[Interval, datetime]] = {}

    def revise(
        self, periods: list[Snapshot], runs: list[Interval], known_at: datetime
    ) -> Iterator[SubjectRows]:
        """Takes the rows believed from `known_at` on (all of them); yields those it closes
        there."""
        new_periods = {p.valid_from: p for p in periods}
        new_runs = {(r.channel, r.valid_from): r for r in runs}
        yield from self._change(
            new_periods,
            self.periods.keys() - new_periods.keys(),
            new_runs,
            self.runs.keys() - new_runs.keys(),
            known_at,
        )

    def extend(self, extensions: Iterable[Extension]) -> Iterator[SubjectRows]:
        """Takes rows changed from a moment on (as the runner writes them: see `Extension`);
        yields those they close."""
        for e in extensions:
            periods = {p.valid_from: p for p in e.periods}
            runs = {(r.channel, r.valid_from): r for r in e.intervals}
            removed: set[datetime] = set()
            if not e.continued:
                held = self.periods[e.after][0]
                periods[e.after] = replace(held, valid_to=e.period_end)
                removed = {moment for moment in self.periods if moment > e.after}
            for channel, (start, end) in e.run_ends.items():
                runs[(channel, start)] = replace(self.runs[(channel, start)][0], valid_to=end)
            later = {
                (channel, start)
                for channel, start in self.runs
                if not e.continued and start > e.after
            }
            yield from self._change(periods, removed, runs, later, e.known_at)

    def _change(
        self,
        periods: dict[datetime, Snapshot],
        no_periods: set[datetime],
        runs: dict[tuple[str, datetime], Interval],
        no_runs: set[tuple[str, datetime]],
        known_at: datetime,
    ) -> Iterator[SubjectRows]:
        closed_periods = _changed(self.periods, periods, no_periods, same_period, known_at)
        closed_runs = _changed(self.runs, runs, no_runs, same_run, known_at)
        yield from self._pieces(closed_periods, closed_runs, known_at)

    def held(self) -> Iterator[SubjectRows]:
        """The rows believed now (open in transaction time)."""
        periods: dict[datetime, list[Snapshot]] = {}
        for period, since in self.periods.values():
            periods.setdefault(since, []).append(period)
        runs: dict[datetime, list[Interval]] = {}
        for run, since in self.runs.values():
            runs.setdefault(since, []).append(run)
        yield from self._pieces(periods, runs, None)

    def _pieces(
        self,
        periods: dict[datetime, list[Snapshot]],
        runs: dict[datetime, list[Interval]],
        known_to: datetime | None,
    ) -> Iterator[SubjectRows]:
        for since in sorted(periods.keys() | runs.keys()):
            yield replace(
                self.header,
                known_from=since,
                known_to=known_to,
                snapshots=periods.get(since, []),
                intervals=runs.get(since, []),
                continued=True,
            )


def _changed(
    held: dict[K, tuple[R, datetime]],
    rows: dict[K, R],
    removed: set[K],
    same: Callable[[R, R], bool],
    known_at: datetime,
) -> dict[datetime, list[R]]:
    """Takes `rows` into `held` as believed from `known_at` (a row held alike keeps its own
    start) and drops `removed`; returns the rows held until then that end there, by when
    they were first believed (a row first believed at `known_at` itself was never believed
    by a reader: it is dropped)."""
    closed: dict[datetime, list[R]] = {}

    def close(key: K) -> None:
        row, since = held.pop(key)
        if since != known_at:
            closed.setdefault(since, []).append(row)

    for key in removed - rows.keys():  # a row given anew is compared with the one held
        close(key)
    for key, row in rows.items():
        old = held.get(key)
        if old is not None and same(old[0], row):
            continue
        if old is not None:
            close(key)
        held[key] = (row, known_at)
    return closed
