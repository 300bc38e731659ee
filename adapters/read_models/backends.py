"""The status read models bound to SQLite and to PostgreSQL (the library's tracking
recorders, sharing the application's datastore)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from adapters.read_models.schema import setup_retry
from adapters.read_models.writer import Writer


class SQLiteStatusView(Writer, SQLiteTrackingRecorder):
    placeholder = "?"
    binary_collation = "BINARY"
    log_position = "rowid"
    tracking_table = "tracking"  # the library's, fixed on SQLite

    def __init__(self, datastore: SQLiteDatastore) -> None:
        SQLiteTrackingRecorder.__init__(self, datastore)
        setup_retry(self.create_table)()  # the library's tracking table
        self.open_generation()

    def qualify(self, name: str) -> str:
        return name

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
    def reading(self) -> Iterator[Any]:
        """On the pool's autocommit connections a statement is its own transaction: without
        BEGIN and ROLLBACK around it, a read is one round trip, not three."""
        with self.datastore.cursor() as c:
            yield c

    def insert(
        self, cursor: Any, table: str, rows: Sequence[Sequence[Any]], columns: str = ""
    ) -> None:
        """With `COPY`, PostgreSQL's bulk load: a rebuild writes millions of rows, and a
        pipeline of INSERTs spent most of its time waiting on the server."""
        if rows:
            with cursor.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


StatusView = SQLiteStatusView | PostgresStatusView


def status_view(datastore: Any) -> StatusView:
    """The read models on the application's own datastore."""
    if isinstance(datastore, SQLiteDatastore):
        return SQLiteStatusView(datastore)
    return PostgresStatusView(datastore)
