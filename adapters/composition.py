"""The composition root: the one place that builds the store, the application, the read
models, the projection runner and the query service from a database URL.

The CLI, the HTTP app, the tests, the benchmarks and notebooks all get their objects here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from itertools import zip_longest
from types import TracebackType
from typing import cast

import structlog
from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import retry

from adapters.checkpoints import Checkpoints
from adapters.config import COMMAND_TIMEOUT, store_env
from adapters.countries import country_code
from adapters.derivation import workers_for
from adapters.interchange import export_record, parse_instant
from adapters.read_models.backends import StatusView, status_view
from adapters.read_models.queries import ReadModelQueries
from adapters.spelling import look_alike_id
from domain.values import SubjectKey, SubjectKind
from projections.ports import Derivation, Projection
from projections.runner import Runner
from projections.status_projection import StatusProjection
from service.application import Deplatforming
from service.query_service import READ_WAIT, QueryService
from service.recording import NewFact, Outcome
from service.reports import Report, Selection

PACKAGE = "deplatforming"
log = structlog.get_logger(__name__)


@dataclass
class Services:
    """Everything a use of the tracker needs, on one store."""

    app: Deplatforming  # writes, and the event log
    view: StatusView  # the read models readers use
    runner: Runner  # keeps them up to date (when something runs it)
    queries: QueryService  # the one read path
    project_writes: bool  # embedded use: a write brings the read models up to date itself
    derivation: Derivation | None = None  # worker processes that derive large windows

    def record(
        self,
        facts: Sequence[NewFact],
        *,
        atomic: bool = True,
        commit: bool = True,
        recorded_by: str | None = None,
    ) -> Outcome:
        """Records facts. Embedded (the CLI, notebooks), the read models are then brought up
        to date before it returns; in a server, its runner does that, and reads made after
        the write wait (bounded) for it."""
        outcome = self.app.record(facts, atomic=atomic, commit=commit, recorded_by=recorded_by)
        return self._written(outcome)

    def import_stream(
        self,
        chunks: Iterable[Sequence[NewFact]],
        *,
        atomic: bool = True,
        commit_if: Callable[[], bool] = lambda: True,
        progress: Callable[[int], None] | None = None,
        recorded_by: str | None = None,
    ) -> Outcome:
        """Records a stream of facts of any length in one transaction, memory bounded (see
        `Deplatforming.import_stream`); then, embedded, brings the read models up to date."""
        outcome = self.app.import_stream(
            chunks, atomic=atomic, commit_if=commit_if, progress=progress, recorded_by=recorded_by
        )
        return self._written(outcome)

    def _written(self, outcome: Outcome) -> Outcome:
        """After a write: embedded, the read models catch up (whatever it wrote: a write of
        duplicates alone still brings lagging ones up to date); readers learn its position."""
        if self.project_writes:
            try:
                self.runner.catch_up()
            except PersistenceError as error:  # the write stands; a later catch-up applies it
                log.warning("read models not brought up to date", error=str(error))
        self.queries.recorded(outcome.position)
        return outcome

    def report(
        self,
        start: datetime | str,
        end: datetime | str,
        *,
        subjects: Sequence[str] = (),
        kind: SubjectKind | None = None,
        provider: str | None = None,
        known_at: datetime | str | None = None,
        region: str | None = None,
        most: int | None = None,
    ) -> Report:
        """A report of `[start, end)`, times given as datetimes or as ISO 8601 text (for
        notebooks); its tables come as pyarrow tables from `adapters.reporting.formats`."""
        selection = Selection(
            tuple(SubjectKey.parse(s) for s in subjects),
            kind,
            provider,
            country_code(region) if region is not None else None,
        )
        moment = parse_instant(known_at) if known_at is not None else None
        return self.queries.report(
            parse_instant(start),
            parse_instant(end),
            selection,
            moment,
            version=version(PACKAGE),
            most=most,
        )

    def close(self) -> None:
        self.app.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_services(
    database_url: str,
    *,
    embedded: bool = True,
    read_wait: float = READ_WAIT,
    timeout: float = COMMAND_TIMEOUT,
    read_deadline: float | None = None,
    create: bool = True,
) -> Services:
    """The tracker on the store a database URL names; tables are created on first use.
    `embedded`: writes project themselves (no runner follows the stream beside them).
    `timeout`: seconds to wait for a lock another writer holds (see `adapters.config`).
    `read_deadline`: seconds a read-model statement may run (None: as long as it takes).
    Without `create`, a store that does not exist is `NoStore` (and none is made)."""
    env = store_env(database_url, timeout, create=create)
    return cast(Services, _open(env, embedded, read_wait, read_deadline))  # retry: untyped


def projections(
    app: Deplatforming, view: StatusView, derivation: Derivation | None = None
) -> list[Projection]:
    """The read models a runner keeps up to date, on `view`'s generation: one line each."""
    return [
        StatusProjection(view, app, derivation),
    ]


