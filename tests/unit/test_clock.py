"""Instants as the read models store them (microseconds since the epoch) and as every format
writes them (UTC, with a `Z`), whatever offset they were given in."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from domain.clock import EPOCH, from_micros, iso, micros

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


@given(instants)
def test_micros_count_exact_microseconds_from_the_epoch(moment: datetime) -> None:
    assert micros(moment) == (moment - EPOCH) // timedelta(microseconds=1)
    assert from_micros(micros(moment)) == moment


@given(instants)
def test_iso_writes_the_instant_in_utc(moment: datetime) -> None:
    text = iso(moment)
    assert text.endswith("Z")
    assert datetime.fromisoformat(text) == moment
    assert iso(moment) == text  # remembered: the same answer again
    assert iso(moment.astimezone(UTC)) == text  # the same instant in another offset


def test_iso_leaves_out_microseconds_only_when_there_are_none() -> None:
    assert iso(datetime(2021, 1, 11, 7, 59, tzinfo=UTC)) == "2021-01-11T07:59:00Z"
    assert iso(datetime(2021, 1, 11, 7, 59, 0, 5, tzinfo=UTC)) == "2021-01-11T07:59:00.000005Z"
    assert iso(datetime(2021, 1, 11, 8, 59, tzinfo=timezone(timedelta(hours=1)))) == (
        "2021-01-11T07:59:00Z"
    )
