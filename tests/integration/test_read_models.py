"""The query port's two implementations agree, and the read models survive crashes and
rebuilds (every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from unittest.mock import patch

import pytest
from eventsourcing.persistence import Tracking
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.composition import Services, open_services, projections, rebuild
from adapters.derivation import DerivationFailed, Workers
from adapters.interchange import parse_instant
from adapters.read_models.backends import bulk_format, status_view
from adapters.read_models.queries import believed
from adapters.read_models.writer import Writer
from adapters.serialize import from_json_text, status_text
from domain.clock import micros
from domain.errors import UnknownSubject
from domain.values import STATUSES, SubjectKey
from projections.ports import Rows
from projections.runner import Runner
from service.queries import Queries
from tests.helpers import (
    example_facts,
    exported,
    fact,
    record_history,
    registration,
    store_settings,
)
from tests.reference import FoldQueries
from tests.strategies import COUNTRIES, store_histories

PARLER = SubjectKey.platform("parler")


def moments(tracker: Services) -> list:
    """Every moment a status can change (valid times and suspension ends), and just before."""
    changes = set()
    for record in exported(tracker):
        for key in ("occurred_at", "until"):
            if key in record:
                changes.add(parse_instant(record[key]))
    return sorted(changes | {m - timedelta(microseconds=1) for m in changes})


def instants(tracker: Services) -> list:
    """Every moment the store's knowledge changed (a write's recording time), and just
    before: the `known_at`s at which answers can differ."""
    recorded = {parse_instant(r["recorded_at"]) for r in exported(tracker)}
    return sorted(recorded | {m - timedelta(microseconds=1) for m in recorded})


def answer(question: Callable[[], object]) -> object:
    """What a query answers, or the refusal it gives (its type and message)."""
    try:
        return question()
    except UnknownSubject as refusal:
        return type(refusal), str(refusal)


def answers(queries: Queries, keys: list[SubjectKey], at_moments: list, known_at=None) -> list:
    """Every answer the port gives about a store as known at `known_at`: statuses of everyone
    (filtered by each status too) and of each subject at every moment, histories (whole and
    paged), intervals."""
    found: list = []
    for moment in at_moments:
        everyone = queries.statuses(moment, known_at)
        found.append(everyone)
        # As JSON (the read models pass the stored documents on) and by the status column.
        found += [(from_json_text(status_text(s)), s.status) for s in everyone]
        found += [queries.statuses(moment, known_at, status) for status in STATUSES]
        found += [answer(partial(queries.status, key, moment, known_at)) for key in keys]
        found += [queries.page(moment, known_at, status, None, 1, 0) for status in STATUSES]
        found += [
            queries.page(moment, known_at, None, kind, 1, offset)
            for kind in (None, "platform", "account")
            for offset in (0, 1, 5)
        ]
        found.append(queries.page(moment, known_at, None, None, 5, 0, provider="H"))
        for region in COUNTRIES:  # in a country: its own answers, or elsewhere's
            found.append(queries.statuses(moment, known_at, None, region))
            found += [queries.statuses(moment, known_at, s, region) for s in STATUSES]
            found.append(queries.page(moment, known_at, None, None, 1, 1, region=region))
    for key in keys:
        found.append(answer(partial(queries.history, key, known_at)))
        found.append(answer(partial(queries.history, key, known_at, 2, 1)))
        found.append(answer(partial(queries.history, key, known_at, region="BR")))
        if len(at_moments) > 1:
            window = (at_moments[0], at_moments[len(at_moments) // 2])
            found.append(answer(partial(queries.history, key, known_at, between=window)))
        found.append(queries.exists(key, known_at))
    found.append(queries.intervals([*keys, SubjectKey.platform("unknown")], known_at))
    for region in COUNTRIES:
        found.append(queries.intervals(keys, known_at, region))
        found.append(queries.naming(region, known_at, 3))
    if at_moments:  # the periods overlapping a range of valid time (reports add them up)
        found.append(queries.periods(keys, at_moments[0], at_moments[-1], known_at))
        found += [
            queries.acted_on(provider, at_moments[0], at_moments[-1], known_at)
            for provider in ("H", "k", "P")
        ]
        if known_at is None:
            found.append(queries.changed(at_moments[0], at_moments[len(at_moments) // 2]))
    return found


def test_the_read_models_and_the_fold_give_the_same_answers(new_store):
    """At every moment of valid time, as the store knew it at every moment of transaction
    time (each recording, and just before it), on random histories with late facts and
    retractions."""

    @store_settings(new_store)
    @given(store_histories(), st.randoms(use_true_random=False))
    def check(history, pick):
        tracker = new_store()
        try:
            record_history(tracker, *history)
            at = moments(tracker)
            keys = [SubjectKey.platform("site"), SubjectKey.account("NET:X")]
            fold = FoldQueries(tracker.app)
            read_models = tracker.queries.read_models
            assert answers(read_models, keys, at) == answers(fold, keys, at)
            known = instants(tracker)
            for known_at in pick.sample(known, min(8, len(known))):  # pairs drawn at random
                some = sorted(pick.sample(at, min(3, len(at))))
                assert answers(read_models, keys, some, known_at) == answers(
                    fold, keys, some, known_at
                )
        finally:
            tracker.close()

    check()


def dump(tracker: Services) -> dict[str, list]:
    """What the read models readers use hold: the subjects and their timelines, and the
    periods and runs believed at every moment the store's knowledge changed (the rows
    themselves depend on how they were written: a page supersedes every row after a late
    fact, a rebuild only those that differ)."""
    view = tracker.view
    tables = view.tables()
    known = [None, *(micros(m) for m in instants(tracker))]
    with view.cursor(commit=False) as c:
        rows: dict[str, list] = {}
        for name in ("subjects", "timeline"):
            view.execute(c, f"SELECT * FROM {tables[name]}")
            rows[name] = sorted(tuple(dict(r).values()) for r in c.fetchall())
        for name in ("periods", "intervals"):
            for k in known:
                condition, params = believed("r", k)
                view.execute(c, f"SELECT * FROM {tables[name]} r WHERE {condition}", params)
                hidden = ("known_from", "known_to")
                rows[f"{name} at {k}"] = sorted(
                    tuple(v for c, v in dict(r).items() if c not in hidden) for r in c.fetchall()
                )
        return rows


def everything(tracker: Services) -> list:
    """Every answer the read models give about the store, now and at each earlier knowledge."""
    read_models = tracker.queries.read_models
    at = moments(tracker)
    keys = sorted({s.subject for m in at for s in read_models.statuses(m, None)}, key=str)
    found = answers(read_models, keys, at)
    for known_at in instants(tracker)[:: max(len(at) // 4, 1)]:
        found += answers(read_models, keys, at[::3], known_at)
    return found


def runner_on(tracker: Services, view: Writer, derivation=None, **options) -> Runner:
    """A runner of the projections the tracker lists, on a generation of read models."""
    return Runner(tracker.app, view, projections(tracker.app, view, derivation), **options)


class Crash(Exception):
    pass


@pytest.mark.parametrize("bulk", [10**9, 0], ids=["page by page", "in windows"])
def test_a_projection_killed_halfway_and_restarted_ends_as_a_rebuild(database_url, bulk):
    writer = open_services(database_url, embedded=False)
    for new in example_facts():  # one transaction each, so pages cut across them
        writer.record([new])
    writer.record([fact("EventRetracted", retracts=example_facts()[-2].event_id, reason="r")])

    tracker = open_services(database_url)
    view = status_view(tracker.app.factory.datastore)
    runner = runner_on(tracker, view, page=3, bulk=bulk, window=7)
    calls = {"n": 0}

    def crash_midway(write):  # a write of rows in the middle of a later page or window
        def writing(cursor, statement, rows, *more):
            calls["n"] += bool(rows)
            if calls["n"] == (40 if bulk else 9):
                raise Crash
            return write(cursor, statement, rows, *more)

        return writing

    runner.view.executemany = crash_midway(runner.view.executemany)
    runner.view.insert = crash_midway(runner.view.insert)  # COPY, on PostgreSQL
    with pytest.raises(Crash):
        runner.catch_up()
    assert 0 < runner.position < writer.app.head()

    restarted = open_services(database_url)  # a new process picks up where the tracking says
    restarted.runner.catch_up()
    assert restarted.queries.status(PARLER).status == "offline"  # DDoS-Guard's return retracted
    after_restart = dump(restarted)
    rebuild(restarted)
    assert dump(restarted) == after_restart
    for opened in (writer, tracker, restarted):
        opened.close()


def test_a_rebuild_folding_each_subject_once_gives_what_the_runner_built(new_store):
    """Facts late and out of order, retractions, timed suspensions: a rebuild (subject by
    subject, in batches of at most 3 events, each subject's rows derived and written 2
    periods at a time) and the runner (page by page, as facts arrived) fill the same rows."""

    @settings(store_settings(new_store), max_examples=max(new_store.examples // 3, 5))
    @given(store_histories())
    def check(history):
        tracker = new_store()
        try:
            record_history(tracker, *history)
            before = dump(tracker)
            with (
                patch("projections.status_projection.SLICE", 2),
                patch("projections.status_projection.BATCH_EVENTS", 3),
            ):
                rebuild(tracker)
            assert dump(tracker) == before
        finally:
            tracker.close()

    check()


def test_a_backlog_applied_in_windows_gives_what_page_by_page_gives(new_store):
    """A runner behind by more than `bulk` events folds each subject a window touches once
    per window (windows of 5 positions here, so that subjects span several)."""

    @settings(store_settings(new_store), max_examples=max(new_store.examples // 3, 5))
    @given(store_histories())
    def check(history):
        tracker = new_store()
        try:
            record_history(tracker, *history)  # page by page, as facts arrived
            by_pages = dump(tracker)
            view = status_view(tracker.app.factory.datastore)
            view.start_generation(view.meta()["generation"] + 1)
            windows = runner_on(tracker, view, serves_readers=False, bulk=0, window=5)
            assert windows.catch_up() >= tracker.app.head() - 1
            view.activate()
            tracker.view.follow_active()
            assert dump(tracker) == by_pages
        finally:
            tracker.close()

    check()


def test_worker_processes_derive_a_window_as_this_process_would(new_store, monkeypatch):
    """A window is derived by worker processes (here every window, a subject per batch, so
    that both workers take several): its rows are those the runner built page by page, and
    the tails the workers send back let the runner extend them with a fact that sorts last."""
    monkeypatch.setattr("adapters.derivation.SMALLEST", 0)
    monkeypatch.setattr("projections.status_projection.BATCH", 1)
    windows = []
    derive = Workers.__call__

    def counted(self, *args):
        windows.append(args[1:])
        return derive(self, *args)

    monkeypatch.setattr(Workers, "__call__", counted)

    @settings(store_settings(new_store), max_examples=3)
    @given(store_histories())
    def check(history):
        tracker = new_store()
        try:
            tracker.record(example_facts())
            record_history(tracker, *history)
            view = status_view(tracker.app.factory.datastore)
            view.start_generation(view.meta()["generation"] + 1)
            runner = runner_on(tracker, view, tracker.derivation, serves_readers=False, bulk=0)
            windows.clear()
            assert runner.catch_up() >= tracker.app.head() - 1
            assert windows == [(tracker.app.head(), 0)]
            by_pages = dump(tracker)
            view.activate()
            tracker.view.follow_active()
            assert dump(tracker) == by_pages

            tracker.project_writes = False
            late = datetime.now(UTC) - timedelta(minutes=1)
            tracker.record([fact("ServiceTerminated", "site", service="s", occurred_at=late)])
            runner.bulk = 10**9  # page by page from here
            load_many = tracker.app.load_many
            with patch.object(tracker.app, "load_many", wraps=load_many) as loads:
                assert runner.catch_up() == 1
            read_again = [i for call in loads.call_args_list for i in call.args[0]]
            assert read_again == [], "extended from the tail a worker sent, not read again"
            extended = dump(tracker)
            rebuild(tracker)
            assert dump(tracker) == extended
        finally:
            tracker.close()

    check()


def test_rows_a_worker_formats_for_bulk_load_are_stored_as_written(tracker):
    """A worker hands PostgreSQL its rows in `COPY`'s format (SQLite's as they are): text
    that `COPY` escapes (tabs, newlines, backslashes, what looks like its null) and nulls
    come back from the table unchanged."""
    awkward = ["tab\there", "line\nbreak\r", "back\\slash \\N", "\\N", "ünï 🚫", ""]
    subjects = [
        (f"s{i}", "account", text, text, None if i % 2 else i, i) for i, text in enumerate(awkward)
    ]
    view = tracker.view
    formatted = bulk_format(tracker.app.factory.datastore)(Rows([], [], [], [], subjects, [], []))
    assert isinstance(formatted.subjects, bytes) == (view.placeholder == "%s")
    view.apply([formatted], None)
    with view.reading() as c:
        c.execute(
            "SELECT subject_id, kind, key, identity, exists_from, known_from "
            f"FROM {view.tables()['subjects']} ORDER BY subject_id"
        )
        stored = [
            tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in c.fetchall()
        ]
    assert stored == subjects


def test_a_window_whose_worker_fails_applies_none_of_it(tracker, monkeypatch):
    monkeypatch.setattr("adapters.derivation.SMALLEST", 0)
    tracker.project_writes = False
    tracker.record(example_facts())
    broken = Workers({"PERSISTENCE_MODULE": "no_such_module"})  # a worker cannot open it
    runner = runner_on(tracker, tracker.view, broken, bulk=0)
    with pytest.raises(DerivationFailed, match=r"a worker deriving read models failed: .*no_such"):
        runner.catch_up()
    assert runner.position == 0
    assert not any(dump(tracker).values())
    runner.projections[0].derivation = None  # derived here: the window is applied
    assert runner.catch_up() == tracker.app.head()
    assert tracker.queries.status(PARLER).status == "partial"


def test_a_backlog_nobody_watches_is_applied_in_one_window(tracker):
    """Windows start small so that progress shows and a stop is heeded soon; a catch-up with
    neither (a CLI write bringing the read models up to date) takes the backlog at once."""
    tracker.project_writes = False
    tracker.record(example_facts())
    for watched in (True, False):
        view = status_view(tracker.app.factory.datastore)
        view.start_generation(view.meta()["generation"] + 1)
        runner = runner_on(tracker, view, serves_readers=False, bulk=1)
        with patch.object(
            runner.projections[0], "process_window", wraps=runner.projections[0].process_window
        ) as windows:
            runner.catch_up(progress=(lambda n: None) if watched else None)
        assert runner.position == tracker.app.head()
        assert (windows.call_count > 1) is watched


def test_a_runner_asked_to_stop_inside_a_window_applies_none_of_it(tracker, monkeypatch):
    monkeypatch.setattr("projections.status_projection.BATCH", 1)  # a subject per batch
    tracker.project_writes = False
    tracker.record(example_facts())
    stop = threading.Event()
    runner = runner_on(tracker, tracker.view, bulk=0)
    assert runner.catch_up(progress=lambda n: stop.set(), stop=stop) == 0
    assert runner.position == 0
    assert runner.catch_up() > 0 and runner.position == tracker.app.head()
    assert tracker.queries.status(PARLER).status == "partial"


def test_rebuilding_an_empty_store(tracker):
    assert rebuild(tracker).events == 0
    tracker.record(example_facts())
    assert tracker.queries.status(PARLER).status == "partial"


def indexes(view: Writer) -> set[str]:
    """The names of a generation's indexes beyond its primary keys, without its number."""
    prefix = view.tables()["index"]
    with view.cursor(commit=False) as c:
        if view.placeholder == "?":
            view.execute(c, "SELECT name FROM sqlite_master WHERE type = 'index'")
        else:
            view.execute(
                c,
                "SELECT indexname AS name FROM pg_indexes WHERE schemaname = %s",
                [view.datastore.schema],
            )
        names = [row["name"] for row in c.fetchall()]
    return {
        n.removeprefix(prefix)
        for n in names
        if n.startswith(prefix + "_") and not n.endswith("_pkey")
    }


