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


def test_a_mapper_that_compresses_encodes_nothing_ahead_and_completes_as_it_stores():
    """States encoded ahead are plain JSON: a store whose mapper compresses (or encrypts)
    takes none, and stores what its own mapper makes of an event even if handed one."""
    from datetime import datetime

    from eventsourcing.compressor import ZlibCompressor

    from adapters.mapping import AHEAD_OF_TIME, AheadMapper, event_mapper
    from domain import Platform

    def cut(timestamp: datetime) -> Platform.HostingTerminated:
        return Platform.HostingTerminated(
            originator_id=UUID(int=1),
            originator_version=2,
            timestamp=timestamp,
            event_id="e",
            occurred_at=datetime(2021, 1, 11, tzinfo=UTC),
            reason=None,
            sources=[],
            note=None,
            provider="AWS",
            announced_at=None,
        )

    event = cut(datetime(2026, 12, 5, tzinfo=UTC))
    plain = event_mapper()
    compressing = AheadMapper(plain.transcoder, compressor=ZlibCompressor())
    ahead = plain.ahead(cut(AHEAD_OF_TIME))
    assert ahead is not None and plain.completed(event, ahead) == plain.to_stored_event(event)
    assert compressing.ahead(cut(AHEAD_OF_TIME)) is None
    assert compressing.completed(event, ahead) == compressing.to_stored_event(event)
