"""The application on real stores (every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import timedelta

import pytest
from hypothesis import given

from adapters.composition import Services, open_services
from adapters.interchange import to_new_fact
from adapters.serialize import history_json, status_json
from domain.clock import now
from domain.errors import UnknownSubject
from domain.values import SubjectKey
from projections.subject_cache import SubjectCache
from service.application import Writing
from service.recording import NewFact
from tests.helpers import (
    WORKED_EXAMPLE,
    at,
    example_facts,
    exported,
    fact,
    registration,
    store_settings,
)
from tests.strategies import store_histories

PARLER = SubjectKey.platform("parler")
TWITTER = SubjectKey.account("twitter:realDonaldTrump")
FACEBOOK = SubjectKey.account("facebook:donaldtrump")  # another spelling of the same account


def statuses(tracker: Services, as_of: str) -> list[dict]:
    """Every subject's status document at as_of, without the query's own known_at."""
    return [status_json(s) | {"known_at": None} for s in tracker.queries.statuses(at(as_of))]


def history(tracker: Services, key: SubjectKey, **options) -> list[dict]:
    return [history_json(e) for e in tracker.queries.history(key, **options)]


@pytest.fixture
def example(tracker: Services) -> Services:
    outcome = tracker.record(example_facts())
    assert outcome.committed and not outcome.rejected
    return tracker


@pytest.mark.parametrize(("as_of", "overall", "channels", "twitter", "facebook"), WORKED_EXAMPLE)
def test_the_worked_example(example, as_of, overall, channels, twitter, facebook):
    parler = example.queries.status(PARLER, at(as_of))
    assert parler.status == overall
    assert tuple(status_json(parler)["channels"].values()) == channels
    assert example.queries.status(TWITTER, at(as_of)).status == twitter
    assert example.queries.status(FACEBOOK, at(as_of)).status == facebook
    assert example.queries.status(FACEBOOK, at(as_of)).subject.key == "facebook:DonaldTrump"


def test_reimporting_records_nothing_and_reports_duplicates(example):
    again = example.record(example_facts())
    assert (again.recorded, len(again.duplicates), again.rejected) == ([], 12, [])
    assert len(exported(example)) == 12


def test_a_failed_atomic_import_leaves_the_store_as_it_was(example):
    before = exported(example)
    outcome = example.record(
        [
            fact("DomainSuspended", "parler", occurred_at="2021-02-01"),
            fact("PlatformRegistered", "gab", name="Gab", occurred_at="2016-08-01"),
            fact("DomainSuspended", "parler", occurred_at="2021-02-02"),  # already suspended
        ]
    )
    assert [r.conflicts_with for r in outcome.rejected] == [outcome.recorded[0]]
    assert not outcome.committed
    assert exported(example) == before
    with pytest.raises(UnknownSubject):
        example.queries.status(SubjectKey.platform("gab"))


def test_skipping_invalid_facts_records_the_valid_ones(example):
    outcome = example.record(
        [
            fact("DomainSuspended", "parler", occurred_at="2021-02-01"),
            fact("DomainSuspended", "parler", occurred_at="2021-02-02"),
            fact("AccountReinstated", "twitter:realdonaldtrump", occurred_at="2021-02-03"),
        ],
        atomic=False,
    )
    assert (len(outcome.recorded), len(outcome.rejected), outcome.committed) == (2, 1, True)
    assert example.queries.status(PARLER, at("2021-02-05T00:00:00Z")).status == "offline"
    assert example.queries.status(TWITTER, at("2021-02-05T00:00:00Z")).status == "active"


def test_an_event_id_is_global_and_reusing_it_with_other_content_is_rejected(example):
    first = example.record(
        [fact("DomainSuspended", "parler", occurred_at="2021-02-01", event_id="e-1")]
    )
    assert first.committed
    other_subject = example.record(
        [fact("AccountBanned", "x:y", occurred_at="2021-02-01", event_id="e-1")]
    )
    assert "already recorded with different content" in other_subject.rejected[0].error
    same = example.record(
        [fact("DomainSuspended", "parler", occurred_at="2021-02-01", event_id="e-1")]
    )
    assert same.duplicates == ["e-1"] and not same.recorded


def test_platform_events_need_a_registered_platform(tracker):
    outcome = tracker.record([fact("DomainSuspended", "ghost", occurred_at="2021-02-01")])
    assert "unknown platform 'ghost'" in outcome.rejected[0].error
    with pytest.raises(UnknownSubject, match="no record of platform 'ghost'"):
        tracker.queries.status(SubjectKey.platform("ghost"))


def test_an_unknown_subject_is_offered_the_closest_spellings_among_many(example):
    """Among hundreds of look-alike keys, a typo still finds what it meant, without comparing
    it with every subject (only with those sharing most letter pairs with it)."""
    example.record([registration(f"parl-{n}") for n in range(300)])
    with pytest.raises(UnknownSubject, match="did you mean 'parler'"):
        example.queries.status(SubjectKey.platform("parlor"))
    with pytest.raises(UnknownSubject, match="did you mean 'parl-17'"):
        example.queries.status(SubjectKey.platform("parl-17x"))


def test_a_retraction_changes_what_is_known_from_its_recording_on(example):
    cut = next(r for r in exported(example) if r["type"] == "HostingTerminated")
    before = now()
    outcome = example.record([fact("EventRetracted", retracts=cut["event_id"], reason="misdated")])
    assert outcome.committed
    as_of = at("2021-01-12T00:00:00Z")
    assert example.queries.status(PARLER, as_of).status == "partial"  # stores still delisted
    assert example.queries.status(PARLER, as_of, known_at=before).status == "offline"
    entries = {h["event_id"]: h for h in history(example, PARLER)}
    assert entries[cut["event_id"]]["retraction"]["reason"] == "misdated"
    assert history(example, PARLER, known_at=before)[3]["retracted"] is False


def test_a_retraction_naming_the_wrong_subject_or_an_unknown_event_is_rejected(example):
    cut = next(r for r in exported(example) if r["type"] == "HostingTerminated")
    wrong = example.record(
        [fact("EventRetracted", "twitter:realDonaldTrump", retracts=cut["event_id"], reason="r")]
    )
    assert "belongs to 'parler'" in wrong.rejected[0].error
    unknown = example.record([fact("EventRetracted", retracts="no-such-event", reason="r")])
    assert "not recorded" in unknown.rejected[0].error


def test_history_is_in_valid_time_order_with_positions_from_the_global_order(example):
    entries = history(example, PARLER)
    assert [h["occurred_at"] for h in entries] == sorted(h["occurred_at"] for h in entries)
    positions = {r["event_id"]: r["position"] for r in exported(example)}
    assert {h["event_id"]: h["position"] for h in entries} == {
        h["event_id"]: positions[h["event_id"]] for h in entries
    }


def test_status_of_all_subjects_lists_those_that_exist_at_as_of(example):
    at_start = example.queries.statuses(at("2021-01-07T00:30:00Z"))
    assert [s.subject.key for s in at_start] == ["parler", "twitter:realDonaldTrump"]
    assert example.queries.statuses(at("2018-01-01T00:00:00Z")) == []
    assert len(example.queries.statuses(at("2021-01-12T00:00:00Z"))) == 4


def test_unknown_and_not_yet_existing_subjects(example):
    with pytest.raises(UnknownSubject, match="did not exist yet"):
        example.queries.status(PARLER, at("2018-01-01T00:00:00Z"))
    with pytest.raises(UnknownSubject, match="nothing was known"):
        example.queries.status(PARLER, known_at=now() - timedelta(days=1))
    assert example.queries.status(TWITTER, at("2020-01-01T00:00:00Z")).status == "active"


def test_export_then_import_into_an_empty_store_gives_the_same_statuses(example, database_url):
    records = exported(example)
    target_url = (
        database_url.replace("store.db", "copy.db")
        if database_url.startswith("sqlite")
        else database_url.rsplit("=", 1)[0] + "=copy_" + database_url.rsplit("=", 1)[1]
    )
    copy = open_services(target_url)
    try:
        outcome = copy.record([to_new_fact(r) for r in records])
        assert outcome.committed and len(outcome.recorded) == len(records)
        for as_of, *_ in WORKED_EXAMPLE:
            assert statuses(copy, as_of) == statuses(example, as_of)
        again = copy.record([to_new_fact(r) for r in records])
        assert not again.recorded and len(again.duplicates) == len(records)
    finally:
        copy.close()


def test_concurrent_writers_of_the_same_facts_record_them_once(database_url):
    apps = [open_services(database_url) for _ in range(4)]
    outcomes = []
    facts = example_facts()

    def write(tracker: Services) -> None:
        outcomes.append(tracker.record(facts))

    threads = [threading.Thread(target=write, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(len(o.recorded) for o in outcomes if o.committed) == [12]
        assert all(len(o.duplicates) == 12 for o in outcomes if not o.committed)
        assert len(exported(apps[0])) == 12
    finally:
        for app in apps:
            app.close()


def test_a_subject_written_lately_takes_a_fact_reading_only_its_newer_events(database_url):
    """The writer keeps the subjects it wrote; another process's writes still count."""
    writer, other = open_services(database_url, embedded=False), open_services(database_url)
    account = "net:hot"
    writer.record([fact("AccountSuspended", account, occurred_at="2021-01-01")])
    other.record([fact("AccountReinstated", account, occurred_at="2021-01-02")])
    folded: list = []  # the stored events each write folds into subjects
    fold = writer.app.fold
    writer.app.fold = lambda events, *rest: fold(folded.append(list(events)) or events, *rest)
    banned_late = writer.record([fact("AccountBanned", account, occurred_at="2021-01-03")])
    assert banned_late.committed and not any(folded)  # from memory, fast-forwarded
    refused = writer.record(
        [fact("AccountReinstated", account, occurred_at="2021-01-01T12:00:00Z")]
    )
    assert refused.rejected and "would make event" in refused.rejected[0].error
    for opened in (writer, other):
        opened.close()


