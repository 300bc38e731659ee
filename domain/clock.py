"""Time formatting shared by every layer: instants are UTC and written with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """`2021-01-11T07:59:00Z`, with microseconds only when there are some."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: how the read models store instants (ordered, exact)."""
    return (moment - EPOCH) // timedelta(microseconds=1)


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
