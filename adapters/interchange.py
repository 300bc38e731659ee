"""The JSON Lines interchange format: pydantic models of every event type, parsing of input
objects into the service's `NewFact`, and writing stored facts back out.

Errors name the field and the problem; unknown keys are refused (catching typos).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from itertools import islice
from multiprocessing import get_context
from typing import Annotated, Any, BinaryIO, Literal, cast
from urllib.parse import urlsplit
from uuid import uuid5

import orjson
import structlog
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

from adapters.runtime import tune_collector
from adapters.serialize import record_json
from domain.clock import iso
from domain.values import NAMESPACE, AppStore, HostingScope, SubjectKey
from projections.documents import FactRecord
from service.application import StoredFact
from service.recording import NewFact

log = structlog.get_logger(__name__)

MAX_LINE_BYTES = 64 * 1024
CHUNK = 64 * 1024  # bytes read at a time past an over-long line
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Set by the store, not the writer: accepted (an export imports again) and ignored.
IGNORED_KEYS = ("event_id", "recorded_at", "recorded_by", "position")
CONTAINERS = (dict, list)


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 timestamp with a timezone, or a bare date (midnight UTC); returned in UTC."""
    if isinstance(value, datetime):
        moment = value
    elif not isinstance(value, str):
        raise ValueError("expected a timestamp string such as 2021-01-11T07:59:00Z")
    elif DATE.match(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a valid timestamp (expected ISO 8601 such as "
                "2021-01-11T07:59:00Z)"
            ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{value!s} has no timezone; add Z or an offset such as +00:00 (naive times are "
            "ambiguous)"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00, 9999-12-31T23:59-14:00
        raise ValueError(
            f"{value!s} is outside the calendar once in UTC (years 1 to 9999)"
        ) from None


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    return url


def check_platform(slug: str) -> str:
    return SubjectKey.platform(slug).key


def check_account(key: str) -> str:
    return SubjectKey.account(key).key


def not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


Instant = Annotated[datetime, BeforeValidator(parse_instant), PlainSerializer(iso)]
Label = Annotated[str, Field(max_length=200), AfterValidator(not_blank)]
Text = Annotated[str, Field(max_length=4000), AfterValidator(not_blank)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(check_url)]
EventId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(not_blank)]
PlatformSlug = Annotated[str, AfterValidator(check_platform)]
AccountKey = Annotated[str, Field(max_length=264), AfterValidator(check_account)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId | None = None
    recorded_at: Any = None  # accepted in exports, ignored
    recorded_by: Any = None  # accepted in exports, ignored
    position: Any = None  # accepted in exports, ignored


class ActionInput(Input):
    occurred_at: Instant
    reason: Text | None = None
    sources: list[Url] = Field(default_factory=list, max_length=100)
    note: Text | None = None


class PlatformInput(ActionInput):
    platform: PlatformSlug


class ProviderPlatformInput(PlatformInput):
    provider: Label


class AccountInput(ActionInput):
    account: AccountKey
    provider: Label


class PlatformRegistered(PlatformInput):
    type: Literal["PlatformRegistered"]
    name: Label
    hosting_provider: Label | None = None
    registrar: Label | None = None
    app_stores: list[AppStore] = Field(default_factory=list, max_length=2)


class HostingTerminated(ProviderPlatformInput):
    type: Literal["HostingTerminated"]
    announced_at: Instant | None = None


class HostingRestored(ProviderPlatformInput):
    type: Literal["HostingRestored"]
    scope: HostingScope = HostingScope.FULL


class AppStoreRemoved(ProviderPlatformInput):
    type: Literal["AppStoreRemoved"]
    store: AppStore


class AppStoreReinstated(ProviderPlatformInput):
    type: Literal["AppStoreReinstated"]
    store: AppStore


class DomainSuspended(ProviderPlatformInput):
    type: Literal["DomainSuspended"]


class DomainRestored(ProviderPlatformInput):
    type: Literal["DomainRestored"]


class PlatformShutDown(ProviderPlatformInput):
    type: Literal["PlatformShutDown"]


class PlatformRelaunched(ProviderPlatformInput):
    type: Literal["PlatformRelaunched"]


class ServiceTerminated(ProviderPlatformInput):
    type: Literal["ServiceTerminated"]
    service: Label


class ServiceRestored(ProviderPlatformInput):
    type: Literal["ServiceRestored"]
    service: Label


class AccountSuspended(AccountInput):
    type: Literal["AccountSuspended"]
    until: Instant | None = None


class AccountBanned(AccountInput):
    type: Literal["AccountBanned"]


class AccountReinstated(AccountInput):
    type: Literal["AccountReinstated"]


class EventRetracted(Input):
    type: Literal["EventRetracted"]
    retracts: EventId
    reason: Text
    platform: PlatformSlug | None = None
    account: AccountKey | None = None


EventInput = Annotated[
    PlatformRegistered
    | HostingTerminated
    | HostingRestored
    | AppStoreRemoved
    | AppStoreReinstated
    | DomainSuspended
    | DomainRestored
    | PlatformShutDown
    | PlatformRelaunched
    | ServiceTerminated
    | ServiceRestored
    | AccountSuspended
    | AccountBanned
    | AccountReinstated
    | EventRetracted,
    Field(discriminator="type"),
]
EVENT_INPUT: TypeAdapter[Any] = TypeAdapter(EventInput)
EVENT_TYPES = sorted(
    EVENT_INPUT.json_schema()["discriminator"]["mapping"]  # every type the format knows
)


class InvalidInput(ValueError):
    """Input that is not a well-formed event of the interchange format."""


def canonical(obj: Any) -> str:
    """Compact JSON with sorted keys: what event ids are derived from and digests taken of,
    so it never changes. orjson writes exactly what the `json` module writes for every value
    a JSON line can hold (a property test checks it), ten times quicker; what it refuses (a
    lone surrogate, an integer beyond 64 bits) is written by the `json` module."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derived_event_id(raw: dict[str, Any]) -> str:
    """UUID5 of the canonical JSON of the input object without the store's own keys."""
    return str(uuid5(NAMESPACE, canonical({k: v for k, v in raw.items() if k not in IGNORED_KEYS})))


def to_new_fact(raw: Any, label: int | None = None, text: str | None = None) -> NewFact:
    """Validates one decoded JSON value (from `text`, if given) as an event of the
    interchange format."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"expected a JSON object, got {type(raw).__name__}")
    # No store can keep a NUL in text, nor should it. JSON text can only spell one as an
    # escape, so text without "\u0000" is clear without encoding the value again.
    if (text is None or "\\u0000" in text) and "\\u0000" in canonical(raw):
        raise InvalidInput("text must not contain NUL (\\u0000) characters")
    try:
        model = EVENT_INPUT.validate_python(raw)
    except ValidationError as error:
        raise InvalidInput(describe(error)) from None
    own = {k: v for k, v in model.__dict__.items() if k not in IGNORED_KEYS}
    content = {k: json_value(v) for k, v in own.items()}
    subject: SubjectKey | None = None
    if content.get("platform") is not None:
        subject = SubjectKey.platform(content.pop("platform"))
    elif content.get("account") is not None:
        subject = SubjectKey.account(content.pop("account"))
    content.pop("platform", None)
    content.pop("account", None)
    if model.type == "EventRetracted" and raw.get("platform") and raw.get("account"):
        raise InvalidInput("a retraction names at most one subject: platform or account")
    identity = (
        {} if subject is None or model.type == "EventRetracted" else {"subject": subject.identity}
    )
    digest = hashlib.sha256(canonical({**content, **identity}).encode()).hexdigest()
    event_type = content.pop("type")
    return NewFact(
        type=event_type,
        subject=subject,
        event_id=model.event_id or derived_event_id(raw),
        fields={k: own[k] if type(own[k]) is datetime else v for k, v in content.items()},
        digest=digest,
        label=label,
    )


def json_value(value: Any) -> Any:
    """A validated field's value as the format writes it (what `model_dump(mode="json")`
    gives, without its cost per call): instants in ISO 8601, enumerations by value."""
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is datetime:
        return iso(value)
    if kind is list:
        return [json_value(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def describe(error: ValidationError) -> str:
    """One line per problem: `field: what is wrong`, in the words of the format."""
    problems = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # the discriminator's branch, not a field
        where = ".".join(loc)
        kind, message = item["type"], item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "union_tag_invalid":
            where, message = (
                "type",
                f"unknown event type {item['input'].get('type')!r}; "
                + ("expected one of " + ", ".join(EVENT_TYPES)),
            )
        elif kind == "union_tag_not_found":
            where, message = "type", "missing; expected one of " + ", ".join(EVENT_TYPES)
        elif kind == "missing":
            message = "required field missing"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def parse_line(text: str, label: int | None = None) -> NewFact:
    if len(text.encode()) > MAX_LINE_BYTES:
        raise InvalidInput(f"line is longer than {MAX_LINE_BYTES} bytes")
    return to_new_fact(decode(text), label, text)


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


@dataclass(frozen=True)
class ParsedLine:
    line: int
    fact: NewFact | None
    error: str | None


def parse_lines(lines: Iterable[str | InvalidInput]) -> Iterator[ParsedLine]:
    """Numbered lines of a JSON Lines text (or the reason a line could not be read); blank
    lines and `#` comments are skipped."""
    return parse_numbered(enumerate(lines, start=1))


def parse_numbered(lines: Iterable[tuple[int, str | InvalidInput]]) -> Iterator[ParsedLine]:
    for number, text in lines:
        if isinstance(text, InvalidInput):
            yield ParsedLine(number, None, str(text))
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            yield ParsedLine(number, parse_line(stripped, number), None)
        except InvalidInput as error:
            yield ParsedLine(number, None, str(error))


def parse_chunk(lines: list[tuple[int, str | InvalidInput]]) -> list[ParsedLine]:
    return list(parse_numbered(lines))


def parse_packed(lines: list[tuple[int, str | InvalidInput]]) -> bytes:
    """A chunk parsed by a worker, packed for the importing process (`unpack`)."""
    return pack(parse_chunk(lines))


def pack(parsed: list[ParsedLine]) -> bytes:
    """Parsed lines as compact JSON, each fact's instants listed by name: the importing
    process, the import's bottleneck, reads them back in a third of the time pickled objects
    take. What orjson cannot write (a string with a lone surrogate) is pickled."""
    rows: list[list[Any]] = []
    for line in parsed:
        fact = line.fact
        if fact is None:
            rows.append([line.line, line.error])
            continue
        subject = fact.subject
        rows.append(
            [
                line.line,
                fact.type,
                None if subject is None else subject.kind,
                None if subject is None else subject.key,
                fact.event_id,
                fact.digest,
                fact.fields,
                [k for k, v in fact.fields.items() if type(v) is datetime],
            ]
        )
    try:
        return orjson.dumps(rows)
    except orjson.JSONEncodeError:
        return pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes) -> list[ParsedLine]:
    """What `pack` packed."""
    if packed[:1] != b"[":
        return cast(list[ParsedLine], pickle.loads(packed))
    parsed: list[ParsedLine] = []
    instant = datetime.fromisoformat
    for row in orjson.loads(packed):
        if len(row) == 2:
            parsed.append(ParsedLine(row[0], None, row[1]))
            continue
        line, event_type, kind, key, event_id, digest, fields, instants = row
        for name in instants:
            fields[name] = instant(fields[name])
        subject = None if kind is None else SubjectKey(kind, key)
        fact = NewFact(event_type, subject, event_id, fields, digest, line)
        parsed.append(ParsedLine(line, fact, None))
    return parsed


def parse_chunks(stream: BinaryIO, size: int, *, parallel: bool) -> Iterator[list[ParsedLine]]:
    """A stream's parsed lines, `size` lines at a time. With `parallel`, a worker process
    parses them, a chunk ahead of the caller (a second core at work; memory stays bounded),
    once it has started: meanwhile (a second or so, importing its modules) they are parsed
    here."""
    numbered = enumerate(read_lines(stream), start=1)
    chunks = iter(lambda: list(islice(numbered, size)), [])
    if not parallel:
        yield from map(parse_chunk, chunks)
        return
    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=tune_collector
    ) as worker:
        ahead: deque[tuple[list[tuple[int, str | InvalidInput]], Future[bytes]]]
        ahead = deque()
        broken = False
        started = worker.submit(int)  # answered once the worker runs
        for chunk in chunks:
            if not broken and (ahead or started.done()):
                try:
                    ahead.append((chunk, worker.submit(parse_packed, chunk)))
                except BrokenProcessPool:  # it died before this chunk
                    broken = True
                else:
                    if len(ahead) > 1:
                        done, broken = _parsed(*ahead.popleft())
                        yield done
                    continue
            while ahead:  # the worker died: what it was given comes first, in order
                yield _parsed(*ahead.popleft())[0]
            yield parse_chunk(chunk)
        while ahead:
            yield _parsed(*ahead.popleft())[0]


def _parsed(
    chunk: list[tuple[int, str | InvalidInput]], future: Future[bytes]
) -> tuple[list[ParsedLine], bool]:
    """A chunk as the worker parsed it, or parsed here if the worker died (killed, or out of
    memory); says whether it did."""
    try:
        return unpack(future.result()), False
    except BrokenProcessPool:
        log.warning("the parsing worker process stopped; parsing in this process")
        return parse_chunk(chunk), True


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[str | InvalidInput]:
    """The lines of a byte stream, each decoded on its own: a line that is not UTF-8, or is
    longer than `limit` bytes (read past without being kept), is its refusal instead."""
    while raw := stream.readline(limit + 1):
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := stream.readline(CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield InvalidInput(f"line is longer than {limit} bytes")
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield InvalidInput(f"not UTF-8 text at byte {error.start + 1}: {error.reason}")


# Output -----------------------------------------------------------------------------


def export_record(stored: StoredFact) -> dict[str, Any]:
    return record_json(FactRecord.of(stored.fact, stored.subject, stored.position))
