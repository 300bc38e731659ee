"""The `Queries` port answered from the status read models (the store's current knowledge):
a status at any as_of is one primary-key lookup, every subject at T one range query."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from eventsourcing.persistence import PersistenceError

from adapters.batching import chunks
from adapters.read_models.schema import Generations
from adapters.serialize import document_from_json, from_json_text, record_from_json
from domain import SUBJECT_CLASSES
from domain.clock import from_micros, micros
from domain.values import Status, SubjectKey, SubjectKind, provider_identity, status_value
from projections.documents import HistoryEntry, RetractionRef, document
from projections.status import Interval
from service.queries import SubjectStatus, no_record, not_yet

Row = dict[str, Any]


def intervals_of(count: int, t: dict[str, str]) -> str:
    return f"SELECT * FROM {t['intervals']} WHERE subject_id IN ({', '.join(['%s'] * count)})"


def current_only(known_at: datetime | None) -> None:
    if known_at is not None:
        raise ValueError("the read models hold the store's current knowledge only")


class ReadModelQueries:
    def __init__(self, view: Generations) -> None:
        self.view = view

    def _one(self, query: Callable[[dict[str, str]], str], params: Sequence[Any]) -> Row | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _all(self, query: Callable[[dict[str, str]], str], params: Sequence[Any]) -> list[Row]:
        """Runs a query on the tables of the generation readers use: if a rebuild replaced
        it meanwhile (its tables are gone), once more on the new one."""
        try:
            return self._run(query(self.view.tables()), params)
        except PersistenceError:
            if not self.view.follow_active():
                raise
            return self._run(query(self.view.tables()), params)

    def _run(self, query: str, params: Sequence[Any]) -> list[Row]:
        with self.view.reading() as c:
            self.view.execute(c, query, params)
            return [dict(row) for row in c.fetchall()]

    def exists(self, key: SubjectKey, known_at: datetime | None) -> bool:
        current_only(known_at)
        found = self._one(
            lambda t: f"SELECT 1 AS found FROM {t['subjects']} WHERE subject_id = %s", [key.id.hex]
        )
        return found is not None

    def status(self, key: SubjectKey, as_of: datetime, known_at: datetime | None) -> SubjectStatus:
        """The subject with its period at as_of, in one query."""
        current_only(known_at)
        moment = micros(as_of)
        row = self._one(
            lambda t: (
                f"SELECT s.kind, s.key, s.exists_from, p.valid_to, p.document "
                f"FROM {t['subjects']} s LEFT JOIN {t['periods']} p ON p.subject_id = s.subject_id "
                f"AND p.valid_from = (SELECT MAX(valid_from) FROM {t['periods']} "
                "WHERE subject_id = s.subject_id AND valid_from <= %s) WHERE s.subject_id = %s"
            ),
            [moment, key.id.hex],
        )
        if row is None:
            raise no_record(key)
        subject = SubjectKey(row["kind"], row["key"])
        if row["document"] is not None and (row["valid_to"] is None or row["valid_to"] > moment):
            return SubjectStatus(
                subject,
                as_of,
                None,
                document_from_json(subject.kind, from_json_text(row["document"])),
            )
        state = SUBJECT_CLASSES[subject.kind].state_before_first_fact(subject.key)
        if state is None:
            exists_from = from_micros(row["exists_from"]) if row["exists_from"] else None
            raise not_yet(subject, as_of, exists_from)
        return SubjectStatus(subject, as_of, None, document(state))

    def statuses(
        self, as_of: datetime, known_at: datetime | None, status: Status | None = None
    ) -> list[SubjectStatus]:
        """Every subject's period at as_of (a range query)."""
        found, _ = self._periods(as_of, known_at, status, None, None, 0)
        return found

    def page(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None,
        kind: SubjectKind | None,
        limit: int,
        offset: int,
        *,
        search: str | None = None,
        provider: str | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        """A page of them, cut by the database (with the total, in the same query)."""
        return self._periods(as_of, known_at, status, kind, limit, offset, search, provider)

    def _periods(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None,
        kind: SubjectKind | None,
        limit: int | None,
        offset: int,
        search: str | None = None,
        provider: str | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        current_only(known_at)
        params: list[Any] = [micros(as_of), micros(as_of)]
        where = ""
        if search:
            escaped = "".join("\\" + c if c in "\\%_" else c for c in search.casefold())
            where += " AND s.identity LIKE %s ESCAPE '\\'"
            params.append(f"%{escaped}%")
        if provider:
            where += " AND EXISTS (SELECT 1 FROM {timeline} a WHERE a.subject_id = s.subject_id "
            where += "AND a.provider = %s AND a.retracted_by IS NULL AND a.occurred_at <= %s)"
            params += [provider_identity(provider), micros(as_of)]
        if status is not None:
            where += " AND p.overall = %s"
            params.append(status.value)
        if kind is not None:
            where += " AND s.kind = %s"
            params.append(kind)
        if limit is not None:
            params += [limit, offset]
        order = "{0}kind DESC, {0}identity COLLATE " + self.view.binary_collation

        def query(t: dict[str, str]) -> str:
            # Each subject's last period begun by as_of: one primary-key lookup a subject,
            # whatever the length of the history (not a scan of every period begun by then).
            if self.view.lateral:  # PostgreSQL hashed every period otherwise, documents and all
                source = (
                    f"(SELECT subject_id, kind, key, identity FROM {t['subjects']} "
                    f"ORDER BY {order.format('')}) s CROSS JOIN LATERAL (SELECT q.document, "
                    f"q.overall, q.valid_to FROM {t['periods']} q WHERE q.subject_id = "
                    "s.subject_id AND q.valid_from <= %s ORDER BY q.valid_from DESC LIMIT 1) p"
                )
            else:
                source = (
                    f"{t['subjects']} s JOIN {t['periods']} p ON p.subject_id = s.subject_id "
                    f"AND p.valid_from = (SELECT MAX(q.valid_from) FROM {t['periods']} q "
                    "WHERE q.subject_id = s.subject_id AND q.valid_from <= %s)"
                )
            return (
                # Only a page needs the total beside it (the window costs a third of a query
                # for every subject: all of them are counted by the rows themselves).
                "SELECT p.document, s.kind, s.key"
                + (", COUNT(*) OVER () AS total " if limit is not None else " ")
                + f"FROM {source} WHERE (p.valid_to IS NULL OR p.valid_to > %s)"
                f"{where.replace('{timeline}', t['timeline'])} ORDER BY {order.format('s.')}"
                + (" LIMIT %s OFFSET %s" if limit is not None else "")
            )

        rows = self._all(query, params)
        found = [
            SubjectStatus(
                SubjectKey(row["kind"], row["key"]),
                as_of,
                None,
                document_from_json(row["kind"], from_json_text(row["document"])),
            )
            for row in rows
        ]
        if limit is None:
            total = len(rows)
        elif rows:
            total = int(rows[0]["total"])
        elif offset and limit is not None:  # past the end: count what there is
            total = self._periods(as_of, known_at, status, kind, 1, 0, search, provider)[1]
        else:
            total = 0
        return found, total

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[HistoryEntry]:
        if not self.exists(key, known_at):
            raise no_record(key)
        params: list[Any] = [key.id.hex]
        if limit is not None:
            params += [limit, offset]
        rows = self._all(
            lambda t: (
                "SELECT record, retracted_by, retracted_at, retraction_reason "
                f"FROM {t['timeline']} WHERE subject_id = %s ORDER BY occurred_at, version"
                + (" LIMIT %s OFFSET %s" if limit is not None else "")
            ),
            params,
        )
        return [
            HistoryEntry(
                record_from_json(from_json_text(row["record"])),
                RetractionRef(
                    row["retracted_by"], from_micros(row["retracted_at"]), row["retraction_reason"]
                )
                if row["retracted_by"] is not None
                else None,
            )
            for row in (rows if limit is not None else rows[offset:])
        ]

    def intervals(
        self, keys: Sequence[SubjectKey], known_at: datetime | None
    ) -> dict[SubjectKey, list[Interval]]:
        current_only(known_at)
        by_id = {key.id.hex: key for key in keys}
        found: dict[SubjectKey, list[Interval]] = {key: [] for key in keys}
        for chunk in chunks(list(by_id)):
            rows = self._all(partial(intervals_of, len(chunk)), chunk)
            for r in rows:
                found[by_id[r["subject_id"]]].append(
                    Interval(
                        r["channel"],
                        from_micros(r["valid_from"]),
                        from_micros(r["valid_to"]) if r["valid_to"] is not None else None,
                        status_value(r["status"]),
                        r["event_id"],
                    )
                )
        return {key: sorted(runs, key=lambda i: i.order) for key, runs in found.items()}