def test_a_rebuilt_generation_is_indexed_for_readers_as_a_new_one(tracker):
    """A rebuild writes its rows indexed by their primary keys only, then adds the indexes
    readers use before they switch to it."""
    tracker.record(example_facts())
    fresh = indexes(tracker.view)
    assert {"_periods_at", "_intervals_status", "_timeline_provider"} <= fresh
    view = status_view(tracker.app.factory.datastore)
    view.start_generation(view.meta()["generation"] + 1)
    runner_on(tracker, view, serves_readers=False).rebuild(tracker.app.head())
    assert indexes(view) == set()
    view.activate()
    assert indexes(view) == fresh


def test_rebuilding_a_populated_store_changes_nothing_readers_see(tracker):
    tracker.record(example_facts())
    before = (dump(tracker), everything(tracker))
    first = rebuild(tracker)
    assert (dump(tracker), everything(tracker)) == before
    second = rebuild(tracker)
    assert (first.generation, second.generation, second.replaced) == (2, 3, 2)
    assert first.events == second.events == tracker.app.head()
    assert (dump(tracker), everything(tracker)) == before


def test_readers_of_another_process_follow_a_rebuild(database_url):
    tracker, other = open_services(database_url), open_services(database_url)
    tracker.record(example_facts())
    before = everything(other)
    rebuild(tracker)  # drops the generation `other` was reading
    assert everything(other) == before
    for opened in (tracker, other):
        opened.close()


