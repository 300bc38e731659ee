"""The status read models' tables and generations, on SQLite and PostgreSQL.

A generation of read models is three tables (`rm<g>_periods`, `rm<g>_intervals`,
`rm<g>_timeline`) plus `rm<g>_subjects`, and a tracking key `status-<g>` in the
library's tracking table; the `read_models` table says which generation readers
use. A rebuild fills generation g+1 from the first event and then switches
readers over in one transaction, so they never see a half-built model. A store
whose generation was built with an older table layout moves to a new, empty
generation when opened; the runner then fills it.

Periods and runs are bitemporal rows: besides their valid time `[valid_from, valid_to)`
they carry the transaction time in which they were the store's belief, `[known_from,
known_to)` (`known_to` null while they still are). A late fact or a retraction closes the
rows it supersedes and adds new ones, so that "as of T as known at K" is a predicate on
stored ranges. The timeline keeps each fact's `recorded_at` and retraction for the same
reason.

Instants are stored as microseconds since the epoch (exact, ordered, the same on
both databases).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import OperationalError
from eventsourcing.utils import retry

from adapters.bounds import abandoned
from domain.clock import micros, now
from projections.ports import Table

# The tables' layout (7: periods name the countries with an answer of their own, and each
# its status, and the fact that began them; the timeline names a fact's countries; 6:
# periods say how many countries have an answer of their own; 5:
# documents with the measures in force and the countries' answers; 4: bitemporal rows); a
# generation of an older layout is replaced when opened.
LAYOUT = 7
TABLES = ("periods", "intervals", "subjects", "timeline")

PROGRESS_STEPS = 10_000  # SQLite's virtual-machine steps between looks at a read's deadline


class ReadTooLong(OperationalError):
    """A read was stopped at its deadline (it would have held the store longer)."""

    def __init__(self, deadline: float) -> None:
        super().__init__(
            f"the read took longer than its deadline ({deadline:g} s), or its client went "
            "away, and was stopped: "
            "narrow the question (a shorter period, fewer subjects, a page) or use the CLI"
        )


# SQLite refuses at once (without waiting for the lock timeout) a transaction that read and
# then wants to write while another process writes: these short set-up transactions retry.
setup_retry = retry(OperationalError, max_attempts=30, wait=0.1)


def table_statements(t: dict[str, str]) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {t['periods']} (subject_id TEXT NOT NULL, "
        "valid_from BIGINT NOT NULL, known_from BIGINT NOT NULL, valid_to BIGINT, "
        "known_to BIGINT, overall TEXT NOT NULL, regions TEXT NOT NULL, event_id TEXT, "
        "document TEXT NOT NULL, PRIMARY KEY (subject_id, valid_from, known_from))",
        f"CREATE TABLE IF NOT EXISTS {t['intervals']} (subject_id TEXT NOT NULL, "
        "channel TEXT NOT NULL, valid_from BIGINT NOT NULL, known_from BIGINT NOT NULL, "
        "valid_to BIGINT, known_to BIGINT, status TEXT NOT NULL, event_id TEXT, "
        "PRIMARY KEY (subject_id, channel, valid_from, known_from))",
        f"CREATE TABLE IF NOT EXISTS {t['subjects']} (subject_id TEXT PRIMARY KEY, "
        "kind TEXT NOT NULL, key TEXT NOT NULL, identity TEXT NOT NULL, exists_from BIGINT, "
        "known_from BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['timeline']} (subject_id TEXT NOT NULL, "
        "occurred_at BIGINT NOT NULL, version BIGINT NOT NULL, event_id TEXT NOT NULL, "
        "record TEXT NOT NULL, recorded_at BIGINT NOT NULL, retracted_by TEXT, "
        "retracted_at BIGINT, retraction_reason TEXT, provider TEXT, regions TEXT, "
        "PRIMARY KEY (subject_id, occurred_at, version))",
    ]


def regions_column(answers: Mapping[str, Any]) -> str:
    """A period's `regions`: each country with an answer of its own and its status, between
    spaces (` BR:offline NG:partial `; empty: none), so that "its own answer in BR" and "its
    status in BR" are `LIKE` patterns (`own_in`, `status_in`)."""
    if not answers:
        return ""
    return " " + " ".join(f"{code}:{answer.status.value}" for code, answer in answers.items()) + " "


def own_in(region: str) -> str:
    return f"% {region}:%"


def status_in(region: str, status: str) -> str:
    return f"% {region}:{status} %"


def fact_regions(regions: Sequence[str] | None) -> str | None:
    """A timeline fact's `regions`: the countries it names, between spaces (None: worldwide),
    so that "it concerns BR" is `regions IS NULL OR regions LIKE '% BR %'`."""
    return " " + " ".join(regions) + " " if regions else None


