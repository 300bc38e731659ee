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
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

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