def kept_beside_events(app: Deplatforming) -> Checkpoints:
    """The application's subjects' checkpoints, in its store's tables."""
    return Checkpoints(app.decode, app.recorder.checkpoint_rows)  # type: ignore[attr-defined]  # the recorders here have them


# Two processes creating the tables at once can collide in PostgreSQL's catalogue ("tuple
# concurrently updated"); the loser tries again. (Refusals are reported by store_env first.)
@retry(PersistenceError, max_attempts=5, wait=0.2)
def _open(
    env: dict[str, str], embedded: bool, read_wait: float, read_deadline: float | None
) -> Services:
    # In memory, SQLite's readers wait for its writer: a projection reading a restored
    # subject's facts while it writes would wait for itself. Such a store reads subjects whole.
    in_memory = "mode=memory" in env.get("SQLITE_DBNAME", "")
    app = Deplatforming(
        env=env,
        look_alike_id=look_alike_id,
        checkpoints=None if in_memory else kept_beside_events,
    )
    try:
        view = status_view(app.factory.datastore)  # type: ignore[attr-defined]  # the factory of a SQL store has one
    except PersistenceError:
        app.close()
        raise
    derivation = workers_for(env)
    runner = Runner(app, view, projections(app, view, derivation))
    queries = QueryService(
        ReadModelQueries(view, read_deadline),
        runner,
        wait=read_wait,
        recorded_at=app.recorded_at,
    )
    return Services(app, view, runner, queries, project_writes=embedded, derivation=derivation)


@dataclass(frozen=True)
class Rebuilt:
    generation: int
    events: int
    seconds: float
    replaced: int | None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def rebuild(services: Services, progress: Callable[[int], None] | None = None) -> Rebuilt:
    """Fills a new generation of read models from the first event; readers switch to it
    only once it has caught up (they keep the old one meanwhile)."""
    view = status_view(services.app.factory.datastore)  # type: ignore[attr-defined]  # as above
    view.start_generation(view.meta()["generation"] + 1)
    runner = Runner(
        services.app,
        view,
        projections(services.app, view, services.derivation),
        serves_readers=False,
    )
    started = time.perf_counter()
    events = runner.rebuild(services.app.head(), progress)  # each subject folded once
    events += runner.catch_up(progress)  # what was recorded meanwhile
    replaced = view.activate()
    seconds = time.perf_counter() - started
    runner.catch_up()  # anything recorded while switching
    services.view.follow_active()  # this process's readers move to it at once
    return Rebuilt(view.generation, events, seconds, replaced)


@dataclass(frozen=True)
class Migrated:
    events: int  # stored events copied (the store's own records included)
    facts: int  # facts whose exports were compared, and found equal


def migrate(
    source: Services, target: Services, progress: Callable[[int], None] | None = None
) -> Migrated:
    """Copies a store into an empty one (another kind of database, say), recording times
    and order kept, then checks that both export the same facts, record by record; the
    target's read models are then brought up to date."""
    events = source.app.copy_to(target.app, progress)
    facts = 0
    for mine, theirs in zip_longest(source.app.export(), target.app.export()):
        if mine is None or theirs is None:
            raise MigrationMismatch(f"the copy holds {'fewer' if theirs is None else 'more'} facts")
        a, b = export_record(mine), export_record(theirs)
        a.pop("position"), b.pop("position")
        if a != b:
            raise MigrationMismatch(f"fact {a.get('event_id')} differs in the copy")
        facts += 1
    target.runner.catch_up()
    return Migrated(events, facts)


class MigrationMismatch(RuntimeError):
    """The copy does not export what the original does."""