# The indexes readers use beyond the primary keys (writers find rows by primary key), by
# the suffix of their names: a rebuild creates them once its rows are written, which is
# quicker than keeping them up to date row by row.
INDEXES = {
    "periods_at": ("periods", "(valid_from, overall)"),
    "intervals_status": ("intervals", "(channel, status, valid_from)"),
    "timeline_provider": ("timeline", "(provider, subject_id)"),
}
# Where each subject's period is looked up in the order listings give (`lateral`): subjects
# read in that order (platforms first, then by key in code-point order) from the index alone,
# not sorted: the planner prefers sorting 10,000 rows to reading them through a plain index.
# (SQLite looks them up in the order of their rows and sorts after: quicker there.)
LISTED = {
    "subjects_in_order": (
        "subjects",
        "(kind DESC, identity COLLATE {collation}) INCLUDE (subject_id, key)",
    )
}


class Tables:
    """One generation's tables on one database; subclasses bind the database (its cursor,
    placeholder and quoting)."""

    placeholder = "%s"
    binary_collation = '"C"'  # code-point order, as Python sorts strings
    lateral = True  # joins a subquery run for each row of the left (LATERAL)
    distinct = "IS DISTINCT FROM"  # inequality that takes null as a value
    log_position = "notification_id"  # the column of an event's position in the log
    generation: int
    tracking_table: str  # the library's tracking table, where this generation's position is
    datastore: Any  # the library's SQLite or PostgreSQL datastore, shared with the app

    def qualify(self, name: str) -> str:
        raise NotImplementedError

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    @contextmanager
    def reading(self, deadline: float | None = None) -> Iterator[Any]:
        """A cursor for one statement that only reads (its own snapshot is consistent),
        interrupted (`ReadTooLong`) once it has run `deadline` seconds, or once the request
        it answers is abandoned (`adapters.bounds`): on SQLite, by a progress handler that
        the engine calls as it works."""
        with self.cursor(commit=False) as c:
            if deadline is None:
                yield c
                return
            connection = c.sqlite_cursor.connection
            ends, left = time.monotonic() + deadline, abandoned()

            def stop() -> bool:
                return time.monotonic() > ends or left.is_set()

            connection.set_progress_handler(stop, PROGRESS_STEPS)
            try:
                yield c
            except sqlite3.OperationalError as error:
                if "interrupted" in str(error):
                    raise ReadTooLong(deadline) from None
                raise
            finally:
                connection.set_progress_handler(None, 0)

    def tracking_key(self, projection: str) -> str:
        return f"{projection}-{self.generation}"

    def tables(self, generation: int | None = None) -> dict[str, str]:
        g = self.generation if generation is None else generation
        names = {n: self.qualify(f"rm{g}_{n}") for n in TABLES}
        return names | {"index": f"rm{g}", "meta": self.qualify("read_models")}

    def sql(self, statement: str) -> str:
        return statement.replace("%s", self.placeholder)

    def execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self.sql(statement), params)

    def executemany(self, cursor: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self.sql(statement), rows)

    def insert(self, cursor: Any, table: str, rows: Table, columns: str = "") -> None:
        """Adds rows to a table: values for every column, or for `columns` ("(a, b)")."""
        assert not isinstance(rows, bytes), "only PostgreSQL loads rows in bulk-load format"
        if rows:
            marks = ", ".join(["%s"] * len(rows[0]))
            self.executemany(cursor, f"INSERT INTO {table} {columns} VALUES ({marks})", rows)


