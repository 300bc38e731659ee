"""The event store on SQLite and PostgreSQL: the library's recorders plus an event-id index.

The spec's `event_id` is global: an id used for one subject cannot be reused for
another, and a retraction names only its target's id. The library stores events
by (aggregate id, version), so these recorders add an `event_ids` table
(event_id -> aggregate id, content digest), written in the same transaction as
the events it indexes: its primary key makes a concurrent duplicate fail the
whole write, which the service then retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import ConnectionPool

from adapters.batching import chunks
from adapters.bounds import watched
from adapters.checkpoints import CheckpointRows, Dialect, create_statements
from service.ports import BulkWrite, IndexedEvent

log = structlog.get_logger(__name__)

ANALYZE_AFTER = 10_000  # events a bulk write adds before it gathers the planner's statistics
PG_CHUNK = 5000  # ids per lookup query on PostgreSQL (one array parameter)
TCP_PROBES = 3  # unanswered keepalive probes, a second apart, before a connection is dead
OUTAGE_HOLD = 5.0  # seconds for which a failed connection attempt fails the next ones at once


class SQLiteEventStore(SQLiteApplicationRecorder):
    """`stored_events` plus `event_ids`, `timelines` and `checkpoints`, in one SQLite file."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS event_ids ("
            "event_id TEXT PRIMARY KEY, originator_id TEXT NOT NULL, digest TEXT NOT NULL)",
            *create_statements(self.dialect),
        ]

    @property
    def dialect(self) -> Dialect:
        return Dialect(
            "?",
            "BLOB",
            "TEXT",
            "instr",
            self.events_table_name,
            "timelines",
            "checkpoints",
            lambda subject_id: subject_id.hex,
            UUID,
        )

    @contextmanager
    def checkpoint_rows(self) -> Iterator[CheckpointRows]:
        """The checkpoint tables, read outside a write."""
        with self.datastore.transaction(commit=False) as c:
            yield CheckpointRows(c, self.dialect)

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        event_ids: Sequence[IndexedEvent] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        self._index(c, event_ids)
        return positions

    def _index(self, c: SQLiteCursor, event_ids: Sequence[IndexedEvent]) -> None:
        c.executemany(
            "INSERT INTO event_ids VALUES (?, ?, ?)",
            [(e.event_id, e.originator_id.hex, e.digest) for e in event_ids],
        )

    def _insert_many(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        event_ids: Sequence[IndexedEvent],
    ) -> int | None:
        """Events and their index rows in one statement each (the library inserts events one
        at a time, to learn each one's position); returns the last one's position. In a
        transaction that holds the write lock, SQLite numbers the rows it inserts one after
        another, so the last row's number is the connection's last inserted one."""
        if not stored_events:
            self._index(c, event_ids)
            return None
        SQLiteAggregateRecorder._insert_events(self, c, stored_events)
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        self._index(c, event_ids)
        return last

    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]:
        with self.datastore.transaction(commit=False) as c:
            return self._event_ids(c, event_ids)

    def _event_ids(self, c: SQLiteCursor, event_ids: Sequence[str]) -> dict[str, IndexedEvent]:
        found: dict[str, IndexedEvent] = {}
        for chunk in chunks(list(dict.fromkeys(event_ids))):
            c.execute(
                "SELECT event_id, originator_id, digest FROM event_ids "
                f"WHERE event_id IN ({','.join('?' * len(chunk))})",
                list(chunk),
            )
            for row in c.fetchall():
                found[row[0]] = IndexedEvent(row[0], UUID(row[1]), row[2])
        return found

    @contextmanager
    def bulk(self) -> Iterator[BulkWrite]:
        """One transaction for a long write, holding the store's write lock from its start
        (so that no other writer commits between what it reads and what it writes)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM event_ids WHERE 0")  # a write statement takes the lock
            yield BulkWrite(
                partial(self._event_ids, c),
                partial(self._events_on, c, condition="", params=[]),
                lambda subject, version: self._events_on(
                    c, [subject], condition="AND originator_version > ? ", params=[version]
                ),
                partial(self._insert_many, c),
                CheckpointRows(c, self.dialect),
            )

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, "", [])

    def select_first_events(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, "AND originator_version = 1 ", [])

    def select_history(self, originator_ids: Sequence[UUID], upto: int) -> list[Notification]:
        return self._select_events(originator_ids, "AND rowid <= ? ", [upto])

    def select_subject_ids(self, upto: int, after: int = 0) -> dict[UUID, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id, MAX(originator_version) FROM {self.events_table_name} "
                "WHERE rowid > ? AND rowid <= ? GROUP BY originator_id",
                [after, upto],
            )
            return {UUID(row[0]): row[1] for row in c.fetchall()}

    def _select_events(
        self, originator_ids: Sequence[UUID], condition: str, params: list[Any]
    ) -> list[Notification]:
        with self.datastore.transaction(commit=False) as c:
            return self._events_on(c, originator_ids, condition=condition, params=params)

    def _events_on(
        self, c: SQLiteCursor, originator_ids: Sequence[UUID], *, condition: str, params: list[Any]
    ) -> list[Notification]:
        events: list[Notification] = []
        for chunk in chunks([i.hex for i in dict.fromkeys(originator_ids)]):
            c.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} "
                f"WHERE originator_id IN ({','.join('?' * len(chunk))}) {condition}"
                "ORDER BY originator_id, originator_version",
                [*chunk, *params],
            )
            events += [
                Notification(
                    id=row[0],
                    originator_id=UUID(row[1]),
                    originator_version=row[2],
                    topic=row[3],
                    state=row[4],
                )
                for row in c.fetchall()
            ]
        return events

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, rowid FROM {self.events_table_name} "
                "WHERE originator_id = ?",
                [originator_id.hex],
            )
            return {row[0]: row[1] for row in c.fetchall()}


class PostgresStore(PostgresFactory):
    """The library's PostgreSQL persistence, with connections that fail in bounded time when
    the server or the network is gone (and that compile no query). The library bounds only
    the wait for a pooled connection; libpq's own connect timeout, TCP keepalives and TCP
    user timeout (set here) end a connection attempt, or a query, whose peer stopped
    answering, instead of leaving it to the kernel's defaults (minutes)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        seconds = max(1, int(self.env.get(self.POSTGRES_CONNECT_TIMEOUT) or 5))
        cast(dict[str, Any], self.datastore.pool.kwargs).update(
            connect_timeout=seconds,
            keepalives=1,
            keepalives_idle=seconds,
            keepalives_interval=1,
            keepalives_count=TCP_PROBES,
            tcp_user_timeout=(seconds + TCP_PROBES) * 1000,
            # The planner's JIT compiles a query it guesses costly: every subject's status at
            # T (10,000 index lookups, estimated in millions) spent 100 ms compiling for a
            # 50 ms run. No query here scans enough to gain from it.
            options="-c jit=off",
        )
        # The library retries reads up to 10 times, each waiting for a connection: while the
        # server is unreachable, a request would wait 10 connect timeouts.
        self.datastore.get_connection = FailFast(self.datastore.get_connection)  # type: ignore[method-assign]
        # The pool pings a connection before handing it out: within the request's bounds too
        # (the library makes the pool, with the check it names; this one is watched).
        if self.datastore.pool._check is not None:
            self.datastore.pool._check = watched_check


