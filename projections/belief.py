"""What the store believed of a subject over transaction time, as bitemporal rows.

A rebuild derives a subject's rows from its whole history: where its facts were recorded at
several instants, the rows are derived again at each, and compared with those believed until
then. A row that no longer holds is closed at that instant (believed `[known_from,
known_to)`); a row that still holds is kept, once, whatever was recorded meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from projections.documents import OVERALL
from projections.ports import SubjectRows
from projections.status import Interval, Snapshot

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
        """Takes the rows believed from `known_at` on; yields those it closes there."""
        self.periods, closed_periods = _revised(
            self.periods, {p.valid_from: p for p in periods}, same_period, known_at
        )
        self.runs, closed_runs = _revised(
            self.runs, {(r.channel, r.valid_from): r for r in runs}, same_run, known_at
        )
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


def _revised(
    held: dict[K, tuple[R, datetime]],
    new: dict[K, R],
    same: Callable[[R, R], bool],
    known_at: datetime,
) -> tuple[dict[K, tuple[R, datetime]], dict[datetime, list[R]]]:
    """The rows believed from `known_at` (each kept with its own start where it was held
    alike), and those held until then that end there, by when they were first believed (a
    row first believed at `known_at` itself was never believed: it is dropped)."""
    kept: dict[K, tuple[R, datetime]] = {}
    for key, row in new.items():
        old = held.get(key)
        kept[key] = old if old is not None and same(old[0], row) else (row, known_at)
    closed: dict[datetime, list[R]] = {}
    for key, (row, since) in held.items():
        if kept.get(key, (None,))[0] is not row and since != known_at:
            closed.setdefault(since, []).append(row)
    return kept, closed
