"""The status read models in SQL, on SQLite and PostgreSQL.

A generation of read models is four tables (`rm<g>_periods`, `rm<g>_intervals`,
`rm<g>_current`, `rm<g>_timeline`) and a tracking key `status-<g>` in the
library's tracking table; the `read_models` table says which generation readers
use. A rebuild fills generation g+1 from the first event and then switches
readers over in one transaction, so they never see a half-built model.

Instants are stored as microseconds since the epoch (exact, ordered, the same on
both databases).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from eventsourcing.utils import retry

from domain.clock import micros, now
from domain.values import SubjectKey
from projections.ports import RetractionMark, SubjectRows, TimelineRow
from projections.status import OVERALL

CHANNELS = ("web", "ios", "android")

# SQLite refuses at once (without waiting for the lock timeout) a transaction that read and
# then wants to write while another process writes: these short set-up transactions retry.
setup_retry = retry(OperationalError, max_attempts=30, wait=0.1)
CURRENT_COLUMNS = 6 + 2 * (1 + len(CHANNELS))  # see current_row


def table_statements(t: dict[str, str]) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {t['periods']} (subject_id TEXT NOT NULL, "
        "valid_from BIGINT NOT NULL, valid_to BIGINT, overall TEXT NOT NULL, event_id TEXT, "
        "document TEXT NOT NULL, PRIMARY KEY (subject_id, valid_from))",
        f"CREATE INDEX IF NOT EXISTS {t['index']}_periods_at ON {t['periods']} "
        "(valid_from, overall)",
        f"CREATE TABLE IF NOT EXISTS {t['intervals']} (subject_id TEXT NOT NULL, "
        "channel TEXT NOT NULL, valid_from BIGINT NOT NULL, valid_to BIGINT, "
        "status TEXT NOT NULL, event_id TEXT, PRIMARY KEY (subject_id, channel, valid_from))",
        f"CREATE INDEX IF NOT EXISTS {t['index']}_intervals_status ON {t['intervals']} "
        "(channel, status, valid_from)",
        f"CREATE TABLE IF NOT EXISTS {t['current']} (subject_id TEXT PRIMARY KEY, "
        "kind TEXT NOT NULL, key TEXT NOT NULL, identity TEXT NOT NULL, exists_from BIGINT, "
        "settled_from BIGINT, overall TEXT, overall_since BIGINT, "
        + ", ".join(f"{c} TEXT, {c}_since BIGINT" for c in CHANNELS)
        + ")",
        f"CREATE TABLE IF NOT EXISTS {t['timeline']} (subject_id TEXT NOT NULL, "
        "occurred_at BIGINT NOT NULL, version BIGINT NOT NULL, event_id TEXT NOT NULL, "
        "position BIGINT NOT NULL, type TEXT NOT NULL, provider TEXT, recorded_at BIGINT NOT "
        "NULL, record TEXT NOT NULL, retracted_by TEXT, retracted_at BIGINT, "
        "retraction_reason TEXT, PRIMARY KEY (subject_id, occurred_at, version))",
    ]


class StatusReadModels:
    """The SQL of one generation; subclasses bind it to a database (its cursor and quoting)."""

    placeholder = "%s"
    generation: int
    tracking_table: str  # the library's tracking table, where this generation's position is

    datastore: Any  # the library's SQLite or PostgreSQL datastore, shared with the app

    def qualify(self, name: str) -> str:
        raise NotImplementedError

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def insert_tracking(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)  # type: ignore[attr-defined]

    # Names ----------------------------------------------------------------------------

    @property
    def tracking_key(self) -> str:
        return f"status-{self.generation}"

    def tables(self, generation: int | None = None) -> dict[str, str]:
        g = self.generation if generation is None else generation
        names = {
            n: self.qualify(f"rm{g}_{n}") for n in ("periods", "intervals", "current", "timeline")
        }
        return names | {"index": f"rm{g}", "meta": self.qualify("read_models")}

    def sql(self, statement: str) -> str:
        return statement.replace("%s", self.placeholder)

    def execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self.sql(statement), params)

    def executemany(self, cursor: Any, statement: str, rows: list[Sequence[Any]]) -> None:
        if rows:
            cursor.executemany(self.sql(statement), rows)

    # Generations ----------------------------------------------------------------------

    @setup_retry
    def open_generation(self) -> None:
        """Creates the tables if missing and takes the generation readers use."""
        with self.cursor(commit=True) as c:
            self.execute(
                c,
                f"CREATE TABLE IF NOT EXISTS {self.tables(0)['meta']} (name TEXT PRIMARY KEY, "
                "generation BIGINT NOT NULL, last_error TEXT, last_error_at BIGINT)",
            )
            self.execute(
                c,
                f"INSERT INTO {self.tables(0)['meta']} (name, generation) VALUES ('status', 1) "
                "ON CONFLICT (name) DO NOTHING",
            )
            self.execute(
                c, f"SELECT generation FROM {self.tables(0)['meta']} WHERE name = 'status'"
            )
            self.generation = int(c.fetchone()["generation"])
            for statement in table_statements(self.tables()):
                self.execute(c, statement)

    @setup_retry
    def start_generation(self, generation: int) -> None:
        """Fresh, empty tables for a rebuild (readers keep using theirs)."""
        self.generation = generation
        with self.cursor(commit=True) as c:
            tables = self.tables()
            self.execute(
                c,
                f"DELETE FROM {self.tracking_table} WHERE application_name = %s",
                [self.tracking_key],
            )
            for name in ("periods", "intervals", "current", "timeline"):
                self.execute(c, f"DROP TABLE IF EXISTS {tables[name]}")
            for statement in table_statements(tables):
                self.execute(c, statement)

    @setup_retry
    def activate(self) -> int | None:
        """Points readers at this generation and drops the one they used; returns it."""
        with self.cursor(commit=True) as c:
            meta = self.tables()["meta"]
            self.execute(c, f"SELECT generation FROM {meta} WHERE name = 'status'")
            previous = int(c.fetchone()["generation"])
            self.execute(
                c, f"UPDATE {meta} SET generation = %s WHERE name = 'status'", [self.generation]
            )
            if previous == self.generation:
                return None
            old = self.tables(previous)
            for name in ("periods", "intervals", "current", "timeline"):
                self.execute(c, f"DROP TABLE IF EXISTS {old[name]}")
            return previous

    def meta(self) -> dict[str, Any]:
        with self.cursor(commit=False) as c:
            self.execute(c, f"SELECT * FROM {self.tables(0)['meta']} WHERE name = 'status'")
            return dict(c.fetchone())

    def follow_active(self) -> bool:
        """Moves to the generation readers use, if a rebuild has replaced this one."""
        if self.meta()["generation"] == self.generation:
            return False
        self.open_generation()
        return True

    @setup_retry
    def record_error(self, message: str) -> None:
        with self.cursor(commit=True) as c:
            self.execute(
                c,
                f"UPDATE {self.tables(0)['meta']} SET last_error = %s, last_error_at = %s "
                "WHERE name = 'status'",
                [message[:4000], micros(now())],
            )

    # Writes -----------------------------------------------------------------------------

    def apply(
        self,
        subjects: Sequence[SubjectRows],
        timeline: Sequence[TimelineRow],
        retractions: Sequence[RetractionMark],
        tracking: Tracking,
    ) -> None:
        t = self.tables()
        ids = [[s.subject_id] for s in subjects]
        with self.cursor(commit=True) as c:
            self.insert_tracking(c, tracking)  # first: a page applied twice fails here
            for name in ("periods", "intervals", "current"):
                self.executemany(c, f"DELETE FROM {t[name]} WHERE subject_id = %s", ids)
            self.executemany(
                c,
                f"INSERT INTO {t['periods']} VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        s.subject_id,
                        micros(p.valid_from),
                        maybe_micros(p.valid_to),
                        p.readings[OVERALL],
                        p.event_id,
                        json.dumps(p.document),
                    )
                    for s in subjects
                    for p in s.snapshots
                ],
            )
            self.executemany(
                c,
                f"INSERT INTO {t['intervals']} VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        s.subject_id,
                        i.channel,
                        micros(i.valid_from),
                        maybe_micros(i.valid_to),
                        i.status,
                        i.event_id,
                    )
                    for s in subjects
                    for i in s.intervals
                ],
            )
            self.executemany(
                c,
                f"INSERT INTO {t['current']} VALUES ({', '.join(['%s'] * CURRENT_COLUMNS)})",
                [current_row(s) for s in subjects],
            )
            self.executemany(
                c,
                f"INSERT INTO {t['timeline']} (subject_id, occurred_at, version, event_id, "
                "position, type, provider, recorded_at, record) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r.subject_id,
                        r.occurred_at,
                        r.version,
                        r.event_id,
                        r.position,
                        r.type,
                        r.provider,
                        r.recorded_at,
                        json.dumps(r.record),
                    )
                    for r in timeline
                ],
            )
            self.executemany(
                c,
                f"UPDATE {t['timeline']} SET retracted_by = %s, retracted_at = %s, "
                "retraction_reason = %s WHERE subject_id = %s AND event_id = %s",
                [
                    (r.event_id, r.recorded_at, r.reason, r.subject_id, r.target)
                    for r in retractions
                ],
            )

    # Reads ------------------------------------------------------------------------------

    def period_at(self, subject_id: str, as_of: int) -> dict[str, Any] | None:
        """The subject (key, kind, exists_from) with its period at as_of (`document` is None
        when it had none then), in one query; None for a subject never recorded."""
        t = self.tables()
        with self.cursor(commit=False) as c:
            self.execute(
                c,
                f"SELECT s.kind, s.key, s.exists_from, p.valid_to, p.document "
                f"FROM {t['current']} s LEFT JOIN {t['periods']} p ON p.subject_id = s.subject_id "
                f"AND p.valid_from = (SELECT MAX(valid_from) FROM {t['periods']} "
                "WHERE subject_id = s.subject_id AND valid_from <= %s) WHERE s.subject_id = %s",
                [as_of, subject_id],
            )
            row = c.fetchone()
        if row is None:
            return None
        found = dict(row)
        if found["valid_to"] is not None and found["valid_to"] <= as_of:
            found["document"] = None
        return found

    def periods_at(self, as_of: int, status: str | None = None) -> list[dict[str, Any]]:
        """Every subject's period at as_of (a range query), platforms first, by key."""
        t = self.tables()
        query = (
            f"SELECT p.*, s.kind, s.key FROM {t['periods']} p JOIN {t['current']} s "
            "ON s.subject_id = p.subject_id WHERE p.valid_from <= %s "
            "AND (p.valid_to IS NULL OR p.valid_to > %s)"
        )
        params: list[Any] = [as_of, as_of]
        if status is not None:
            query += " AND p.overall = %s"
            params.append(status)
        query += " ORDER BY s.kind DESC, s.identity"
        with self.cursor(commit=False) as c:
            self.execute(c, query, params)
            return [dict(row) for row in c.fetchall()]

    def subject(self, subject_id: str) -> dict[str, Any] | None:
        with self.cursor(commit=False) as c:
            self.execute(
                c, f"SELECT * FROM {self.tables()['current']} WHERE subject_id = %s", [subject_id]
            )
            row = c.fetchone()
        return dict(row) if row is not None else None

    def keys_of(self, subject_ids: list[str]) -> dict[str, SubjectKey]:
        found: dict[str, SubjectKey] = {}
        with self.cursor(commit=False) as c:
            for start in range(0, len(subject_ids), 500):
                chunk = subject_ids[start : start + 500]
                self.execute(
                    c,
                    f"SELECT subject_id, kind, key FROM {self.tables()['current']} "
                    f"WHERE subject_id IN ({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
                for row in c.fetchall():
                    found[row["subject_id"]] = SubjectKey(row["kind"], row["key"])
        return found

    def intervals_of(self, subject_ids: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with self.cursor(commit=False) as c:
            for start in range(0, len(subject_ids), 500):
                chunk = subject_ids[start : start + 500]
                self.execute(
                    c,
                    f"SELECT * FROM {self.tables()['intervals']} "
                    f"WHERE subject_id IN ({', '.join(['%s'] * len(chunk))}) "
                    "ORDER BY subject_id, channel, valid_from",
                    chunk,
                )
                rows += [dict(row) for row in c.fetchall()]
        return rows

    def timeline(self, subject_id: str, limit: int | None, offset: int = 0) -> list[dict[str, Any]]:
        query = (
            f"SELECT * FROM {self.tables()['timeline']} WHERE subject_id = %s "
            "ORDER BY occurred_at, version"
        )
        params: list[Any] = [subject_id]
        if limit is not None:
            query += " LIMIT %s OFFSET %s"
            params += [limit, offset]
        with self.cursor(commit=False) as c:
            self.execute(c, query, params)
            rows = [dict(row) for row in c.fetchall()]
        return rows if limit is not None else rows[offset:]


def maybe_micros(moment: Any) -> int | None:
    return None if moment is None else micros(moment)


def current_row(s: SubjectRows) -> tuple[Any, ...]:
    """The subject's last period: its status per channel, and since when."""
    last = s.snapshots[-1] if s.snapshots else None
    runs = {i.channel: i for i in s.intervals if i.valid_to is None}
    values: list[Any] = [
        s.subject_id,
        s.kind,
        s.key,
        s.identity,
        micros(s.snapshots[0].valid_from) if s.snapshots else None,
        micros(last.valid_from) if last else None,
    ]
    for channel in (OVERALL, *CHANNELS):
        run = runs.get(channel)
        values += [run.status, micros(run.valid_from)] if run else [None, None]
    return tuple(values)


class SQLiteStatusView(StatusReadModels, SQLiteTrackingRecorder):
    placeholder = "?"
    tracking_table = "tracking"  # the library's, fixed on SQLite

    def __init__(self, datastore: SQLiteDatastore) -> None:
        SQLiteTrackingRecorder.__init__(self, datastore)
        setup_retry(self.create_table)()  # the library's tracking table
        self.open_generation()

    def qualify(self, name: str) -> str:
        return name


class PostgresStatusView(StatusReadModels, PostgresTrackingRecorder):
    def __init__(self, datastore: PostgresDatastore) -> None:
        PostgresTrackingRecorder.__init__(
            self, datastore, tracking_table_name="deplatforming_tracking"
        )
        self.tracking_table = self.qualify(self.tracking_table_name)
        self.create_table()
        self.open_generation()

    def qualify(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'
