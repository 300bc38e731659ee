"""Events are stored in the library's JSON format whichever transcoder writes them, so a
store written by the library's own transcoder reads with ours, and the other way round."""

from __future__ import annotations

from datetime import UTC
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from hypothesis import given
from hypothesis import strategies as st

from adapters.mapping import FastTranscoder
from domain.values import HostingScope


def registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):  # as the library does
        transcoder.register(transcoding)
    return transcoder


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too
    st.floats(allow_nan=False),  # infinities too (NaN: below)
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
    st.sampled_from(HostingScope),
)
names = st.text(min_size=1, max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
states = st.dictionaries(names, values, max_size=12)


@given(states)
def test_either_transcoder_reads_what_the_other_wrote(state):
    ours, library = registered(FastTranscoder()), registered(JSONTranscoder())
    expected = library.decode(library.encode(state))
    assert ours.decode(library.encode(state)) == expected
    assert library.decode(ours.encode(state)) == expected
    assert ours.decode(ours.encode(state)) == expected


def test_numbers_orjson_cannot_hold_are_read_and_written_exactly():
    ours = registered(FastTranscoder())
    state = {"low": -(2**63) - 1, "high": [2**64], "nested": {"big": 10**30}}
    assert ours.decode(ours.encode(state)) == state
    assert ours.decode(b"-9223372036854775809") == -(2**63) - 1
    assert str(ours.decode(ours.encode({"x": float("nan")}))["x"]) == "nan"


def test_nested_registered_types_are_rebuilt_innermost_first():
    ours = registered(FastTranscoder())
    state = {"ids": [UUID(int=1), {"at": UUID(int=2)}], "n": 1}
    assert ours.decode(ours.encode(state)) == state
