"""Properties of the store over random histories, on SQLite and on PostgreSQL."""

from __future__ import annotations

from hypothesis import given

from adapters.composition import Services
from adapters.interchange import parse_instant, to_new_fact
from adapters.serialize import status_json
from tests.helpers import exported, record_history, store_settings
from tests.strategies import store_histories


def snapshot(tracker: Services) -> list[list[dict]]:
    moments = sorted({r["occurred_at"] for r in exported(tracker) if "occurred_at" in r})
    return [
        [status_json(s) | {"known_at": None} for s in tracker.queries.statuses(parse_instant(m))]
        for m in moments
    ]


def test_export_then_import_into_an_empty_store_gives_identical_statuses(new_store):
    @store_settings(new_store)
    @given(store_histories())
    def check(history):
        source, copy = new_store(), new_store()
        try:
            record_history(source, *history)
            records = exported(source)
            imported = copy.record([to_new_fact(r) for r in records])
            assert imported.committed and len(imported.recorded) == len(records)
            assert snapshot(copy) == snapshot(source)
            # Again: a duplicate each, but a retracted fact, refused naming its retraction.
            retracted = {r["retracts"]: r["event_id"] for r in records if "retracts" in r}
            again = copy.record([to_new_fact(r) for r in records], atomic=False)
            assert again.recorded == []
            assert {(r.event_id, r.conflicts_with) for r in again.rejected} == set(
                retracted.items()
            )
            assert len(again.duplicates) == len(records) - len(retracted)

        finally:
            source.close()
            copy.close()

    check()