def test_a_refused_atomic_batch_leaves_no_unwritten_fact_in_memory(tracker):
    account = "net:cached"
    tracker.record([fact("AccountSuspended", account, occurred_at="2021-01-01")])
    refused = tracker.record(
        [
            fact("AccountBanned", account, occurred_at="2021-02-01"),
            fact("AccountReinstated", "net:other", occurred_at="2021-02-01"),  # not suspended
        ]
    )
    assert refused.rejected and not refused.committed
    later = tracker.record([fact("AccountSuspended", account, occurred_at="2021-03-01")])
    assert later.committed  # the ban was never written: the account is not banned


def drawn_stream(history) -> list:
    """A drawn history as one stream: its facts, then retractions of some of them."""
    facts, retract = history
    stream = [registration(app_stores=["google_play"]), *facts]
    return stream + [
        fact("EventRetracted", retracts=stream[int(share * len(stream))].event_id, reason="r")
        for share in retract
    ]


def facts_of(tracker: Services) -> list[dict]:
    """The store's facts subject by subject, each subject's in recording order (a batch
    writes subject after subject), without the moments and positions they were given."""
    records = [
        {k: v for k, v in r.items() if k not in ("recorded_at", "position")}
        for r in exported(tracker)
    ]
    return sorted(records, key=lambda r: str(r.get("platform") or r.get("account")))


