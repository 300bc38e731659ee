"""Subjects' timelines kept beside their events: a write restores a subject from its
checkpoints, reading only what its facts touch, and gives the verdicts and the store that
reading its whole history gives (every test runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.checkpoints import CheckpointRows
from adapters.composition import Services, open_services
from domain import Subject
from domain.values import SubjectKey
from projections.subject_cache import SubjectCache
from service.recording import NewFact, Outcome
from tests.helpers import exported, fact, registration, store_settings
from tests.reference import FoldQueries
from tests.strategies import store_histories

SITE, NET = SubjectKey.platform("site"), SubjectKey.account("net:x")


def fresh_process(tracker: Services) -> None:
    """Forgets every subject the application and its projections hold, as a new process
    would start."""
    tracker.app._written = SubjectCache(0)
    for projection in tracker.runner.projections:
        projection.subjects.clear()
        projection.forget()


def verdict(outcome: Outcome) -> tuple:
    return outcome.committed, [(r.event_id, r.error, r.conflicts_with) for r in outcome.rejected]


def replayed(tracker: Services, facts: list[NewFact], retract: list[float], forget: bool) -> list:
    """Records a history fact by fact (each write from a fresh process, with `forget`), then
    its retractions; the verdict of each write."""
    verdicts = []
    accepted = [registration(app_stores=["google_play"])]
    writes = [[accepted[0]], *[[f] for f in facts]]
    for write in writes:
        if forget:
            fresh_process(tracker)
        outcome = tracker.record(write)
        verdicts.append(verdict(outcome))
        if outcome.committed and write[0] is not accepted[0]:
            accepted.append(write[0])
    for share in retract:
        if forget:
            fresh_process(tracker)
        target = accepted[int(share * len(accepted))]
        outcome = tracker.record([fact("EventRetracted", retracts=target.event_id, reason="r")])
        verdicts.append(verdict(outcome))
    return verdicts


def held(subject: Subject) -> tuple:
    """What a subject is, for the rules: its timeline, its facts, its retractions, its fold."""
    return (
        subject.version,
        [action.event_id for action in subject.timeline],
        sorted(subject.facts),
        sorted(subject.retractions),
        subject.timeline.end_state(),
    )


def restored_as_folded(tracker: Services, subject_ids: list) -> bool:
    """Whether these subjects, restored from their checkpoints, are what their events make."""
    restored = tracker.app.checkpoints.restore(subject_ids)
    folded = tracker.app.load_many(subject_ids)
    return restored.keys() == folded.keys() and all(
        held(restored[i]) == held(subject) for i, subject in folded.items()
    )


def without_recording_times(tracker: Services) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "recorded_at"} for r in exported(tracker)]


def test_writes_from_fresh_processes_give_the_verdicts_and_store_of_whole_histories(new_store):
    """Random histories with late facts, retractions and regional facts, in blocks of two to
    four actions (so that a late fact refolds across blocks), each fact written by a process
    that holds nothing: restored from the checkpoints, as against read whole from the events
    (checkpoints off); the same verdict for every write, the same facts stored, and each
    subject restored as its events make it."""

    @store_settings(new_store)
    @given(store_histories(), st.integers(0, 2))
    def check(history, block):
        kept, whole = new_store(), new_store()
        whole.app.checkpoints = None
        try:
            with patch("domain.timeline.BLOCK", 2 + block):
                assert replayed(kept, *history, forget=True) == replayed(
                    whole, *history, forget=True
                )
                assert without_recording_times(kept) == without_recording_times(whole)
                fresh_process(kept)
                assert restored_as_folded(kept, [SITE.id, NET.id])
        finally:
            kept.close()
            whole.close()

    check()


def test_an_import_keeps_its_subjects_once_as_they_leave_its_memory_or_at_its_end(new_store):
    """An import in chunks, its memory so small that subjects leave it and come back (read
    from the checkpoints it kept as they left, in its own transaction): each subject is
    restored as its events make it."""

    @store_settings(new_store)
    @given(store_histories(), st.integers(1, 6), st.integers(0, 40))
    def check(history, chunk, memory):
        facts, _ = history
        tracker = new_store()
        try:
            with (
                patch("domain.timeline.BLOCK", 2),
                patch("service.application.IMPORT_FACTS", memory),
            ):
                tracker.record([registration(app_stores=["google_play"])])
                chunks = [facts[i : i + chunk] for i in range(0, len(facts), chunk)]
                tracker.app.import_stream(iter(chunks), atomic=False)
                fresh_process(tracker)
                assert restored_as_folded(tracker, [SITE.id, NET.id])
        finally:
            tracker.close()

    check()


def test_recording_into_a_long_history_reads_what_the_fact_touches(tracker, monkeypatch):
    """A process that holds nothing records a late fact into a platform of 600 facts, and
    brings the read models up to date: it decodes the facts of the block the fact lands in,
    of the blocks after it that the read models redo, and those the starts it compares
    name, not the history (a fact that changed every later state would refold them all).
    The read models then answer as the fold of the events does."""
    facts = [registration(app_stores=[])]
    for n in range(300):
        day = f"2021-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}T{n // 336:02d}:00:00Z"
        facts.append(
            fact("ServiceTerminated", "site", occurred_at=day, provider="P", service=f"s{n % 4}")
        )
        facts.append(
            fact("ServiceRestored", "site", occurred_at=day, provider="P", service=f"s{n % 4}")
        )
    tracker.import_stream(iter([facts]))
    decoded = []
    decode = tracker.app.decode
    monkeypatch.setattr(tracker.app, "decode", lambda s: decoded.append(s) or decode(s))
    tracker.app.checkpoints.decode = tracker.app.decode
    for late in (
        fact(
            "ServiceTerminated", "site", occurred_at="2021-12-03T12:00Z", provider="R", service="x"
        ),
        fact("ServiceRestored", "site", occurred_at="2021-12-04T12:00Z", provider="R", service="x"),
        fact("DomainSuspended", "site", occurred_at="2021-12-05T12:00Z", provider="R"),
    ):
        fresh_process(tracker)
        decoded.clear()
        assert tracker.record([late]).committed
        assert 0 < len(decoded) < 150, len(decoded)
    site = SubjectKey.platform("site")
    assert restored_as_folded(tracker, [site.id])
    fold, read_models = FoldQueries(tracker.app), tracker.queries.read_models
    assert read_models.intervals([site], None) == fold.intervals([site], None)
    assert read_models.history(site, None) == fold.history(site, None)


def test_a_write_restores_the_subjects_it_touches_together(database_url, monkeypatch):
    """A process that holds nothing records a fact that sorts last into each of 40 platforms
    of 12 facts, in one write: it reads their rows, their blocks' heads, their last blocks
    and the facts they hold in a few statements for all of them, not a few for each."""
    tracker = open_services(database_url, embedded=False)
    try:
        with patch("domain.timeline.BLOCK", 2):
            slugs = [f"site{n}" for n in range(40)]
            facts = [registration(slug, app_stores=["google_play"]) for slug in slugs]
            for month in range(1, 12):
                kind = "AppStoreRemoved" if month % 2 else "AppStoreReinstated"
                facts += [
                    fact(kind, slug, occurred_at=f"2021-{month:02d}-01", store="google_play")
                    for slug in slugs
                ]
            assert tracker.record(facts).committed
            fresh_process(tracker)
            statements = []
            read = CheckpointRows._all
            monkeypatch.setattr(
                CheckpointRows, "_all", lambda rows, *a: statements.append(a) or read(rows, *a)
            )
            late = [fact("DomainSuspended", slug, occurred_at="2021-12-24") for slug in slugs]
            assert tracker.record(late).committed
            assert len(statements) <= 6, [query[:60] for query, _ in statements]
            fresh_process(tracker)
            assert restored_as_folded(tracker, [SubjectKey.platform(slug).id for slug in slugs])
    finally:
        tracker.close()


def test_reading_many_facts_of_many_subjects_keeps_each_statement_small(tracker, monkeypatch):
    """Restoring a chunk's subjects reads the facts they hold together, however many each
    holds (a hot platform's retractions): a few hundred a statement, never past what the
    database takes in one, and every one found."""
    facts = [registration(app_stores=[])] + [
        fact(
            "ServiceTerminated",
            "site",
            occurred_at=f"2021-01-{1 + n % 28:02d}T{n // 28:02d}:00Z",
            service=f"s{n}",
        )
        for n in range(600)
    ]
    assert tracker.record(facts).committed
    site = SubjectKey.platform("site").id
    others = {SubjectKey.platform(f"none{n}").id: range(1, 400) for n in range(100)}
    statements = []
    read = CheckpointRows._all
    monkeypatch.setattr(
        CheckpointRows, "_all", lambda rows, *a: statements.append(a) or read(rows, *a)
    )
    with tracker.app.recorder.checkpoint_rows() as rows:
        found = rows.events({site: range(1, 602), **others})
    assert sorted(e.originator_version for e in found) == list(range(1, 602))
    assert max(len(params) for _, params in statements) <= 1000
    assert len(statements) < 100


def test_subjects_held_while_another_process_writes_them_are_read_anew(database_url):
    """Two processes write late facts and retractions into one long history; one of them
    keeps the read models, holding the subject between pages: whatever the other changed in
    its checkpoints meanwhile is noticed (`Stale`), the subject restored again, and the read
    models answer as the fold of the events does."""
    here = open_services(database_url)
    there = open_services(database_url, embedded=False)
    try:
        with patch("domain.timeline.BLOCK", 4):
            facts = [registration(app_stores=["google_play"])]
            for day in range(1, 121):
                kind = "AppStoreRemoved" if day % 2 else "AppStoreReinstated"
                moment = f"2021-{1 + (day - 1) // 28:02d}-{1 + (day - 1) % 28:02d}"
                facts.append(fact(kind, "site", occurred_at=moment, store="google_play"))
            here.record(facts)
            fresh_process(here)  # its runner restores the subject, and holds it so
            late = []
            for n in range(12):
                writer = here if n % 3 == 0 else there
                moment = f"2021-04-{27 - 2 * n:02d}T12:00:00Z"  # each before the last
                if n % 4 == 3:
                    new = fact("EventRetracted", retracts=late.pop(0).event_id, reason="r")
                else:
                    new = fact("ServiceTerminated", "site", occurred_at=moment, service=f"s{n}")
                    late.append(new)
                assert writer.record([new]).committed
                here.runner.catch_up()
            site = SubjectKey.platform("site")
            fold, read_models = FoldQueries(here.app), here.queries.read_models
            assert read_models.history(site, None) == fold.history(site, None)
            assert read_models.intervals([site], None) == fold.intervals([site], None)
            (projection,) = here.runner.projections
            kept = projection.subjects.take([site.id])[site.id]  # as the runner holds it
            assert held(kept) == held(here.app.load_many([site.id])[site.id])
    finally:
        here.close()
        there.close()


@pytest.mark.parametrize("changed", ["stamp", "events"])
def test_checkpoints_that_do_not_stand_for_the_events_are_not_used(tracker, changed):
    """Checkpoints written by code whose states had another shape, or that miss events
    written since (by a writer that keeps none), are passed over: the subject is read whole,
    and kept anew by its next write."""
    tracker.record([registration(app_stores=[])])
    tracker.record([fact("DomainSuspended", "site", occurred_at="2021-01-02", provider="R")])
    site = SubjectKey.platform("site").id
    if changed == "stamp":
        with patch("adapters.checkpoints.STAMP", "another"):
            assert tracker.app.checkpoints.restore([site]) == {}
    else:
        tracker.app.checkpoints, checkpoints = None, tracker.app.checkpoints
        fresh_process(tracker)
        tracker.record([fact("DomainRestored", "site", occurred_at="2021-01-03", provider="R")])
        tracker.app.checkpoints = checkpoints
        assert checkpoints.restore([site]) == {}
    fresh_process(tracker)
    assert tracker.record(
        [fact("HostingTerminated", "site", occurred_at="2021-01-04", provider="H")]
    ).committed
    assert restored_as_folded(tracker, [site])