def test_a_store_of_an_older_read_model_layout_moves_to_a_fresh_generation(database_url):
    tracker = open_services(database_url)
    tracker.record(example_facts())
    before = everything(tracker)
    view = tracker.view
    with view.cursor(commit=True) as c:  # as a store of layout 1 left it
        view.execute(c, f"DELETE FROM {view.tables()['meta']} WHERE name = 'layout'")
    tracker.close()

    reopened = open_services(database_url)
    assert reopened.view.generation == 2 and reopened.runner.progress().lag > 0
    reopened.runner.catch_up()
    assert everything(reopened) == before
    reopened.close()


def test_facts_that_sort_last_extend_the_rows_without_deriving_them_again(tracker):
    """Timed suspensions that run out, or are cut short by the next fact, a ban, facts at
    one moment: extended page by page, the rows are those a rebuild derives whole."""
    loaded: list = []
    load_many = tracker.app.load_many
    tracker.app.load_many = lambda ids, *rest: loaded.append(list(ids)) or load_many(ids, *rest)
    account = "net:trickle"
    steps = [
        ("AccountSuspended", "2021-01-01T00:00:00Z", {"until": "2021-01-02T00:00:00Z"}),
        ("AccountSuspended", "2021-01-03T00:00:00Z", {"until": "2021-01-05T00:00:00Z"}),
        ("AccountBanned", "2021-01-04T00:00:00Z", {}),  # before the suspension runs out
        ("AccountReinstated", "2021-01-06T00:00:00Z", {}),
        ("AccountSuspended", "2021-01-06T00:00:01Z", {"until": "2021-02-01T00:00:00Z"}),
    ]
    for kind, moment, extra in steps:
        tracker.record([fact(kind, account, occurred_at=moment, **extra)])
    tracker.record(example_facts())
    # The runner reads subjects from the store only for the account's first fact and for the
    # example's subjects (the writer reads through its own transaction).
    assert len([ids for ids in loaded if ids]) == 2
    before = dump(tracker)
    rebuild(tracker)
    assert dump(tracker) == before