class Generations(Tables):
    """Which generation readers use, the switch to a rebuilt one, and the runner's errors."""

    @setup_retry
    def open_generation(self) -> None:
        """Creates the tables if missing and takes the generation readers use (a new one if
        theirs has an older layout)."""
        meta = self.tables(0)["meta"]
        with self.cursor(commit=True) as c:
            self.execute(
                c,
                f"CREATE TABLE IF NOT EXISTS {meta} (name TEXT PRIMARY KEY, "
                "generation BIGINT NOT NULL, last_error TEXT, last_error_at BIGINT)",
            )
            found = self._meta_rows(c)
            if "status" not in found:  # a new store: the current layout from the start
                self.execute(
                    c,
                    f"INSERT INTO {meta} (name, generation) VALUES ('status', 1), ('layout', %s) "
                    "ON CONFLICT (name) DO NOTHING",
                    [LAYOUT],
                )
                found = self._meta_rows(c)
            self.generation = found["status"]
            if found.get("layout", 1) < LAYOUT:
                self._drop(c, self.generation)
                self.generation += 1
                self.execute(
                    c, f"UPDATE {meta} SET generation = %s WHERE name = 'status'", [self.generation]
                )
                self.execute(
                    c,
                    f"INSERT INTO {meta} (name, generation) VALUES ('layout', %s) "
                    "ON CONFLICT (name) DO UPDATE SET generation = excluded.generation",
                    [LAYOUT],
                )
            t = self.tables()
            wanted = [t[name] for name in TABLES] + self.indexes()
            # CREATE INDEX locks its table, even if it is there: only when one is missing.
            if self.found(c, wanted) < len(wanted):
                for statement in table_statements(t) + self.index_statements():
                    self.execute(c, statement)

    def index_columns(self) -> dict[str, tuple[str, str]]:
        """The indexes readers use here, by suffix: their table and columns."""
        return INDEXES | (LISTED if self.lateral else {})

    def index_statements(self) -> list[str]:
        t = self.tables()
        return [
            f"CREATE INDEX IF NOT EXISTS {t['index']}_{name} ON {t[table]} "
            + columns.format(collation=self.binary_collation)
            for name, (table, columns) in self.index_columns().items()
        ]

    def indexes(self) -> list[str]:
        """This generation's indexes beyond the primary keys, by name (as `qualify` gives)."""
        return [self.qualify(f"{self.tables()['index']}_{name}") for name in self.index_columns()]

    def found(self, cursor: Any, names: Sequence[str]) -> int:
        """How many of these tables and indexes exist, from the catalogue (no lock on them:
        a process opening the store never waits for a runner's window to commit)."""
        self.execute(
            cursor,
            "SELECT count(to_regclass(name)) AS found FROM unnest(%s::text[]) AS name",
            [list(names)],
        )
        return int(cursor.fetchone()["found"])

    def _meta_rows(self, cursor: Any) -> dict[str, int]:
        self.execute(cursor, f"SELECT name, generation FROM {self.tables(0)['meta']}")
        return {row["name"]: int(row["generation"]) for row in cursor.fetchall()}

    def _drop(self, cursor: Any, generation: int) -> None:
        """Drops a generation's tables and its tracking record."""
        for name in (*TABLES, "current"):  # "current": a table of layout 1
            self.execute(cursor, f"DROP TABLE IF EXISTS {self.qualify(f'rm{generation}_{name}')}")
        self.execute(  # every projection's (named `<projection>-<generation>`)
            cursor,
            f"DELETE FROM {self.tracking_table} WHERE application_name LIKE %s",
            [f"%-{generation}"],
        )

    @setup_retry
    def start_generation(self, generation: int) -> None:
        """Fresh, empty tables for a rebuild (readers keep using theirs), indexed only by
        their primary keys until `activate`."""
        self.generation = generation
        with self.cursor(commit=True) as c:
            self._drop(c, generation)
            for statement in table_statements(self.tables()):
                self.execute(c, statement)

    @setup_retry
    def activate(self) -> int | None:
        """Indexes this generation for readers, gathers its statistics, points them at it
        and drops the one they used; returns it."""
        with self.cursor(commit=True) as c:
            for statement in self.index_statements():
                self.execute(c, statement)
            self.gather_statistics(c, [self.tables()[name] for name in TABLES])
            meta = self.tables()["meta"]
            self.execute(c, f"SELECT generation FROM {meta} WHERE name = 'status'")
            previous = int(c.fetchone()["generation"])
            self.execute(
                c, f"UPDATE {meta} SET generation = %s WHERE name = 'status'", [self.generation]
            )
            if previous == self.generation:
                return None
            self._drop(c, previous)
            return previous

    def gather_statistics(self, cursor: Any, tables: Sequence[str]) -> None:
        """The planner's statistics of freshly filled tables: without them (autovacuum off,
        or not yet round) PostgreSQL plans readers' first queries on guesses."""
        self.execute(cursor, f"ANALYZE {', '.join(tables)}")

    def standing(self, events: Any, projections: Sequence[str]) -> tuple[int, int]:
        """How far every one of these projections has got in this generation (the least of
        their positions; 0 while one has none) and the last position of the log `events`
        (the library's recorder) holds, in one statement: a reader asks for both before each
        answer when no runner follows the log in its process."""
        marks = ", ".join(["%s"] * len(projections))
        query = (
            "SELECT (SELECT CASE WHEN COUNT(*) < %s THEN 0 ELSE MIN(position) END FROM ("
            f"SELECT MAX(notification_id) AS position FROM {self.tracking_table} "
            f"WHERE application_name IN ({marks}) GROUP BY application_name) AS t) AS position, "
            f"(SELECT MAX({self.log_position}) FROM {self.qualify(events.events_table_name)}) "
            "AS head"
        )
        keys = [self.tracking_key(name) for name in projections]
        with self.reading() as c:
            self.execute(c, query, [len(keys), *keys])
            row = c.fetchone()
        return row["position"] or 0, row["head"] or 0

    def meta(self) -> dict[str, Any]:
        with self.reading() as c:
            self.execute(c, f"SELECT * FROM {self.tables(0)['meta']} WHERE name = 'status'")
            return dict(c.fetchone())

    def follow_active(self) -> bool:
        """Moves to the generation readers use, if a rebuild has replaced this one."""
        if self.meta()["generation"] == self.generation:
            return False
        self.open_generation()
        return True

    def record_error(self, message: str) -> None:  # not retried: the store may be what failed
        with self.cursor(commit=True) as c:
            self.execute(
                c,
                f"UPDATE {self.tables(0)['meta']} SET last_error = %s, last_error_at = %s "
                "WHERE name = 'status'",
                [message[:4000], micros(now())],
            )