def verdicts(outcome) -> tuple:
    """How many were recorded and duplicates (an import keeps no ids), and each refusal."""
    rejected = [(r.event_id, r.error) for r in outcome.rejected]
    return outcome.recorded_count, outcome.duplicate_count, rejected


def test_a_stream_imported_in_chunks_gives_what_one_batch_gives(new_store, monkeypatch):
    """Chunks of three facts, room in memory for two facts, and blocks of two actions:
    subjects are frozen between chunks, or dropped and read back through the import's
    transaction, and every verdict is the same; each reports the position of the last
    event it wrote."""
    monkeypatch.setattr("service.application.IMPORT_FACTS", 2)
    monkeypatch.setattr("domain.timeline.BLOCK", 2)

    @store_settings(new_store)
    @given(store_histories())
    def check(history):
        stream = drawn_stream(history)
        whole, chunked = new_store(), new_store()
        try:
            in_one = whole.record(stream, atomic=False)
            chunks = [stream[i : i + 3] for i in range(0, len(stream), 3)]
            streamed = chunked.import_stream(iter(chunks), atomic=False)
            assert verdicts(streamed) == verdicts(in_one)
            assert streamed.committed == in_one.committed
            assert facts_of(chunked) == facts_of(whole)
            for outcome, store in ((in_one, whole), (streamed, chunked)):  # the last written
                assert outcome.position == (store.app.head() if outcome.committed else None)
        finally:
            whole.close()
            chunked.close()

    check()