def test_a_late_fact_or_a_retraction_redoes_the_rows_only_from_where_it_lands(tracker):
    """A subject with a long history takes late facts and retractions: the runner never reads
    its history whole (it restores it from its checkpoints, reading the facts from the change
    on), and writes only the periods from the change on; the rows are those a rebuild
    derives whole."""
    hot, days = "hot", 300
    history = [registration(hot)]
    for day in range(1, days + 1):  # the iOS listing removed and reinstated, day after day
        kind = "AppStoreRemoved" if day % 2 else "AppStoreReinstated"
        moment = (datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=day)).isoformat()
        history.append(fact(kind, hot, occurred_at=moment, store="apple_app_store"))
    tracker.record(history)
    tracker.runner.projections[0].subjects.clear()  # as after a restart: nothing in memory
    hot_id = SubjectKey.platform(hot).id
    loads, written = [], []
    load_many = tracker.app.load_many
    tracker.app.load_many = lambda ids, *rest: loads.append(hot_id in ids) or load_many(ids, *rest)
    view_class = type(tracker.view)
    insert = view_class.insert

    def counted(self, c, table, rows, *more):
        if table == self.tables()["periods"]:
            written.append(len(rows))
        return insert(self, c, table, rows, *more)

    late = fact(
        "ServiceTerminated", hot, occurred_at="2021-09-28T12:00:00Z", service="cdn", event_id="l"
    )
    with patch.object(view_class, "insert", counted):
        tracker.record([late])  # day 270.5: the 30 days after it change (their services)
        tracker.record([fact("DomainSuspended", hot, occurred_at="2021-10-20T00:00:00Z")])
        tracker.record([fact("EventRetracted", retracts="l", reason="wrong platform")])
    assert not any(loads)  # never read whole
    assert max(written) <= 40 and sum(written) < days // 2  # not the 300 periods each time
    assert tracker.queries.status(SubjectKey.platform(hot)).document.domain == "suspended"
    before = dump(tracker)
    rebuild(tracker)
    assert dump(tracker) == before


