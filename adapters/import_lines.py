"""An import's lines read from a byte stream and parsed in chunks, by a worker process while
the importing process records the chunk before (a second core at work; memory bounded by
the chunks in flight). The worker also encodes each fact's stored state but its recording
instant (`AheadMapper`), which the importing process, the import's bottleneck, would
otherwise encode. Parsed chunks cross as compact JSON, which the importing process reads
back several times quicker than pickled objects."""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from itertools import islice
from multiprocessing import get_context
from typing import Any, BinaryIO, cast

import orjson
import structlog

from adapters.interchange import MAX_LINE_BYTES, ParsedLine, parse_chunk
from adapters.json_input import InvalidInput
from adapters.mapping import AHEAD_OF_TIME, event_mapper
from adapters.runtime import tune_collector
from domain import SUBJECT_CLASSES
from domain.values import SubjectKey
from service.recording import NewFact

log = structlog.get_logger(__name__)

CHUNK = 64 * 1024  # bytes read at a time past an over-long line


def parse_packed(lines: list[tuple[int, str | InvalidInput]], recorded_by: str | None) -> bytes:
    """A chunk parsed by a worker, each fact's state encoded ahead for a write by
    `recorded_by`, packed for the importing process (`unpack`)."""
    return pack(parse_chunk(lines), recorded_by)


def encoded_ahead(fact: NewFact, recorded_by: str | None) -> bytes:
    """The fact's stored state but its recording instant, as a write by `recorded_by` will
    store it (empty: a retraction naming no subject, whose kind of subject is not known yet,
    or a fact its subject's kind does not take, which is refused when recorded)."""
    subject = fact.subject
    if subject is None:
        return b""
    event_class: Any = SUBJECT_CLASSES[subject.kind].fact_types().get(fact.type)
    if event_class is None:
        return b""
    event = event_class(
        originator_id=subject.id,
        originator_version=1,
        timestamp=AHEAD_OF_TIME,
        event_id=fact.event_id,
        recorded_by=recorded_by,
        **fact.fields,
    )
    ahead = MAPPER.ahead(event)
    return b"" if ahead is None or b"\n" in ahead else ahead  # (JSON never holds one)


MAPPER = event_mapper()


def pack(parsed: list[ParsedLine], recorded_by: str | None = None) -> bytes:
    """Parsed lines as compact JSON, each fact's instants listed by name, then a line for
    each fact's state encoded ahead: the importing process, the import's bottleneck, reads
    them back in a third of the time pickled objects take. What orjson cannot write (a
    string with a lone surrogate) is pickled."""
    rows: list[list[Any]] = []
    states: list[bytes] = []
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
        states.append(encoded_ahead(fact, recorded_by))
    try:
        return b"\n".join([orjson.dumps(rows), *states])
    except orjson.JSONEncodeError:
        return pickle.dumps(parsed, pickle.HIGHEST_PROTOCOL)


def unpack(packed: bytes) -> list[ParsedLine]:
    """What `pack` packed."""
    if packed[:1] != b"[":
        return cast(list[ParsedLine], pickle.loads(packed))
    parsed: list[ParsedLine] = []
    instant = datetime.fromisoformat
    rows, *states = packed.split(b"\n")
    aheads = iter(states)
    for row in orjson.loads(rows):
        if len(row) == 2:
            parsed.append(ParsedLine(row[0], None, row[1]))
            continue
        line, event_type, kind, key, event_id, digest, fields, instants = row
        for name in instants:
            fields[name] = instant(fields[name])
        subject = None if kind is None else SubjectKey(kind, key)
        fact = NewFact(event_type, subject, event_id, fields, digest, line, next(aheads) or None)
        parsed.append(ParsedLine(line, fact, None))
    return parsed


def parse_chunks(
    stream: BinaryIO, size: int, *, parallel: bool, recorded_by: str | None = None
) -> Iterator[list[ParsedLine]]:
    """A stream's parsed lines, `size` lines at a time. With `parallel`, a worker process
    parses them, a chunk ahead of the caller (a second core at work; memory stays bounded),
    once it has started: meanwhile (a second or so, importing its modules) they are parsed
    here. The worker encodes their facts' states ahead for a write by `recorded_by`."""
    numbered = enumerate(read_lines(stream), start=1)
    chunks = iter(lambda: list(islice(numbered, size)), [])
    if not parallel:
        yield from map(parse_chunk, chunks)
        return
    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=tune_collector
    ) as worker:
        queued: deque[tuple[list[tuple[int, str | InvalidInput]], Future[bytes]]]
        queued = deque()
        broken = False
        started = worker.submit(int)  # answered once the worker runs
        for chunk in chunks:
            if not broken and (queued or started.done()):
                try:
                    queued.append((chunk, worker.submit(parse_packed, chunk, recorded_by)))
                except BrokenProcessPool:  # it died before this chunk
                    broken = True
                else:
                    if len(queued) > 1:
                        done, broken = _parsed(*queued.popleft())
                        yield done
                    continue
            while queued:  # the worker died: what it was given comes first, in order
                yield _parsed(*queued.popleft())[0]
            yield parse_chunk(chunk)
        while queued:
            yield _parsed(*queued.popleft())[0]


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
