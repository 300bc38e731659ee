"""The JSON Lines format: what is accepted, what is refused and how it is said."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.interchange import (
    InvalidInput,
    canonical,
    derived_event_id,
    parse_line,
    parse_lines,
    to_new_fact,
)

CUT = {
    "type": "HostingTerminated",
    "platform": "parler",
    "occurred_at": "2021-01-11T07:59:00Z",
    "provider": "Amazon Web Services",
}


EXAMPLES = {  # one valid input of every event type
    "PlatformRegistered": {"platform": "p", "name": "P", "app_stores": ["google_play"]},
    "HostingTerminated": CUT,
    "HostingRestored": CUT | {"scope": "partial"},
    "AppStoreRemoved": CUT | {"store": "google_play"},
    "AppStoreReinstated": CUT | {"store": "apple_app_store"},
    "DomainSuspended": CUT,
    "DomainRestored": CUT,
    "PlatformShutDown": CUT,
    "PlatformRelaunched": CUT,
    "ServiceTerminated": CUT | {"service": "email"},
    "ServiceRestored": CUT | {"service": "email"},
    "AccountSuspended": {"account": "tw:a", "provider": "T", "until": "2021-02-01"},
    "AccountBanned": {"account": "tw:a", "provider": "T"},
    "AccountReinstated": {"account": "tw:a", "provider": "T"},
    "EventRetracted": {"retracts": "e1", "reason": "wrong", "platform": None},
}
EXAMPLES = {
    name: ({} if name == "EventRetracted" else {"occurred_at": "2021-01-11T07:59:00+01:00"})
    | {k: v for k, v in raw.items() if k != "type"}
    | {"type": name}
    for name, raw in EXAMPLES.items()
}
OPTIONAL = {  # fields any event may carry: what the store sets is ignored
    "event_id": st.text(min_size=1, max_size=3).filter(str.strip),
    "recorded_at": st.just("2021-01-12T00:00:00Z"),
    "sources": st.lists(st.sampled_from(["https://a.example/x", "http://b.example"])),
}


def refusal(obj) -> str:
    with pytest.raises(InvalidInput) as refused:
        parse_line(obj if isinstance(obj, str) else json.dumps(obj))
    return str(refused.value)


def test_a_valid_line_becomes_a_fact_of_its_subject():
    new = parse_line(json.dumps(CUT))
    assert (new.type, new.subject.key, new.fields["provider"]) == (
        "HostingTerminated",
        "parler",
        "Amazon Web Services",
    )
    assert new.fields["occurred_at"] == datetime(2021, 1, 11, 7, 59, tzinfo=UTC)


def test_times_are_stored_in_utc_and_a_bare_date_is_midnight_utc():
    assert parse_line(json.dumps(CUT | {"occurred_at": "2021-01-11T08:59:00+01:00"})).fields[
        "occurred_at"
    ] == datetime(2021, 1, 11, 7, 59, tzinfo=UTC)
    assert parse_line(json.dumps(CUT | {"occurred_at": "2021-01-11"})).fields[
        "occurred_at"
    ] == datetime(2021, 1, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"occurred_at": "2021-01-11T07:59:00"},
            "occurred_at: 2021-01-11T07:59:00 has no timezone",
        ),
        ({"occurred_at": "2021-02-30"}, "occurred_at: '2021-02-30' is not a real date"),
        ({"occurred_at": "last tuesday"}, "occurred_at: 'last tuesday' is not a valid timestamp"),
        ({"occurred_at": 1610351940}, "occurred_at: expected a timestamp string"),
        ({"occured_at": "2021-01-11"}, "occured_at: unknown field"),
        ({"platform": "Parler!"}, "platform: Value error, invalid platform slug"),
        ({"provider": ""}, "provider: must not be blank"),
        ({"provider": 42}, "provider: Input should be a valid string"),
        (
            {"sources": ["ftp://example.org/x"]},
            "sources.0: 'ftp://example.org/x' is not an absolute",
        ),
        ({"sources": ["/relative"]}, "is not an absolute http(s) URL"),
        ({"type": "HostingNuked"}, "type: unknown event type 'HostingNuked'"),
        ({"event_id": "x" * 129}, "event_id: String should have at most 128 characters"),
        (
            {"announced_at": "2021-01-09T23:00:00"},
            "announced_at: 2021-01-09T23:00:00 has no timezone",
        ),
    ],
)
def test_each_problem_is_named_with_its_field(change, message):
    assert message.replace("Value error, ", "") in refusal(CUT | change)


def test_missing_type_and_missing_fields_are_named():
    assert "type: missing" in refusal({k: v for k, v in CUT.items() if k != "type"})
    assert "provider: required field missing" in refusal(
        {k: v for k, v in CUT.items() if k != "provider"}
    )
    assert "store: required field missing" in refusal(CUT | {"type": "AppStoreRemoved"})


def test_malformed_json_non_objects_repeated_keys_and_oversize_lines_are_refused():
    assert "malformed JSON" in refusal('{"type": "HostingTerminated",')
    assert "expected a JSON object" in refusal("[1, 2]")
    assert "platform: field given twice" in refusal('{"platform": "a", "platform": "b"}')
    assert "longer than" in refusal(json.dumps(CUT | {"note": "x" * 70_000}))


def test_account_events_need_an_account_key_and_platform_events_a_slug():
    assert "account: required field missing" in refusal(
        {
            "type": "AccountBanned",
            "platform": "twitter",
            "occurred_at": "2021-01-01",
            "provider": "T",
        }
    )
    assert "invalid account key" in refusal(
        {
            "type": "AccountBanned",
            "account": "no-handle",
            "occurred_at": "2021-01-01",
            "provider": "T",
        }
    )


def test_blank_lines_and_comments_are_skipped_and_lines_keep_their_numbers():
    lines = ["# a comment", "", json.dumps(CUT), "   ", "{bad"]
    parsed = list(parse_lines(lines))
    assert [(p.line, p.fact is not None) for p in parsed] == [(3, True), (5, False)]


def test_the_derived_event_id_ignores_key_order_whitespace_and_the_stores_own_keys():
    reordered = json.dumps(dict(reversed(list(CUT.items()))), indent=4).replace("\n", " ")
    assert parse_line(reordered).event_id == parse_line(json.dumps(CUT)).event_id
    exported = CUT | {"recorded_at": "2026-01-01T00:00:00Z", "position": 7}
    assert derived_event_id(exported) == derived_event_id(CUT)
    assert derived_event_id(CUT | {"reason": "x"}) != derived_event_id(CUT)


def test_an_exported_line_has_the_same_content_digest_as_the_line_it_came_from():
    given_line = parse_line(json.dumps(CUT | {"occurred_at": "2021-01-11T08:59:00+01:00"}))
    exported = CUT | {
        "event_id": given_line.event_id,
        "sources": [],
        "recorded_at": "2026-01-01T00:00:00Z",
        "position": 3,
    }
    assert to_new_fact(exported).digest == given_line.digest


def test_account_handles_are_one_subject_whatever_their_case():
    a = to_new_fact(
        {
            "type": "AccountBanned",
            "account": "tw:Alice",
            "occurred_at": "2021-01-01",
            "provider": "T",
        }
    )
    b = to_new_fact(
        {
            "type": "AccountBanned",
            "account": "tw:alice",
            "occurred_at": "2021-01-01",
            "provider": "T",
        }
    )
    assert a.subject.id == b.subject.id and a.digest == b.digest
    assert a.subject.key == "tw:Alice"


@given(
    st.dictionaries(
        st.text(max_size=8), st.text(max_size=8) | st.integers() | st.none(), max_size=6
    )
)
def test_arbitrary_objects_are_either_facts_or_clear_refusals(obj):
    try:
        parse_line(json.dumps(obj))
    except InvalidInput as refusal:
        assert str(refusal)


def test_absurd_nesting_and_nul_characters_are_refused_clearly():
    assert "nested too deeply" in refusal("[" * 50_000)
    assert "NUL" in refusal(CUT | {"provider": "Amazon\u0000"})
    assert "NUL" in refusal(CUT | {"event_id": "a\u0000b"})


@pytest.mark.parametrize("character", ["\u0001", "\u000b", "\u000c", "\u001b", "\ufffe", "\uffff"])
@pytest.mark.parametrize("field", ["note", "reason", "provider"])
def test_characters_xml_forbids_are_refused_naming_the_field(character, field):
    found = refusal(CUT | {field: f"a{character}b"})
    assert f"U+{ord(character):04X}" in found and found.startswith(f"{field}:")


def test_tabs_newlines_and_any_script_pass():
    note = "a\tb\r\nc, 日本語, Ελληνικά"
    assert parse_line(json.dumps(CUT | {"note": note})).fields["note"] == note


def test_urls_in_refusals_hide_their_password():
    from adapters.config import BadDatabaseURL, store_env

    with pytest.raises(BadDatabaseURL) as refusal:
        store_env("mysql://user:hunter2@db/x")
    assert "hunter2" not in str(refusal.value) and "***" in str(refusal.value)


def test_lines_that_cannot_be_read_are_refused_one_by_one_with_their_numbers():
    import io

    from adapters.import_lines import read_lines
    from adapters.interchange import MAX_LINE_BYTES, parse_lines

    good = (
        b'{"type": "AccountBanned", "account": "x:a", "occurred_at": "2021-01-01", "provider": "X"}'
    )
    stream = io.BytesIO(
        b"\n".join([good, b'{"note": "caf\xe9"}', b"[" + b" " * (3 * MAX_LINE_BYTES) + b"]", good])
    )
    parsed = list(parse_lines(read_lines(stream)))
    assert [p.line for p in parsed] == [1, 2, 3, 4]
    assert [p.fact is not None for p in parsed] == [True, False, False, True]
    assert "not UTF-8 text at byte 14" in parsed[1].error
    assert f"longer than {MAX_LINE_BYTES} bytes" in parsed[2].error


def test_a_large_file_parsed_by_a_worker_process_gives_the_lines_parsed_here():
    import io

    from adapters.import_lines import parse_chunks

    lines = [
        b'{"type": "AccountBanned", "account": "x:a%d", "occurred_at": "2021-01-01", '
        b'"provider": "X"}' % n
        for n in range(7)
    ]
    lines[2], lines[4] = b"# a comment", b'{"type": "AccountBanned", "account": "caf\xe9"}'
    text = b"\n".join([*lines, b"{not json"])
    here = list(parse_chunks(io.BytesIO(text), 3, parallel=False))
    there = list(parse_chunks(io.BytesIO(text), 3, parallel=True))
    assert there == here and [len(chunk) for chunk in here] == [2, 3, 2]
    assert [p.line for chunk in here for p in chunk if p.error] == [5, 8]


GOOD_LINE = (
    b'{"type": "AccountBanned", "account": "x:a", "occurred_at": "2021-01-01", "provider": "X"}'
)


@given(
    st.lists(
        st.binary(max_size=40)
        | st.sampled_from([GOOD_LINE, b"", b"# note", b"[" * 3000, b"1" * 5000, b"\xff\xfe"])
        | st.builds(  # a good line with bytes spliced in
            lambda at, junk: GOOD_LINE[:at] + junk + GOOD_LINE[at:],
            st.integers(0, len(GOOD_LINE)),
            st.binary(max_size=6),
        ),
        max_size=12,
    )
)
def test_any_bytes_give_facts_or_refusals_naming_their_line_never_an_exception(lines):
    import io

    from adapters.import_lines import parse_chunks

    text = b"\n".join(line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines)
    parsed = [p for chunk in parse_chunks(io.BytesIO(text), 4, parallel=False) for p in chunk]
    assert all((p.fact is None) != (p.error is None) for p in parsed)
    assert all(p.error.strip() for p in parsed if p.error is not None)
    numbers = [p.line for p in parsed]
    assert numbers == sorted(set(numbers)) and all(1 <= n <= max(len(lines), 1) for n in numbers)


@pytest.mark.parametrize("killed_at", [1, 3])  # as it starts; with the second chunk
def test_if_the_parsing_worker_dies_the_rest_is_parsed_here_in_order(monkeypatch, killed_at):
    import io
    import os
    import signal

    from adapters import import_lines

    lines = [
        b'{"type": "AccountBanned", "account": "x:a%d", "occurred_at": "2021-01-01", '
        b'"provider": "X"}' % n
        for n in range(20)
    ]
    text = b"\n".join(lines)
    submitted = []
    submit = import_lines.ProcessPoolExecutor.submit

    def submit_then_kill(executor, fn, *args):
        future = submit(executor, fn, *args)
        submitted.append(fn)
        if len(submitted) == killed_at:
            os.kill(next(iter(executor._processes)), signal.SIGKILL)
        elif len(submitted) == 1:
            future.result()  # the worker runs: the chunks go to it
        return future

    monkeypatch.setattr(import_lines.ProcessPoolExecutor, "submit", submit_then_kill)
    outcomes = []
    parsed_by = import_lines._parsed
    monkeypatch.setattr(
        import_lines, "_parsed", lambda *a: outcomes.append(parsed_by(*a)[1]) or parsed_by(*a)
    )
    parsed = [
        p for chunk in import_lines.parse_chunks(io.BytesIO(text), 3, parallel=True) for p in chunk
    ]
    assert [p.line for p in parsed] == list(range(1, 21))
    assert all(p.fact is not None for p in parsed)
    assert (True in outcomes) == (killed_at == 3)  # a chunk it was given was parsed here


def test_chunks_are_parsed_here_until_the_worker_has_started(monkeypatch):
    import io
    import time

    from adapters import import_lines

    here = []
    parse_chunk = import_lines.parse_chunk
    monkeypatch.setattr(import_lines, "parse_chunk", lambda c: here.append(c) or parse_chunk(c))
    lines = [
        b'{"type": "AccountBanned", "account": "x:a%d", "occurred_at": "2021-01-01", '
        b'"provider": "X"}' % n
        for n in range(3000)
    ]
    chunks = import_lines.parse_chunks(io.BytesIO(b"\n".join(lines)), 1, parallel=True)
    numbers = []
    for chunk in chunks:  # read slowly: the worker starts meanwhile
        numbers += [p.line for p in chunk]
        if len(here) < len(numbers):  # parsed by the worker
            break
        time.sleep(0.01)
    chunks.close()
    assert numbers == list(range(1, len(numbers) + 1))
    assert [n for n, _ in here[0]] == [1]  # the first, parsed while the worker started
    assert 1 <= len(here) < len(numbers)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@host:notaport/db",
        "postgresql://u:hunter2@[::1/db",
        "postgresql://u:hun@ter2@host/db?schema=s",
        "sqlite://u:hunter2@x/db",
    ],
)
def test_malformed_database_urls_are_refused_without_their_password(url):
    from adapters.config import BadDatabaseURL, redacted, store_env

    assert "hunter2" not in redacted(url) and "ter2" not in redacted(url)
    if "notaport" in url or "[" in url or "sqlite" in url:
        with pytest.raises(BadDatabaseURL) as refusal:
            store_env(url)
        assert "ter2" not in str(refusal.value) and "***" in str(refusal.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(json_values)
def test_the_canonical_form_never_changes(value):
    """Event ids and digests already stored were taken of this exact text."""
    assert canonical(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


flat_values = st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.floats()
object_texts = st.lists(  # objects as text: keys may repeat, values may nest, spacing varies
    st.tuples(
        st.sampled_from(["a", "b", "type", 'q"', "c:d", "\\"]),
        flat_values | st.lists(flat_values, max_size=3) | st.dictionaries(st.text(), flat_values),
        st.sampled_from(["", " ", "\t"]),
    ),
    max_size=5,
).map(
    lambda pairs: (
        "{" + ",".join(f"{json.dumps(k)}{s}:{s}{json.dumps(v)}" for k, v, s in pairs) + "}"
    )
)


@given(object_texts | st.text(max_size=30) | json_values.map(json.dumps))
def test_reading_a_line_quickly_gives_what_the_json_module_gives(text):
    """orjson reads lines without escapes; the `json` module, the rest: the same values, and
    the same refusals (a repeated key among them)."""
    from adapters.json_input import decode, read_json

    def outcome(read):
        try:
            return read(text)
        except InvalidInput as refusal:
            return str(refusal)

    assert repr(outcome(decode)) == repr(outcome(read_json))


@given(st.sampled_from(sorted(EXAMPLES)), st.data())
def test_a_facts_own_fields_are_written_as_the_format_writes_them(event_type, data):
    """What digests are taken of never changes: pydantic's JSON dump of the validated input."""
    from adapters.interchange import EVENT_INPUT, IGNORED_KEYS, json_value

    retraction = event_type == "EventRetracted"
    optional = {k: v for k, v in OPTIONAL.items() if not (retraction and k == "sources")}
    raw = EXAMPLES[event_type] | data.draw(st.fixed_dictionaries({}, optional=optional))
    model = EVENT_INPUT.validate_python(raw)
    own = {k: json_value(v) for k, v in model.__dict__.items() if k not in IGNORED_KEYS}
    assert own == model.model_dump(mode="json", exclude=set(IGNORED_KEYS))


def test_parsed_lines_cross_to_the_importing_process_unchanged():
    """Parsed lines cross as parsed, each fact that names its subject with its stored state
    encoded ahead (a retraction naming none has none: its kind of subject is not known)."""
    from dataclasses import replace

    from adapters.import_lines import pack, unpack
    from adapters.interchange import ParsedLine

    lines = [json.dumps(raw) for raw in EXAMPLES.values()] + ["{not json", json.dumps(CUT)]
    lines.append(json.dumps(CUT | {"note": "lone \ud800 surrogate"}))
    parsed = parse_lines(lines)
    facts = list(parsed)
    crossed = unpack(pack(facts, "ana"))
    assert [replace(p, fact=p.fact and replace(p.fact, ahead=None)) for p in crossed] == facts
    assert [p.fact.ahead is not None for p in crossed if p.fact] == [
        p.fact.subject is not None for p in crossed if p.fact
    ]
    assert any(p.error for p in facts) and isinstance(facts[0], ParsedLine)