def round_trips(services: Services, read: Callable[[], object]) -> list[str]:
    """What `read` sends PostgreSQL, by libpq's trace of every pooled connection: one entry
    per round trip (a simple query, by its text; or a statement, by its first message)."""
    import tempfile

    pool = services.app.factory.datastore.pool
    held = [pool.getconn() for _ in range(pool.max_size)]
    with tempfile.TemporaryFile("w+") as trace:
        for connection in held:
            connection.pgconn.trace(trace.fileno())
            connection.pgconn.set_trace_flags(1 | 2)  # no timestamps: the messages only
            pool.putconn(connection)
        read()
        for connection in held:  # back in the pool, idle
            connection.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines() if line.startswith("F")]
    trips, first = [], None
    for message in sent:
        first = first or (message[3].strip() if message[2] == "Query" else message[2])
        if message[2] in ("Query", "Sync"):
            trips.append(first)
            first = None
    return trips


def test_a_status_at_t_is_one_statement_and_where_the_read_models_stand_one_more(
    postgres_database,
):
    """No BEGIN and ROLLBACK around a read: a status is the pool's check of its connection
    and one statement; so is the read models' standing, when no runner follows the log here."""
    services = open_services(f"{postgres_database}?schema=r_{uuid.uuid4().hex[:8]}")
    try:
        services.record(example_facts())
        key, moment = SubjectKey.platform("parler"), parse_instant("2021-01-12")
        status = round_trips(
            services, lambda: services.queries.read_models.status(key, moment, None)
        )
        standing = round_trips(services, services.runner.progress)
        assert status == standing == ['""', "Parse"]  # the pool's check, then the statement
        assert services.runner.progress().position == services.app.head()
    finally:
        services.close()


