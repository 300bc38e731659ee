"""Reading a JSON value from a line of input: with orjson where that gives exactly what the
`json` module gives (a line without escapes holding a flat object), with the `json` module
otherwise, which says what is wrong in its words. Keys must be unique; absurd nesting and
number literals are refused clearly."""

from __future__ import annotations

import json
from typing import Any

import orjson

CONTAINERS = (dict, list)


class InvalidInput(ValueError):
    """Input that is not a well-formed event of the interchange format."""


def decode(text: str | bytes) -> Any:
    """JSON with unique keys, and a clear refusal of malformed or absurdly nested input."""
    if isinstance(text, str) and "\\" not in text:
        value = _flat_object(text)
        if value is not None:
            return value
    return read_json(text)


def read_json(text: str | bytes) -> Any:
    """`decode` by the `json` module, which says what is wrong with a line in its words."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"malformed JSON: {error.msg} at column {error.colno}") from None
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    except ValueError as error:  # a number literal of thousands of digits
        if isinstance(error, InvalidInput):
            raise
        raise InvalidInput(f"malformed JSON: {error}") from None


def _flat_object(text: str) -> dict[str, Any] | None:
    """The object a line without escapes holds, read by orjson, if it holds no object within
    it: then its keys are unique if it has as many as colons stand outside its strings (with
    no escapes, every quote opens or closes a string). None: `read_json` reads it."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict:
        return None
    for inner in value.values():
        kind = type(inner)
        if kind is dict or (kind is list and any(type(i) in CONTAINERS for i in inner)):
            return None
        # orjson reads an integer beyond 64 bits as a float: the `json` module keeps it exact.
        if kind is float or (kind is list and float in map(type, inner)):
            return None
    if "".join(text.split('"')[0::2]).count(":") != len(value):
        return None
    return value


def _no_constant(name: str) -> Any:
    raise InvalidInput(f"malformed JSON: {name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise InvalidInput(f"{twice}: field given twice")
    return obj
