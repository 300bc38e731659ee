"""Status-page figures from a subject's intervals: daily bars and the share of time online."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.clock import shifted
from domain.values import Status
from projections.status import Interval


@dataclass(frozen=True)
class Day:
    start: datetime
    status: Status | None  # None: the subject did not exist yet


def daily(intervals: Sequence[Interval], channel: str, end: datetime, days: int = 90) -> list[Day]:
    """The `days` days up to `end`, each with the worst status the channel had that day."""
    spans = [i for i in intervals if i.channel == channel]
    bars = []
    for n in range(days, 0, -1):
        start = shifted(end, -timedelta(days=n))
        stop = shifted(start, timedelta(days=1))
        seen = [
            i.status
            for i in spans
            if i.valid_from < stop and (i.valid_to is None or i.valid_to > start)
        ]
        bars.append(Day(start, min(seen, key=lambda s: s.rank) if seen else None))
    return bars


def share_available(
    intervals: Sequence[Interval], channel: str, start: datetime, end: datetime
) -> float | None:
    """The share of [start, end) the channel was available (online; an account active),
    counting only the time it existed; None if it did not exist then."""
    existed = good = timedelta()
    for i in intervals:
        if i.channel != channel:
            continue
        lo, hi = max(i.valid_from, start), min(i.valid_to or end, end)
        if hi > lo:
            existed += hi - lo
            if i.status.available:
                good += hi - lo
    return good / existed if existed else None