def test_every_subject_at_t_looks_up_one_period_a_subject(new_store, monkeypatch):
    """Every subject's status at T is one lookup of its period a subject: SQLite's plan walks
    the subjects (it scanned every period before), and PostgreSQL's compiles nothing (its
    JIT spent twice the query's time compiling a plan it guessed costly). The documents
    stay as stored until something reads them."""
    tracker = new_store()
    try:
        tracker.record(example_facts())
        statements: list = []
        execute = tracker.view.execute
        monkeypatch.setattr(
            tracker.view,
            "execute",
            lambda c, q, p=(): (statements.append((q, p)), execute(c, q, p)),
        )
        found = tracker.queries.statuses(parse_instant("2021-01-12"))
        assert found and all(s.stored is not None for s in found)
        ((query, params),) = statements
        with tracker.view.reading() as c:
            if tracker.view.lateral:  # PostgreSQL
                c.execute("SHOW jit")
                assert c.fetchone()["jit"] == "off"
                return
            execute(c, f"EXPLAIN QUERY PLAN {query}", params)
            plan = [row[3] for row in c.fetchall()]
        assert plan[0].startswith("SCAN s") and not any(p.startswith("SCAN p") for p in plan)
    finally:
        tracker.close()


def test_bulk_writes_and_rebuilds_gather_the_planners_statistics_on_postgresql(
    postgres_database, monkeypatch
):
    """PostgreSQL plans on statistics that autovacuum may not have gathered yet (or never,
    when it is off): a bulk write of many events gathers those of the event store, and a
    rebuild those of its new generation, so that reading histories and readers' queries use
    the primary keys. A small write leaves it to autovacuum."""
    monkeypatch.setattr("adapters.persistence.ANALYZE_AFTER", 5)
    schema = f"a_{uuid.uuid4().hex[:12]}"
    tracker = open_services(f"{postgres_database}?schema={schema}")
    try:

        def analyzed() -> set[str]:
            with tracker.view.reading() as c:
                c.execute("SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = %s", [schema])
                return {row["tablename"] for row in c.fetchall()}

        facts = example_facts()
        tracker.record(facts[:1])  # two events: the subject tracked, and its fact
        assert analyzed() == set()
        tracker.import_stream(iter([facts[1:]]))
        assert analyzed() == {"deplatforming_events", "deplatforming_event_ids"}
        generation = rebuild(tracker).generation
        tables = {
            f"rm{generation}_{name}" for name in ("periods", "intervals", "subjects", "timeline")
        }
        assert analyzed() == {"deplatforming_events", "deplatforming_event_ids"} | tables
    finally:
        tracker.close()


