"""The status read models bound to SQLite and to PostgreSQL (the library's tracking
recorders, sharing the application's datastore)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.copy import Copy, FileWriter

from adapters.read_models.schema import ReadTooLong, setup_retry
from adapters.read_models.writer import Writer
from projections.ports import Rows, Table


class SQLiteStatusView(Writer, SQLiteTrackingRecorder):
    placeholder = "?"
    binary_collation = "BINARY"
    lateral = False
    distinct = "IS NOT"
    log_position = "rowid"
    tracking_table = "tracking"  # the library's, fixed on SQLite

    def __init__(self, datastore: SQLiteDatastore) -> None:
        SQLiteTrackingRecorder.__init__(self, datastore)
        setup_retry(self.create_table)()  # the library's tracking table
        self.open_generation()

    def qualify(self, name: str) -> str:
        return name

    def gather_statistics(self, cursor: Any, tables: Sequence[str]) -> None:
        """None: without `ANALYZE`, SQLite's planner prefers the indexes, as readers want."""

    def found(self, cursor: Any, names: Sequence[str]) -> int:
        marks = ", ".join("?" * len(names))
        cursor.execute(f"SELECT count(*) FROM sqlite_master WHERE name IN ({marks})", names)
        return int(cursor.fetchone()[0])

    def track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


class PostgresStatusView(Writer, PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore) -> None:
        PostgresTrackingRecorder.__init__(
            self, datastore, tracking_table_name="deplatforming_tracking"
        )
        self.tracking_table = self.qualify(self.tracking_table_name)
        self.create_table()
        self.open_generation()

    def qualify(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'

    def track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)

    @contextmanager
    def reading(self, deadline: float | None = None) -> Iterator[Any]:
        """On the pool's autocommit connections a statement is its own transaction: without
        BEGIN and ROLLBACK around it, a read is one round trip, not three. With a `deadline`,
        the read is bounded by the server (`statement_timeout`, and `lock_timeout` for a lock
        another session holds), set for the session and reset after it (two short round
        trips: a transaction pipelined with the read cost three times as much in psycopg);
        a request's connections are also watched (`adapters.bounds`)."""
        if deadline is None:
            with self.datastore.cursor() as c:
                yield c
            return
        limit = f"'{max(int(deadline * 1000), 1)}ms'"
        with self.datastore.get_connection() as connection:
            c = connection.cursor()
            c.execute(f"SET statement_timeout = {limit}; SET lock_timeout = {limit}")
            try:
                yield c
            except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
                raise ReadTooLong(deadline) from None
            finally:
                try:
                    c.execute("RESET statement_timeout; RESET lock_timeout")
                except psycopg.Error:  # never handed on with the bound: the pool replaces it
                    connection.close()

    def insert(self, cursor: Any, table: str, rows: Table, columns: str = "") -> None:
        """With `COPY`, PostgreSQL's bulk load: a rebuild writes millions of rows, and a
        pipeline of INSERTs spent most of its time waiting on the server. Rows a worker
        formatted already (`bulk_format`) are sent as they are."""
        if rows:
            with cursor.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                if isinstance(rows, bytes):
                    copy.write(rows)
                    return
                for row in rows:
                    copy.write_row(row)


StatusView = SQLiteStatusView | PostgresStatusView


def bulk_format(datastore: Any) -> Callable[[Rows], Rows]:
    """How a worker process that derives rows for this store hands them over: for
    PostgreSQL, each table's rows in `COPY`'s text format, made by psycopg's own formatter (a
    `Copy` that writes to memory), so that the process writing them neither unpickles nor
    formats hundreds of thousands of tuples; for SQLite, as they are."""
    if isinstance(datastore, SQLiteDatastore):
        return lambda rows: rows

    def formatted(rows: Rows) -> Rows:
        with datastore.get_connection() as connection, connection.cursor() as cursor:
            return replace(
                rows,
                periods=_copy_text(cursor, rows.periods),
                intervals=_copy_text(cursor, rows.intervals),
                subjects=_copy_text(cursor, rows.subjects),
                timeline=_copy_text(cursor, rows.timeline),
            )

    return formatted


def _copy_text(cursor: Any, rows: Table) -> Table:
    if isinstance(rows, bytes) or not rows:
        return rows
    buffer = io.BytesIO()
    with Copy(cursor, writer=FileWriter(buffer)) as copy:
        for row in rows:
            copy.write_row(row)
    return buffer.getvalue()


def status_view(datastore: Any) -> StatusView:
    """The read models on the application's own datastore."""
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteStatusView(datastore)
    return PostgresStatusView(datastore)
