"""The JSON Lines interchange format: an input model of each of the domain's event types
(made from its declaration: the vocabulary is declared once, in `domain/`), parsing of input
objects into the service's `NewFact`, and writing stored facts back out.

Errors name the field and the problem; unknown keys are refused (catching typos).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import (
    Annotated,
    Any,
    Literal,
    Union,
    get_args,
    get_type_hints,
)
from urllib.parse import urlsplit
from uuid import uuid5

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    create_model,
)

from adapters.countries import country_code, distinct
from adapters.json_input import InvalidInput, decode
from adapters.serialize import record_json
from domain import RETRACTION, SUBJECT_CLASSES, Subject
from domain.clock import iso
from domain.values import NAMESPACE, AppStore, HostingScope, SubjectKey
from projections.documents import FactRecord, own_fields
from service.application import StoredFact
from service.recording import NewFact

MAX_LINE_BYTES = 64 * 1024
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What XML 1.0 cannot hold (C0 controls but tab, newline and carriage return; lone
# surrogates; U+FFFE and U+FFFF): no store keeps a NUL, and no feed, page or terminal should
# be handed an escape sequence, so text holding one is refused at input.
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
SPELLED = re.compile(r"\\u(?:00[01]|d[89a-f]|fff[ef])|\\[bf]|[\ufffe\uffff]", re.IGNORECASE)
# Set by the store, not the writer: accepted (an export imports again) and ignored.
IGNORED_KEYS = ("event_id", "recorded_at", "recorded_by", "position")


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
Region = Annotated[str, AfterValidator(country_code)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId | None = None
    recorded_at: Any = None  # accepted in exports, ignored
    recorded_by: Any = None  # accepted in exports, ignored
    position: Any = None  # accepted in exports, ignored


# How each field of the domain's events is written in the interchange format: its type, with
# the bounds input must keep. A field means the same in every event that has it. Whether it
# may be left out follows from the domain's declaration (`X | None`: it may, and is None),
# but where `DEFAULTS` gives a value.
FIELD_INPUTS: dict[str, Any] = {
    "occurred_at": Instant,
    "announced_at": Instant,
    "until": Instant,
    "reason": Text,
    "note": Text,
    "sources": Annotated[list[Url], Field(max_length=100)],
    "provider": Label,
    "name": Label,
    "hosting_provider": Label,
    "registrar": Label,
    "service": Label,
    "app_stores": Annotated[list[AppStore], Field(max_length=2)],
    "store": AppStore,
    "scope": HostingScope,
    "retracts": EventId,
    "regions": Annotated[
        list[Region], Field(min_length=1, max_length=300), AfterValidator(distinct)
    ],
}
DEFAULTS: dict[str, Any] = {"scope": HostingScope.FULL, "sources": [], "app_stores": []}
# Fields added to a type after events of it were stored: left out of a fact's digest where
# absent, so that an event recorded before is still a duplicate of the same line imported again.
ADDED_FIELDS = frozenset({"regions"})
SUBJECT_INPUTS: dict[str, Any] = {"platform": PlatformSlug, "account": AccountKey}


def input_model(kind: str, name: str, event_class: type[Subject.Fact]) -> type[Input]:
    """The input model of one of the domain's event classes: its own fields (not the
    library's, nor those the store sets), typed as `FIELD_INPUTS` says, and the key of its
    subject (a retraction names none, or its target's, of either kind)."""
    hints = get_type_hints(event_class)
    fields: dict[str, Any] = {"type": (Literal[name], ...)}
    for field in own_fields(event_class):
        declared, value = hints[field], FIELD_INPUTS[field]
        if field in DEFAULTS:
            fields[field] = (value, DEFAULTS[field])
        elif type(None) in get_args(declared):
            fields[field] = (value | None, None)
        else:
            fields[field] = (value, ...)
    if name == RETRACTION:
        fields |= {key: (value | None, None) for key, value in SUBJECT_INPUTS.items()}
    else:
        fields[kind] = (SUBJECT_INPUTS[kind], ...)
    model: type[Input] = create_model(name, __base__=Input, **fields)
    return model


INPUT_MODELS: dict[str, type[Input]] = {
    name: input_model(kind, name, event_class)
    for kind, subject_class in SUBJECT_CLASSES.items()
    for name, event_class in subject_class.fact_types().items()
}
# One of them, chosen by its `type`.
EventInput: Any = Annotated[Union[tuple(INPUT_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
EVENT_INPUT: TypeAdapter[Any] = TypeAdapter(EventInput)
EVENT_TYPES = sorted(INPUT_MODELS)  # every type the format knows


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


def check_characters(value: Any, where: str = "") -> None:
    """Refuses text (keys and values, at any depth) holding a character `FORBIDDEN` names."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_characters(key, where)
            check_characters(item, str(key) if not where else f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            check_characters(item, where)
    elif isinstance(value, str) and (found := FORBIDDEN.search(value)):
        name = "NUL" if found.group() == "\x00" else "a character XML forbids"
        raise InvalidInput(
            f"{where or 'a key'}: text must not contain {name} (U+{ord(found.group()):04X}): "
            "XML, feeds and terminals cannot carry it"
        )


def to_new_fact(raw: Any, label: int | None = None, text: str | None = None) -> NewFact:
    """Validates one decoded JSON value (from `text`, if given) as an event of the
    interchange format."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"expected a JSON object, got {type(raw).__name__}")
    # JSON text can spell a character XML forbids only as an escape (or U+FFFE, U+FFFF as
    # they are): text without one is clear without looking at the values again.
    if text is None or SPELLED.search(text):
        check_characters(raw)
    try:
        model = EVENT_INPUT.validate_python(raw)
    except ValidationError as error:
        raise InvalidInput(describe(error)) from None
    own = {
        k: v
        for k, v in model.__dict__.items()
        if k not in IGNORED_KEYS and not (v is None and k in ADDED_FIELDS)
    }
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


# Output -----------------------------------------------------------------------------


def export_record(stored: StoredFact) -> dict[str, Any]:
    return record_json(FactRecord.of(stored.fact, stored.subject, stored.position))
