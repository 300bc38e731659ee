"""Time formatting shared by every layer: instants are UTC and written with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1 << 14)
def iso(moment: datetime) -> str:
    """`2021-01-11T07:59:00Z`, with microseconds only when there are some. The same instants
    are written again and again (a rebuild writes each fact's time in several documents),
    so the last few thousand are remembered."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: how the read models store instants (ordered, exact)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, held within the calendar (years 1 to 9999) rather than overflowing:
    a window around a moment at the calendar's edge is cut there."""
    try:
        return moment + delta
    except OverflowError:
        return FIRST if delta < timedelta() else LAST