class Counting:
    """A read model of its own beside the status one: the positions it was handed, kept
    with its tracking record."""

    name = "counting"

    def __init__(self, services: Services) -> None:
        self.view, self.recorder = services.view, services.app.recorder
        self.seen: list[int] = []

    def process_page(self, page, tracking) -> None:
        self.view.apply([], tracking)
        self.seen += [position for position, _ in page]

    def process_window(self, after, upto, progress=None, stop=None) -> int:
        self.view.apply([], Tracking(self.view.tracking_key(self.name), upto))
        handed = self.recorder.select_notifications(
            after, upto - after, stop=upto, inclusive_of_start=False
        )
        self.seen += [n.id for n in handed]
        return len(handed)

    def forget(self) -> None:
        pass


@pytest.mark.parametrize("bulk", [10**9, 0], ids=["page by page", "in windows"])
def test_a_projection_added_to_the_list_is_handed_the_events_after_its_own_position(tracker, bulk):
    """Each projection keeps its own tracking record: a new one starts from the first event
    while the status one, up to date, is handed nothing again; then both go on together."""
    tracker.record(example_facts())
    status, counting = tracker.runner.projections[0], Counting(tracker)
    runner = Runner(tracker.app, tracker.view, [status, counting], bulk=bulk)
    head = tracker.app.head()
    with (
        patch.object(status, "process_page", wraps=status.process_page) as pages,
        patch.object(status, "process_window", wraps=status.process_window) as windows,
    ):
        assert runner.catch_up() == head
        assert pages.call_count == windows.call_count == 0
    assert counting.seen == [n.id for n in tracker.app.recorder.select_notifications(0, head)]
    assert runner.positions() == {"status": head, "counting": head}

    tracker.project_writes = False
    tracker.record([fact("AccountBanned", "net:late", occurred_at="2021-02-01")])
    assert runner.catch_up() > 0
    assert runner.positions() == {"status": tracker.app.head(), "counting": tracker.app.head()}
    assert counting.seen[-1] == tracker.app.head()
    assert tracker.queries.status(SubjectKey.account("net:late")).status == "banned"
