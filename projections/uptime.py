"""Status-page figures from a subject's intervals: daily bars and the share of time online."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Worst first: a day shows the worst status it had.
SEVERITY = {"offline": 0, "banned": 0, "partial": 1, "suspended": 1, "online": 2, "active": 2}
GOOD = {"online", "active"}


@dataclass(frozen=True)
class Day:
    start: datetime
    status: str | None  # None: the subject did not exist yet


def runs(
    intervals: list[dict[str, Any]], channel: str
) -> list[tuple[datetime, datetime | None, str]]:
    return [
        (
            datetime.fromisoformat(i["valid_from"]),
            datetime.fromisoformat(i["valid_to"]) if i["valid_to"] else None,
            i["status"],
        )
        for i in intervals
        if i["channel"] == channel
    ]


def daily(
    intervals: list[dict[str, Any]], channel: str, end: datetime, days: int = 90
) -> list[Day]:
    """The `days` days up to `end`, each with the worst status the channel had that day."""
    spans = runs(intervals, channel)
    bars = []
    for n in range(days, 0, -1):
        start = end - timedelta(days=n)
        stop = start + timedelta(days=1)
        seen = [s for a, b, s in spans if a < stop and (b is None or b > start)]
        bars.append(Day(start, min(seen, key=SEVERITY.__getitem__) if seen else None))
    return bars


def share_good(
    intervals: list[dict[str, Any]], channel: str, start: datetime, end: datetime
) -> float | None:
    """The share of [start, end) the channel was online (or the account active), counting
    only the time it existed; None if it did not exist then."""
    existed = good = timedelta()
    for a, b, status in runs(intervals, channel):
        lo, hi = max(a, start), min(b or end, end)
        if hi > lo:
            existed += hi - lo
            if status in GOOD:
                good += hi - lo
    return good / existed if existed else None
