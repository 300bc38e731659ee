"""The stored form of events: the library's JSON format, written and read with orjson.

A writer, an import or a rebuild encodes and decodes hundreds of thousands of events. The
library's `JSONTranscoder` (the `json` module, with a Python callback for every object)
gives every decoded event new strings for its field names; orjson shares them (it caches
short keys): a decoded event holds about 1.15 KB instead of 1.5 KB, and an event is about a
sixth quicker to decode and to encode. The bytes are the library's format
(`{"_type_": name, "_data_": ...}` for the types it registers: datetimes and the like), so
stores written by either read with either. What orjson cannot take (integers beyond 64 bits,
types nobody registered) goes through the library's own code, and so does reading a state
that holds a number orjson reads as a float.

An import's parsing worker encodes each fact's state ahead of the write (`AheadMapper`), all
but its recording instant, which the write completes: the importing process, the import's
bottleneck, then does not encode it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
CONTAINERS = (dict, list)


class Inexact(Exception):
    """orjson read a number that only the library reads exactly."""


class FastTranscoder(JSONTranscoder):
    """The library's transcoder (its registered types, its format), with orjson's speed."""

    def encode(self, obj: Any) -> bytes:
        if for_the_library(obj):
            return super().encode(obj)
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=OPTIONS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, or an unregistered type
            return super().encode(obj)  # (which the library refuses in its own words)

    def decode(self, data: bytes) -> Any:
        """orjson reads an integer beyond 64 bits as a float: a state holding a float is
        read again by the library (the tracker's events hold none)."""
        try:
            value = orjson.loads(data)
            kind = type(value)
            if kind is float:
                raise Inexact
            return self._revive(value) if kind in CONTAINERS else value
        except (orjson.JSONDecodeError, Inexact):
            return super().decode(data)

    def _revive(self, value: Any) -> Any:
        """What the library's decoder gives: registered types rebuilt, innermost first."""
        if type(value) is list:
            for index, inner in enumerate(value):
                kind = type(inner)
                if kind in CONTAINERS:
                    value[index] = self._revive(inner)
                elif kind is float:
                    raise Inexact
            return value
        for key, inner in value.items():
            kind = type(inner)
            if kind in CONTAINERS:
                value[key] = self._revive(inner)
            elif kind is float:
                raise Inexact
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            transcoding = self.names.get(value["_type_"])
            if transcoding is None:
                raise TranscodingNotRegisteredError(
                    f"Data serialized with name '{value['_type_']}' is not deserializable. "
                    "Please register a custom transcoding for this type."
                )
            return transcoding.decode(value["_data_"])
        return value


def for_the_library(value: Any) -> bool:
    """Whether a value holds what orjson would write otherwise than the library: a UUID (a
    plain string for orjson) or a float (NaN and infinities: null for orjson; the tracker's
    events hold no float)."""
    kind = type(value)
    if kind is UUID or kind is float:
        return True
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for inner in value:
        kind = type(inner)
        if kind is UUID or kind is float or (kind in CONTAINERS and for_the_library(inner)):
            return True
    return False


# The recording instant an event encoded ahead is given meanwhile: none has it, so that the
# prefix it makes is known (and nothing else can be mistaken for it).
AHEAD_OF_TIME = datetime(1, 1, 1, tzinfo=UTC)


class AheadMapper(Mapper[UUID]):
    """The library's mapper, which can also encode an event's state before its recording
    instant is known (`ahead`: every field but the timestamp, the state's first), and
    complete it once it is (`completed`): the bytes are those `to_stored_event` makes."""

    def __init__(self, transcoder: Transcoder, compressor: Any = None, cipher: Any = None) -> None:
        super().__init__(transcoder, compressor, cipher)
        self._last: tuple[datetime, bytes] | None = None  # the last timestamp's prefix

    def ahead(self, event: Aggregate.Event) -> bytes | None:
        """The state of an event made with the timestamp `AHEAD_OF_TIME`, without it (None:
        this mapper's states cannot be split so: compressed or encrypted)."""
        if self.compressor is not None or self.cipher is not None:
            return None
        state = self.to_stored_event(event).state
        prefix = self._prefix(AHEAD_OF_TIME)
        return state[len(prefix) :] if state.startswith(prefix) else None

    def completed(self, event: Aggregate.Event, ahead: bytes) -> StoredEvent:
        """The stored event, from its state encoded `ahead` (by a mapper that neither
        compresses nor encrypts) and its own timestamp."""
        if self.compressor is not None or self.cipher is not None:  # as this one would
            return self.to_stored_event(event)
        return StoredEvent(
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic=get_topic(type(event)),
            state=self._prefix(event.timestamp) + ahead,
        )

    def _prefix(self, moment: datetime) -> bytes:
        """How a state begins: its timestamp (every event of a write has the same)."""
        last = self._last
        if last is None or last[0] != moment:
            last = self._last = (moment, b'{"timestamp":' + self.transcoder.encode(moment) + b",")
        return last[1]


def event_mapper() -> AheadMapper:
    """The mapper of the tracker's stores (see `adapters.config`), for a process without a
    store: an import's parsing worker."""
    transcoder = FastTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):  # as the library does
        transcoder.register(transcoding)
    return AheadMapper(transcoder)
