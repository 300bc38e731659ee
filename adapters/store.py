"""Opening the application on the store a database URL names, and rebuilding its read models."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.persistence import PersistenceError
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import retry

from adapters.config import store_env
from adapters.read_models import PostgresStatusView, SQLiteStatusView
from projections.runner import Runner
from service.application import Deplatforming


def open_store(database_url: str, *, read_models: bool = True) -> Deplatforming:
    """The application on that store, its queries served by the status read models (unless
    `read_models` is false: then they fold the events). Tables are created on first use."""
    return create_tables(store_env(database_url), read_models)


# Two processes creating the tables at once can collide in PostgreSQL's catalogue ("tuple
# concurrently updated"); the loser tries again. (Refusals are reported by store_env first.)
@retry(PersistenceError, max_attempts=5, wait=0.2)
def create_tables(env: dict[str, str], read_models: bool) -> Deplatforming:
    app = Deplatforming(env=env)
    try:
        if read_models:
            app.attach(status_view(app))
    except PersistenceError:
        app.close()
        raise
    return app


def status_view(app: Deplatforming) -> SQLiteStatusView | PostgresStatusView:
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteStatusView(datastore)
    return PostgresStatusView(datastore)


@dataclass(frozen=True)
class Rebuilt:
    generation: int
    events: int
    seconds: float
    replaced: int | None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def rebuild(app: Deplatforming, progress: Callable[[int], None] | None = None) -> Rebuilt:
    """Fills a new generation of read models from the first event; readers switch to it
    only once it has caught up (they keep the old one meanwhile)."""
    view = status_view(app)
    view.start_generation(view.meta()["generation"] + 1)
    runner = Runner(app, view, serves_readers=False)
    started = time.perf_counter()
    events = runner.catch_up(progress)
    seconds = time.perf_counter() - started
    replaced = view.activate()
    runner.catch_up()  # anything recorded while switching
    return Rebuilt(view.generation, events, seconds, replaced)