def test_a_refusal_in_a_late_chunk_undoes_the_whole_atomic_import(tracker):
    good = [fact("AccountSuspended", f"net:u{i}", occurred_at="2021-01-01") for i in range(5)]
    bad = fact("AccountReinstated", "net:never", occurred_at="2021-01-01")  # not suspended
    outcome = tracker.import_stream(iter([good[:3], good[3:], [bad]]))
    assert not outcome.committed and outcome.rejected[0].event_id == bad.event_id
    assert tracker.app.head() == 0 and exported(tracker) == []
    again = tracker.import_stream(iter([good[:3], good[3:]]), commit_if=lambda: False)
    assert not again.committed and tracker.app.head() == 0
    done = tracker.import_stream(iter([good[:3], good[3:]]))
    assert done.committed and len(exported(tracker)) == 5


def test_a_long_history_read_for_a_write_is_held_compact_and_judged_whole(database_url):
    """A process that does not hold a subject reads its history for a write, folds it once and
    freezes it whole (reading many long histories never holds them all live); the facts it
    then judges are judged against the whole history, late ones too."""
    writer = open_services(database_url, embedded=False)
    start = at("2021-01-01T00:00:00Z")

    def hosting(type_: str, hours: float, provider: str, **fields) -> NewFact:
        moment = (start + timedelta(hours=hours)).isoformat()
        return fact(type_, "site", occurred_at=moment, provider=provider, **fields)

    history = [registration()]
    for n in reversed(range(150)):  # an extra host added and dropped, hour after hour, late
        history.append(hosting("HostingRestored", 2 * n, f"cdn-{n}", scope="partial"))
        history.append(hosting("HostingTerminated", 2 * n + 1, f"cdn-{n}"))
    assert writer.record(history).committed

    reader = open_services(database_url, embedded=False)
    site = SubjectKey.platform("site").id
    with reader.app.index.bulk() as write:
        held = Writing(reader.app, write, SubjectCache(10**6), current=True).checkout([site])
    assert all(block.frozen for block in held[site].timeline.blocks)
    assert held[site].weight <= len(history) // 20

    dropped_twice = hosting("HostingTerminated", 11.5, "cdn-5")  # late, and no host then
    refused = reader.record([dropped_twice]).rejected
    cdn_5_dropped = next(
        f for f in history if f.type == "HostingTerminated" and f.fields["provider"] == "cdn-5"
    )
    assert [r.conflicts_with for r in refused] == [cdn_5_dropped.event_id]
    assert "cdn-5" in refused[0].error
    main_host_lost = hosting("HostingTerminated", 100.5, "H")  # late, and valid
    assert reader.record([main_host_lost]).committed
    for opened in (writer, reader):
        opened.close()


