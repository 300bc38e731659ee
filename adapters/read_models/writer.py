"""Writing a page of projected rows, with the tracking record, in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Tracking

from adapters.batching import CHUNK, chunks
from adapters.read_models.schema import Generations, fact_regions, regions_column
from adapters.serialize import (
    document_from_json,
    document_json,
    from_json_text,
    json_text,
    record_json,
)
from domain.clock import from_micros, micros
from domain.values import provider_identity
from projections.documents import CHANNEL_ORDER, OVERALL, StatusDocument
from projections.ports import Projected, Rows
from projections.status import Interval, Snapshot
from projections.tails import Extension


def values(rows: int, columns: int) -> str:
    """A table of `rows` rows of parameters (`column1`, `column2`, ... on either database)."""
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return "(VALUES " + ", ".join([row] * rows) + ")"


def maybe_micros(moment: datetime | None) -> int | None:
    return None if moment is None else micros(moment)


class Writer(Generations):
    def track(self, cursor: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    def apply(
        self, changes: Iterable[Projected | Rows], tracking: Tracking | None, *, fresh: bool = False
    ) -> None:
        """Supersedes or replaces the rows of each subject, adds the new facts to the timeline
        and marks retractions, batch by batch as `changes` yields them, in one transaction
        with the tracking record first: a window of the log applied twice fails there.
        `fresh`: the tables hold no rows yet (nothing to replace)."""
        with self.cursor(commit=True) as c:
            if tracking is not None:
                self.track(c, tracking)  # first: a page applied twice fails here
            for change in changes:
                if isinstance(change, Projected):
                    self._write(c, encode(change), fresh)
                    self._extend(c, change.extensions)
                else:
                    self._write(c, change, fresh)

    def _close(self, c: Any, table: str, where: str, rows: Sequence[Sequence[Any]]) -> None:
        """Ends the belief in the open rows `where` selects, at the moment each row of
        parameters starts with (the rest are `where`'s): rows believed from that very moment
        (written earlier at the same instant) are dropped, the others closed there."""
        self.executemany(
            c,
            f"DELETE FROM {table} WHERE known_to IS NULL AND known_from = %s AND {where}",
            rows,
        )
        self.executemany(
            c, f"UPDATE {table} SET known_to = %s WHERE known_to IS NULL AND {where}", rows
        )

    def _reend(self, c: Any, name: str, key: str, rows: Sequence[Sequence[Any]]) -> None:
        """Gives open rows new ends: each row of parameters is (the moment, the new
        `valid_to`, then `key`'s, which select one open row by its primary key's valid
        part). A row believed from that moment is changed in place; another, if its end
        differs, is closed there, with a copy ending at the new end believed from then on."""
        table, table_columns = self.tables()[name], COLUMNS[name]
        copied = table_columns.replace("known_from", "%s").replace("valid_to", "%s")
        copied = copied.replace("known_to", "NULL")
        other = f"known_to IS NULL AND {key} AND known_from <> %s AND valid_to {self.distinct} %s"
        self.executemany(
            c,
            f"UPDATE {table} SET valid_to = %s WHERE known_to IS NULL AND {key} "
            "AND known_from = %s",
            [(end, *k, at) for at, end, *k in rows],
        )
        self.executemany(
            c,
            f"INSERT INTO {table} ({table_columns}) SELECT {copied} FROM {table} WHERE {other}",
            [(at, end, *k, at, end) for at, end, *k in rows],
        )
        self.executemany(
            c,
            f"UPDATE {table} SET known_to = %s WHERE {other}",
            [(at, *k, at, end) for at, end, *k in rows],
        )

    def _extend(self, c: Any, extensions: Sequence[Extension]) -> None:
        """Supersedes the rows begun after each extension's `after` (but a continued one's),
        and ends those in force then, as believed from the extension's `known_at`."""
        if not extensions:
            return
        t = self.tables()
        first = [e for e in extensions if not e.continued]
        after = [(micros(e.known_at), e.subject_id, micros(e.after)) for e in first]
        self._close(c, t["periods"], "subject_id = %s AND valid_from > %s", after)
        self._close(  # channel by channel: a range of the primary key each, not a scan
            c,
            t["intervals"],
            "subject_id = %s AND channel = %s AND valid_from > %s",
            [(k, i, channel, m) for k, i, m in after for channel in map(str, CHANNEL_ORDER)],
        )
        self._reend(
            c,
            "periods",
            "subject_id = %s AND valid_from = %s",
            [
                (micros(e.known_at), maybe_micros(e.period_end), e.subject_id, micros(e.after))
                for e in first
            ],
        )
        self._reend(
            c,
            "intervals",
            "subject_id = %s AND channel = %s AND valid_from = %s",
            [
                (micros(e.known_at), maybe_micros(end), e.subject_id, channel, micros(start))
                for e in extensions
                for channel, (start, end) in e.run_ends.items()
            ],
        )
        self.insert(
            c,
            t["periods"],
            period_rows(
                [(e.subject_id, e.known_at, None, p) for e in extensions for p in e.periods]
            ),
        )
        self.insert(
            c,
            t["intervals"],
            interval_rows(
                [(e.subject_id, e.known_at, None, i) for e in extensions for i in e.intervals]
            ),
        )

    def standing_at(
        self, points: Sequence[tuple[str, str, datetime]]
    ) -> dict[str, tuple[StatusDocument, dict[str, datetime]]]:
        """For each (subject id, kind, moment): the document of the period the subject's rows
        begin at that moment, and when each of its channels' runs in force then began (where
        a projection redoes the rows from); a subject without that period is left out. Two
        queries for a few hundred subjects, each row found by primary key (the run in force:
        the last one begun by the moment, found stepping back from it: a MAX over the runs
        begun by then read them all), whatever the length of the subjects' histories."""
        t = self.tables()
        found: dict[str, tuple[StatusDocument, dict[str, datetime]]] = {}
        with self.cursor(commit=False) as c:
            for chunk in chunks(points, CHUNK // len(CHANNEL_ORDER)):
                kinds = {subject_id: kind for subject_id, kind, _ in chunk}
                wanted = [(subject_id, micros(moment)) for subject_id, _, moment in chunk]
                self.execute(
                    c,
                    f"SELECT p.subject_id, p.document FROM {values(len(wanted), 2)} AS v "
                    f"JOIN {t['periods']} p ON p.subject_id = v.column1 "
                    "AND p.valid_from = v.column2 AND p.known_to IS NULL",
                    [value for point in wanted for value in point],
                )
                for row in c.fetchall():
                    document = from_json_text(row["document"])
                    found[row["subject_id"]] = (
                        document_from_json(kinds[row["subject_id"]], document),
                        {},
                    )
                runs = [(i, at, str(channel)) for i, at in wanted for channel in CHANNEL_ORDER]
                self.execute(
                    c,
                    f"SELECT v.column1 AS subject_id, v.column2 AS at, r.channel, r.valid_from, "
                    f"r.valid_to FROM {values(len(runs), 3)} AS v "
                    f"JOIN {t['intervals']} r ON r.subject_id = v.column1 "
                    "AND r.channel = v.column3 AND r.known_to IS NULL AND r.valid_from = ("
                    f"SELECT q.valid_from FROM {t['intervals']} q "
                    "WHERE q.subject_id = v.column1 AND q.channel = v.column3 "
                    "AND q.valid_from <= v.column2 AND q.known_to IS NULL "
                    "ORDER BY q.valid_from DESC LIMIT 1)",
                    [value for run in runs for value in run],
                )
                for row in c.fetchall():
                    standing = found.get(row["subject_id"])
                    if standing is not None and (
                        row["valid_to"] is None or row["valid_to"] > row["at"]
                    ):
                        standing[1][row["channel"]] = from_micros(row["valid_from"])
        return found

    def _write(self, c: Any, rows: Rows, fresh: bool) -> None:
        t = self.tables()
        for ids in chunks([] if fresh else rows.replaced):
            marks = ", ".join(["%s"] * len(ids))
            for name in ("periods", "intervals", "subjects"):
                self.execute(c, f"DELETE FROM {t[name]} WHERE subject_id IN ({marks})", ids)
        if rows.superseded and not fresh:
            for name in ("periods", "intervals"):
                self._close(c, t[name], "subject_id = %s", [(k, i) for i, k in rows.superseded])
            self.executemany(
                c,
                f"DELETE FROM {t['subjects']} WHERE subject_id = %s",
                [(i,) for i, _ in rows.superseded],
            )
        self.insert(c, t["periods"], rows.periods)
        self.insert(c, t["intervals"], rows.intervals)
        self.insert(c, t["subjects"], rows.subjects)
        self.insert(c, t["timeline"], rows.timeline, f"({TIMELINE_COLUMNS})")
        self.executemany(
            c,
            f"UPDATE {t['timeline']} SET retracted_by = %s, retracted_at = %s, "
            "retraction_reason = %s WHERE subject_id = %s AND event_id = %s",
            rows.retractions,
        )


COLUMNS = {
    "periods": "subject_id, valid_from, known_from, valid_to, known_to, overall, regions, "
    "event_id, document",
    "intervals": "subject_id, channel, valid_from, known_from, valid_to, known_to, status, "
    "event_id",
}
TIMELINE_COLUMNS = (
    "subject_id, occurred_at, version, recorded_at, event_id, record, provider, regions"
)


def encode(change: Projected) -> Rows:
    """A change's rows as the tables hold them (but its extensions, written in place)."""
    first = [s for s in change.subjects if not s.continued]  # the others add to rows just written
    replaced = [s.subject_id for s in first] if change.history else []
    superseded = [] if change.history else [(s.subject_id, micros(s.known_from)) for s in first]
    return Rows(
        replaced,
        superseded,
        period_rows(
            [
                (s.subject_id, s.known_from, s.known_to, p)
                for s in change.subjects
                for p in s.snapshots
            ]
        ),
        interval_rows(
            [
                (s.subject_id, s.known_from, s.known_to, i)
                for s in change.subjects
                for i in s.intervals
            ]
        ),
        [
            (
                s.subject_id,
                s.kind,
                s.key,
                s.identity,
                maybe_micros(s.exists_from),
                micros(s.first_known),
            )
            for s in first
        ],
        [
            (
                r.subject_id,
                r.occurred_at,
                r.version,
                r.recorded_at,
                r.record.event_id,
                json_text(record_json(r.record)),
                provider_identity(r.record.fields["provider"])
                if "provider" in r.record.fields
                else None,
                fact_regions(r.record.fields.get("regions")),
            )
            for r in change.timeline
        ],
        [(r.event_id, r.recorded_at, r.reason, r.subject_id, r.target) for r in change.retractions],
    )


def period_rows(
    periods: Sequence[tuple[str, datetime, datetime | None, Snapshot]],
) -> list[tuple[Any, ...]]:
    """Periods as stored, each with its subject's id and when it was believed."""
    return [
        (
            subject_id,
            micros(p.valid_from),
            micros(known_from),
            maybe_micros(p.valid_to),
            maybe_micros(known_to),
            p.readings[OVERALL].value,
            regions_column(p.document.regions),
            p.event_id,
            json_text(document_json(p.document)),
        )
        for subject_id, known_from, known_to, p in periods
    ]


def interval_rows(
    runs: Sequence[tuple[str, datetime, datetime | None, Interval]],
) -> list[tuple[Any, ...]]:
    return [
        (
            subject_id,
            i.channel,
            micros(i.valid_from),
            micros(known_from),
            maybe_micros(i.valid_to),
            maybe_micros(known_to),
            i.status.value,
            i.event_id,
        )
        for subject_id, known_from, known_to, i in runs
    ]
