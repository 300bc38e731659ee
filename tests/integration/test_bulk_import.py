"""The bulk path (an import: lines parsed by a worker, which encodes each fact's stored state
ahead of the write, then checked chunk by chunk, its subjects kept in memory across chunks)
and the one-event path (`record`, one fact per write, each from a process that holds
nothing) give the same verdicts and identical stores: the same events in the same order,
byte for byte, and the same event-id index. Both run on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from adapters.composition import Services
from adapters.import_lines import pack, parse_packed, unpack
from adapters.interchange import parse_lines
from domain import SUBJECT_CLASSES
from domain.clock import iso
from service.recording import NewFact
from tests.helpers import fact, registration, store_settings
from tests.integration.test_checkpoints import fresh_process
from tests.strategies import store_histories

WRITER = "ana"
RECORDED_AT = datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=UTC)


def line(new: NewFact) -> str:
    """The JSON line a fact came from (its event id given, as an export gives it)."""
    raw = {"type": new.type, "event_id": new.event_id}
    if new.subject is not None:
        raw[new.subject.kind] = new.subject.key
    raw |= {k: iso(v) if isinstance(v, datetime) else v for k, v in new.fields.items()}
    return json.dumps(raw)


def one_by_one(tracker: Services, facts: list[NewFact], retract: list[float]) -> tuple:
    """Records each fact in a write of its own, from a fresh process; then retractions of
    accepted facts (named by `retract`, as shares of their number), naming their subject or
    not. The facts as written, each one's refusals, and how many were recorded and how many
    were duplicates."""
    written, refusals, counts, accepted = [], [], [0, 0], []

    def write(new: NewFact) -> bool:
        fresh_process(tracker)
        outcome = tracker.record([new], recorded_by=WRITER)
        written.append(new)
        refusals.append(refused(new, outcome.rejected))
        counts[0] += outcome.recorded_count
        counts[1] += outcome.duplicate_count
        return outcome.committed

    accepted = [new for new in facts if write(new)]
    for n, share in enumerate(retract):
        target = accepted[int(share * len(accepted))]
        named = {} if n % 2 else {target.subject.kind: target.subject.key}
        write(fact("EventRetracted", retracts=target.event_id, reason="r", **named))
    return written, (refusals, tuple(counts))


def refused(new: NewFact, rejected: list) -> tuple:
    return new.event_id, [(r.event_id, r.error, r.conflicts_with) for r in rejected]


def in_bulk(tracker: Services, lines: list[str], chunk: int) -> tuple:
    """Imports the lines as the CLI does (parsed by the worker's function, its facts' states
    encoded ahead, crossing packed), skipping what is invalid: each line's refusals, and how
    many were recorded and how many were duplicates."""
    numbered = list(enumerate(lines, start=1))
    chunks = [
        [p.fact for p in unpack(parse_packed(numbered[i : i + chunk], WRITER)) if p.fact]
        for i in range(0, len(numbered), chunk)
    ]
    assert all(f.ahead is not None for c in chunks for f in c if f.subject is not None)
    outcome = tracker.app.import_stream(iter(chunks), atomic=False, recorded_by=WRITER)
    by_line = {r.label: [r] for r in outcome.rejected}
    refusals = [refused(f, by_line.get(f.label, [])) for c in chunks for f in c]
    return refusals, (outcome.recorded_count, outcome.duplicate_count)


def stored_rows(tracker: Services, facts: list[NewFact]) -> tuple:
    """Every stored event as stored, in the store's order, and the event-id index rows of
    these facts and of their subjects' look-alike entries."""
    events = [
        (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
        for n in tracker.app.recorder.select_notifications(1, 10_000)
    ]
    spellings = {tracker.app.look_alike_id(f.subject) for f in facts if f.subject is not None}
    ids = [f.event_id for f in facts] + [s for s in spellings if s is not None]
    index = sorted(tracker.app.index.select_event_ids(ids).values())
    return events, index


def test_the_bulk_path_and_the_one_event_path_give_identical_stores(new_store):
    """Random histories with late facts, retractions (naming their subject or not) and
    regional facts, many of them invalid, imported in chunks of one to five lines: the same
    verdict for every fact, and the same stored rows, byte for byte."""

    @store_settings(new_store)
    @given(store_histories(), st.integers(1, 5))
    def check(history, chunk):
        facts, retract = history
        facts = [registration(app_stores=["google_play"]), *facts]
        single, bulk = new_store(), new_store()
        try:
            with (
                patch("service.application.now", lambda: RECORDED_AT),
                patch("service.recording.now", lambda: RECORDED_AT),
            ):
                written, verdicts = one_by_one(single, facts, retract)
                assert in_bulk(bulk, [line(f) for f in written], chunk) == verdicts
            assert stored_rows(bulk, written) == stored_rows(single, written)
        finally:
            single.close()
            bulk.close()

    check()


def test_a_state_encoded_ahead_is_what_the_stores_mapper_encodes(tracker):
    """A fact of every kind of field, parsed by the worker's function: completed with its
    recording instant, its state encoded ahead is what the store's own mapper makes."""
    examples = [
        registration("p", app_stores=["google_play"]),
        fact("HostingTerminated", "p", occurred_at="2021-01-11T07:59:00+01:00", reason="r"),
        fact("AppStoreRemoved", "p", occurred_at="2021-01-12", store="google_play", regions=["FR"]),
        fact("AccessBlocked", "p", occurred_at="2021-01-13", regions=["BR"], scope="partial"),
        fact("AccountSuspended", "net:x", occurred_at="2021-01-14", until="2021-02-01"),
        fact("EventRetracted", "p", retracts="e1", reason="wrong"),
    ]
    mapper = tracker.app.mapper
    for parsed in unpack(pack(list(parse_lines(map(line, examples))), WRITER)):
        new = parsed.fact
        assert new is not None and new.subject is not None and new.ahead is not None
        event_class = SUBJECT_CLASSES[new.subject.kind].fact_types()[new.type]
        event = event_class(
            originator_id=new.subject.id,
            originator_version=3,
            timestamp=RECORDED_AT,
            event_id=new.event_id,
            recorded_by=WRITER,
            **new.fields,
        )
        assert mapper.completed(event, new.ahead) == mapper.to_stored_event(event)