def test_an_import_builds_no_cycles_for_the_collector_to_find(tracker):
    """Why a bulk job may keep what survives each chunk out of the collector's sight
    (`spare_survivors`): what it drops is freed by reference counting, even around
    rejections, so nothing is left for the collector, however many facts."""
    import gc

    from scripts import histories

    raw = histories.history(4000, 60)
    for index in range(0, len(raw), 40):  # some refused: not yet happened
        if "occurred_at" in raw[index]:
            raw[index] = raw[index] | {"occurred_at": "2999-01-01T00:00:00Z"}
    facts = [to_new_fact(r) for r in raw]
    chunks = [facts[i : i + 500] for i in range(0, len(facts), 500)]
    tracker.project_writes = False
    gc.collect()
    gc.disable()
    try:
        outcome = tracker.import_stream(chunks, atomic=False)
        found = gc.collect()
    finally:
        gc.enable()
    assert outcome.committed and len(outcome.rejected) >= 100
    assert found < 300, f"{found} objects in cycles after importing {len(facts)} facts"


def test_opening_a_store_waits_for_no_write_nor_window_in_progress(database_url):
    """A process opening the store (a CLI command, a server starting, a writer) runs no DDL
    on what exists: `CREATE INDEX IF NOT EXISTS` would wait for every write and runner window
    in progress, and the writes behind it for it (eight writers starting together deadlocked
    on PostgreSQL)."""
    first = open_services(database_url)
    try:
        first.record(example_facts())
        periods = first.view.tables()["periods"]
        with ExitStack() as held:
            held.enter_context(first.app.index.bulk())  # on SQLite, the one write lock
            if not database_url.startswith("sqlite"):  # a runner's window, beside the write
                window = held.enter_context(first.view.cursor(commit=True))
                first.view.execute(window, f"DELETE FROM {periods} WHERE subject_id = 'none'")
            opened: list[Services] = []
            opener = threading.Thread(
                target=lambda: opened.append(open_services(database_url, timeout=30))
            )
            opener.start()
            opener.join(timeout=10)
            assert opened, "opening the store waited for the write in progress"
        opened[0].close()
    finally:
        first.close()


def banned(account: str, day: str = "2021-01-08") -> NewFact:
    return to_new_fact(
        {"type": "AccountBanned", "account": account, "occurred_at": day, "provider": "T"}
    )


@pytest.mark.parametrize(
    ("recorded", "look_alike"),
    [
        ("twitter:pepe", "twitter:\u0440\u0435\u0440\u0435"),  # all Cyrillic er and ie
        ("twitter:paymal", "twitter:payrnal"),  # rn for m
    ],
)
def test_a_handle_that_could_pass_for_a_recorded_account_is_refused_naming_it(
    tracker, recorded, look_alike
):
    assert tracker.record([banned(recorded)]).committed
    refused = tracker.record([banned(look_alike, "2021-01-09")])
    assert not refused.committed
    assert f"could pass for {recorded!r}" in refused.rejected[0].error
    other_platform = look_alike.replace("twitter:", "gab:")
    assert tracker.record([banned(other_platform)]).committed  # another platform's account


def test_compatibility_spellings_are_the_same_account_and_look_alikes_in_one_write_refused(
    tracker,
):
    fullwidth = "twitter:\uff52\uff45\uff41\uff4c\uff24\uff4f\uff4e\uff41\uff4c\uff44"
    assert tracker.record([banned("twitter:realDonald")]).committed
    assert tracker.record([banned(fullwidth, "2021-01-09")]).rejected  # banned already: same one
    together = tracker.record([banned("twitter:mallory"), banned("twitter:rnallory")])
    assert not together.committed and "could pass for 'twitter:mallory'" in str(together.rejected)
