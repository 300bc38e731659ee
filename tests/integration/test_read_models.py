"""The read models answer what the domain fold answers, and survive crashes and rebuilds
(every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given

from adapters.interchange import export_record, parse_instant
from adapters.store import open_store, rebuild, status_view
from domain.values import SubjectKey
from projections.runner import Runner
from service.application import Deplatforming
from tests.helpers import example_facts, fact
from tests.integration.test_store_properties import (  # noqa: F401
    histories,
    new_store,
    record_history,
    store_settings,
)

PARLER = SubjectKey.platform("parler")


def moments(app: Deplatforming) -> list:
    """Every moment a status can change (valid times and suspension ends), and just before."""
    changes = set()
    for record in map(export_record, app.export()):
        for key in ("occurred_at", "until"):
            if key in record:
                changes.add(parse_instant(record[key]))
    return sorted(changes | {m - timedelta(microseconds=1) for m in changes})


def answers(app: Deplatforming, at_moments: list) -> list:
    """Every subject's status document at every moment, its history and its intervals."""
    keys = sorted({s.subject for m in at_moments for s in app.statuses(m)}, key=str)
    statuses = [[s.to_json() | {"known_at": None} for s in app.statuses(m)] for m in at_moments]
    return statuses + [app.history(key) for key in keys] + [app.intervals(key) for key in keys]


def dump(app: Deplatforming) -> dict[str, list]:
    """Every row of the read models readers use (caught up first)."""
    view = app.read_models()
    tables = view.tables()
    with view.cursor(commit=False) as c:
        rows = {}
        for name in ("periods", "intervals", "current", "timeline"):
            view.execute(c, f"SELECT * FROM {tables[name]}")
            rows[name] = sorted(tuple(row) for row in (dict(r).values() for r in c.fetchall()))
        return rows


def test_read_models_give_what_the_fold_gives_at_every_moment(new_store):  # noqa: F811
    @store_settings(new_store)
    @given(histories())
    def check(history):
        app = new_store()
        try:
            record_history(app, *history)
            folding = Deplatforming(env=app.env)  # the same store, queries folding events
            try:
                at = moments(app)
                assert answers(app, at) == answers(folding, at)
            finally:
                folding.close()
        finally:
            app.close()

    check()


class Crash(Exception):
    pass


def test_a_projection_killed_halfway_and_restarted_ends_as_a_rebuild(database_url):
    writer = open_store(database_url, read_models=False)
    for new in example_facts():  # one transaction each, so pages cut across them
        writer.record([new])
    writer.record([fact("EventRetracted", retracts=example_facts()[-2].event_id, reason="r")])

    app = open_store(database_url)
    runner = Runner(app, status_view(app), page=3)
    original = runner.view.executemany
    calls = {"n": 0}

    def crash_midway(cursor, statement, rows):
        calls["n"] += 1
        if calls["n"] == 9:  # in the middle of the second page's transaction
            raise Crash
        return original(cursor, statement, rows)

    runner.view.executemany = crash_midway
    with pytest.raises(Crash):
        runner.catch_up()
    assert 0 < runner.position < writer.recorder.max_notification_id()

    restarted = open_store(database_url)  # a new process picks up where the tracking says
    assert restarted.status(PARLER).status == "offline"  # DDoS-Guard's return was retracted
    after_restart = dump(restarted)
    rebuild(restarted)
    assert dump(restarted) == after_restart
    for opened in (writer, app, restarted):
        opened.close()


def test_rebuilding_a_populated_store_changes_nothing_readers_see(database_url):
    app = open_store(database_url)
    app.record(example_facts())
    before = (dump(app), answers(app, moments(app)))
    first = rebuild(app)
    assert (dump(app), answers(app, moments(app))) == before
    second = rebuild(app)
    assert (first.generation, second.generation, second.replaced) == (2, 3, 2)
    assert first.events == second.events == app.recorder.max_notification_id()
    assert (dump(app), answers(app, moments(app))) == before
    app.close()
