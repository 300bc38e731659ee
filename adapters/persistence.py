"""The event store on SQLite and PostgreSQL: the library's recorders plus an event-id index.

The spec's `event_id` is global: an id used for one subject cannot be reused for
another, and a retraction names only its target's id. The library stores events
by (aggregate id, version), so these recorders add an `event_ids` table
(event_id -> aggregate id, content digest), written in the same transaction as
the events it indexes: its primary key makes a concurrent duplicate fail the
whole write, which the service then retries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from adapters.batching import chunks
from service.ports import BulkWrite, IndexedEvent

PG_CHUNK = 5000  # ids per lookup query on PostgreSQL (one array parameter)


class SQLiteEventStore(SQLiteApplicationRecorder):
    """`stored_events` plus `event_ids`, in one SQLite file."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS event_ids ("
            "event_id TEXT PRIMARY KEY, originator_id TEXT NOT NULL, digest TEXT NOT NULL)",
        ]

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        event_ids: Sequence[IndexedEvent] = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        c.executemany(
            "INSERT INTO event_ids VALUES (?, ?, ?)",
            [(e.event_id, e.originator_id.hex, e.digest) for e in event_ids],
        )
        return positions

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
                lambda events, ids: self._insert_events(c, events, event_ids=ids) or [],
            )

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, "", [])

    def select_first_events(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, "AND originator_version = 1 ", [])

    def select_history(self, originator_ids: Sequence[UUID], upto: int) -> list[Notification]:
        return self._select_events(originator_ids, "AND rowid <= ? ", [upto])

    def select_subject_ids(self, upto: int, after: int = 0) -> list[UUID]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                "WHERE rowid > ? AND rowid <= ?",
                [after, upto],
            )
            return [UUID(row[0]) for row in c.fetchall()]

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


class PostgresEventStore(PostgresApplicationRecorder):
    """`<app>_events` plus `<app>_event_ids`, in the configured schema."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.event_ids_table = events_table_name.removesuffix("_events") + "_event_ids"
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
        self.select_events_of_statement = SQL(select_events).format(events_table, SQL(""))
        self.select_first_events_statement = SQL(select_events).format(
            events_table, SQL("AND originator_version = 1 ")
        )
        self.select_history_statement = SQL(select_events).format(
            events_table, SQL("AND notification_id <= %s ")
        )
        self.select_subject_ids_statement = SQL(
            "SELECT DISTINCT originator_id FROM {0} "
            "WHERE notification_id > %s AND notification_id <= %s"
        ).format(events_table)
        self.select_positions_statement = SQL(
            "SELECT originator_version, notification_id FROM {0}.{1} WHERE originator_id = %s"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
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

    def select_event_ids(self, event_ids: Sequence[str]) -> dict[str, IndexedEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._event_ids(curs, event_ids)

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
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._lock_table(curs)

            def insert(events: Sequence[StoredEvent], ids: Sequence[IndexedEvent]) -> list[int]:
                self._insert_events(curs, events, event_ids=ids)
                if not events:
                    return []
                self._insert_stored_events(curs, events)
                return list(self._fetch_ids_after_insert_events(curs, events) or [])

            yield BulkWrite(
                partial(self._event_ids, curs),
                partial(self._events_on, curs, statement=self.select_events_of_statement),
                insert,
            )

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, self.select_events_of_statement, [])

    def select_first_events(self, originator_ids: Sequence[UUID]) -> list[Notification]:
        return self._select_events(originator_ids, self.select_first_events_statement, [])

    def select_history(self, originator_ids: Sequence[UUID], upto: int) -> list[Notification]:
        return self._select_events(originator_ids, self.select_history_statement, [upto])

    def select_subject_ids(self, upto: int, after: int = 0) -> list[UUID]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_subject_ids_statement, [after, upto])
            return [row["originator_id"] for row in curs.fetchall()]

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
            curs.execute(statement, [list(chunk), *params])
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