def watched_check(connection: Any) -> None:
    """The pool's check of a connection (an empty statement), `watched`."""
    with watched(connection):
        ConnectionPool.check_connection(connection)


class FailFast:
    """Connections from the pool, except that for `OUTAGE_HOLD` seconds after an attempt to
    get one failed, attempts fail at once with the same error (the pool keeps reconnecting
    in the background; the first attempt after the hold waits for it again). A connection
    serving a request is `watched`: its work ends by the request's deadline."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Any]]) -> None:
        self._connect = connect
        self._failed_until = 0.0
        self._reason = ""

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        if time.monotonic() < self._failed_until:
            raise OperationalError(self._reason)
        acquired = False
        try:
            with self._connect() as conn, watched(conn):
                acquired = True
                yield conn
        except (OperationalError, InterfaceError) as error:
            if not acquired:
                self._reason, self._failed_until = str(error), time.monotonic() + OUTAGE_HOLD
            raise


class PostgresEventStore(PostgresApplicationRecorder):
    """`<app>_events` plus `<app>_event_ids`, `<app>_timelines` and `<app>_checkpoints`, in
    the configured schema."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        self.event_ids_table = prefix + "_event_ids"
        self.checkpoint_tables = [prefix + "_timelines", prefix + "_checkpoints"]
        schema = self.datastore.schema

        def name(table: str) -> str:
            return SQL("{0}.{1}").format(Identifier(schema), Identifier(table)).as_string()

        self.dialect = Dialect(
            "%s",
            "bytea",
            "uuid",
            "strpos",
            name(events_table_name),
            name(self.checkpoint_tables[0]),
            name(self.checkpoint_tables[1]),
            lambda subject_id: subject_id,
            lambda subject_id: subject_id,
        )
        self.sql_create_statements += [
            Composed([SQL(statement)]) for statement in create_statements(self.dialect)
        ]
        table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.event_ids_table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (event_id text PRIMARY KEY, "
                "originator_id uuid NOT NULL, digest text NOT NULL)"
            ).format(table)
        )
        self.insert_event_ids = SQL(
            "INSERT INTO {0} SELECT * FROM unnest(%s::text[], %s::uuid[], %s::text[])"
        ).format(table)
        self.copy_event_ids = SQL("COPY {0} (event_id, originator_id, digest) FROM STDIN").format(
            table
        )
        self.select_event_ids_statement = SQL(
            "SELECT event_id, originator_id, digest FROM {0} WHERE event_id = ANY(%s)"
        ).format(table)
        events_table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        select_events = (
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {0} "
            "WHERE originator_id = ANY(%s) {1}ORDER BY originator_id, originator_version"
        )
        self.copy_events = SQL(
            "COPY {0} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(events_table)
        self.select_last_position = SQL("SELECT MAX(notification_id) AS position FROM {0}").format(
            events_table
        )
        self.select_events_of_statement = SQL(select_events).format(events_table, SQL(""))
        self.analyze_statement = SQL("ANALYZE {0}, {1}.{2}").format(
            events_table, Identifier(self.datastore.schema), Identifier(self.event_ids_table)
        )
        self.select_first_events_statement = SQL(select_events).format(
            events_table, SQL("AND originator_version = 1 ")
        )
        self.select_history_statement = SQL(select_events).format(
            events_table, SQL("AND notification_id <= %s ")
        )
        self.select_events_after_statement = SQL(select_events).format(
            events_table, SQL("AND originator_version > %s ")
        )
        self.select_subject_ids_statement = SQL(
            "SELECT originator_id, MAX(originator_version) AS version FROM {0} "
            "WHERE notification_id > %s AND notification_id <= %s GROUP BY originator_id"
        ).format(events_table)
        self.select_positions_statement = SQL(
            "SELECT originator_version, notification_id FROM {0}.{1} WHERE originator_id = %s"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    def create_table(self) -> None:
        """Creates what is missing, and nothing on a store that has it all: `CREATE INDEX IF
        NOT EXISTS` takes a SHARE lock on the events table even when the index exists, so a
        process opening the store queued behind every write in progress, and the writes after
        it behind it (eight writer processes starting together ended in a deadlock)."""
        if self._created():
            self.datastore.register_type_adapters()
            return
        super().create_table()

    def _created(self) -> bool:
        """Whether its tables and the library's notification index exist (named as the
        library names it: were that to change, the DDL would only run as before)."""
        names = [self.events_table_name, f"{self.events_table_name}_notification_id_idx"]
        names += [self.event_ids_table, *self.checkpoint_tables]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(  # the catalogue only: no lock on the tables
                "SELECT count(to_regclass(format('%%I.%%I', %s::text, name))) AS found "
                "FROM unnest(%s::text[]) AS name",
                [self.datastore.schema, names],
            )
            row = curs.fetchone()
        return row is not None and row["found"] == len(names)

    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)  # a stale connection
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's steps in one transaction, without psycopg's pipeline mode: with a
        large batch (20k events, one multi-megabyte parameter) the pipelined send was seen
        to hang, the server waiting for the rest of the message (as in psycopg issue 685)."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_events(
        self,
        curs: Any,
        stored_events: Sequence[StoredEvent],
        *,
        event_ids: Sequence[IndexedEvent] = (),
        **kwargs: Any,
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if event_ids:
            # Take the events table's lock before touching the index, in the same order
            # as every other writer, so that two writers never wait on each other.
            self._lock_table(curs)
            columns = list(zip(*event_ids, strict=True))
            curs.execute(self.insert_event_ids, [list(column) for column in columns])

    @staticmethod
    def _copy(curs: Any, statement: Any, rows: Iterable[Sequence[Any]]) -> None:
        with curs.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._event_ids(curs, event_ids)

    @contextmanager
    def checkpoint_rows(self) -> Iterator[CheckpointRows]:
        """The checkpoint tables, read outside a write."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield CheckpointRows(curs, self.dialect)

    def _event_ids(self, curs: Any, event_ids: Sequence[str]) -> dict[str, IndexedEvent]:
        found: dict[str, IndexedEvent] = {}
        for chunk in chunks(list(dict.fromkeys(event_ids)), PG_CHUNK):
            curs.execute(self.select_event_ids_statement, [list(chunk)])
            for row in curs.fetchall():
                found[row["event_id"]] = IndexedEvent(
                    row["event_id"], row["originator_id"], row["digest"]
                )
        return found

    @contextmanager
    def bulk(self) -> Iterator[BulkWrite]:
        """One transaction for a long write, holding the events table's lock from its start
        (so that no other writer commits between what it reads and what it writes)."""
        written = 0
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)

            def insert(events: Sequence[StoredEvent], ids: Sequence[IndexedEvent]) -> int | None:
                """With `COPY`, PostgreSQL's bulk load (an INSERT of an array of rows spent
                most of an import waiting on the server); the table's lock is held, so the
                rows are numbered one after another and the last is the highest."""
                nonlocal written
                written += len(events)
                self._copy(curs, self.copy_event_ids, ids)
                if not events:
                    return None
                self._notify_channel(curs)
                self._copy(
                    curs,
                    self.copy_events,
                    [(e.originator_id, e.originator_version, e.topic, e.state) for e in events],
                )
                curs.execute(self.select_last_position)
                last = curs.fetchone()
                assert last is not None  # an aggregate over a table: one row
                return int(last["position"])

            yield BulkWrite(
                partial(self._event_ids, curs),
                partial(self._events_on, curs, statement=self.select_events_of_statement),
                lambda subject, version: self._events_on(
                    curs, [subject], statement=self.select_events_after_statement, params=[version]
                ),
                insert,
                CheckpointRows(curs, self.dialect),
            )
        if written >= ANALYZE_AFTER:
            self._analyze()

    def _analyze(self) -> None:
        """Gathers the planner's statistics of the tables a bulk write filled. Without them
        (autovacuum off, or not yet round) PostgreSQL guesses that a batch of subjects holds
        most of the store, and read each batch's histories by scanning every event: after
        importing 200,000 events, 55 ms a batch of 200 subjects instead of 8, over the
        whole table again for each batch of a rebuild. The write has committed: a failure
        here is only logged (autovacuum, or the next bulk write, gathers them)."""
        try:
            with self.datastore.get_connection() as conn, conn.transaction():
                conn.execute(self.analyze_statement)
        except PersistenceError as error:  # down, a lock not granted, a timeout: any
            log.warning("statistics not gathered after a bulk write", error=str(error))

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, self.select_events_of_statement, [])

    def select_first_events(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, self.select_first_events_statement, [])

    def select_history(self, originator_ids: Sequence[UUID], upto: int) -> list[Notification]:
        return self._select_events(originator_ids, self.select_history_statement, [upto])

    def select_subject_ids(self, upto: int, after: int = 0) -> dict[UUID, int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_subject_ids_statement, [after, upto])
            return {row["originator_id"]: row["version"] for row in curs.fetchall()}

    def _select_events(
        self, originator_ids: Sequence[UUID], statement: Any, params: list[Any]
    ) -> list[Notification]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._events_on(curs, originator_ids, statement=statement, params=params)

    def _events_on(
        self,
        curs: Any,
        originator_ids: Sequence[UUID],
        *,
        statement: Any,
        params: Sequence[Any] = (),
    ) -> list[Notification]:
        events: list[Notification] = []
        for chunk in chunks(list(dict.fromkeys(originator_ids)), PG_CHUNK):
            # Binary results: the states come as they are stored, not hex-encoded by the
            # server and decoded here (a fifth of the time a rebuild's histories take).
            curs.execute(statement, [list(chunk), *params], binary=True)
            events += [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
        return events

    def select_positions(self, originator_id: UUID) -> dict[int, int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_positions_statement, [originator_id])
            return {row["originator_version"]: row["notification_id"] for row in curs.fetchall()}
