"""Properties of the store over random histories, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.interchange import export_record, parse_instant, to_new_fact
from adapters.store import open_store
from service.application import Deplatforming
from tests.helpers import fact, registration
from tests.unit.test_properties import account_facts, platform_facts

EXAMPLES = {"sqlite": 60, "postgres": 15}


@pytest.fixture(params=list(EXAMPLES))
def new_store(request, tmp_path):
    """Opens empty stores of one kind, as many as a test asks for (the caller closes them)."""

    def make() -> Deplatforming:
        name = uuid.uuid4().hex[:12]
        if request.param == "sqlite":
            return open_store(f"sqlite:///{tmp_path}/{name}.db")
        return open_store(f"{request.getfixturevalue('postgres_database')}?schema=p_{name}")

    make.examples = EXAMPLES[request.param]
    return make


def store_settings(new_store) -> settings:
    """As many examples as the kind of store affords; stores are made inside each example."""
    return settings(
        max_examples=new_store.examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def record_history(app: Deplatforming, facts: list, retract: list[float]) -> None:
    """Records a drawn history fact by fact, as facts trickle in, then its retractions."""
    registered = registration(app_stores=["google_play"])  # so apple_app_store facts fail
    app.record([registered])
    accepted = [registered]
    for new in facts:
        if app.record([new]).committed:
            accepted.append(new)
    for share in retract:
        target = accepted[int(share * len(accepted))]
        app.record([fact("EventRetracted", retracts=target.event_id, reason="r")])


@st.composite
def histories(draw):
    """A platform's and an account's random facts interleaved, then a few retractions."""
    facts = draw(st.permutations(draw(platform_facts(12)) + draw(account_facts(8))))
    retract = draw(st.lists(st.floats(0, 1, exclude_max=True), max_size=4))  # which accepted ones
    return facts, retract


def snapshot(app: Deplatforming) -> list[list[dict]]:
    moments = sorted(
        {r["occurred_at"] for r in map(export_record, app.export()) if "occurred_at" in r}
    )
    return [
        [s.to_json() | {"known_at": None} for s in app.statuses(parse_instant(m))] for m in moments
    ]


def test_export_then_import_into_an_empty_store_gives_identical_statuses(new_store):
    @store_settings(new_store)
    @given(histories())
    def check(history):
        source, copy = new_store(), new_store()
        try:
            record_history(source, *history)
            records = [export_record(s) for s in source.export()]
            imported = copy.record([to_new_fact(r) for r in records])
            assert imported.committed and len(imported.recorded) == len(records)
            assert snapshot(copy) == snapshot(source)
            again = copy.record([to_new_fact(r) for r in records])
            assert again.recorded == [] and len(again.duplicates) == len(records)

        finally:
            source.close()
            copy.close()

    check()
