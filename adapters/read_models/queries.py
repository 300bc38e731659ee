"""The `Queries` port answered from the status read models, at any `as_of` and `known_at`:
both are predicates on the rows' stored ranges (valid time and transaction time), so a
status is one primary-key lookup, every subject at T one range query, whatever K is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from eventsourcing.persistence import PersistenceError

from adapters.batching import chunks
from adapters.read_models.schema import Generations, own_in, status_in
from adapters.read_models.writer import maybe_micros
from adapters.serialize import from_json_text, record_from_json, stored_document
from domain import SUBJECT_CLASSES
from domain.clock import from_micros, micros
from domain.values import (
    STATUSES,
    Status,
    SubjectKey,
    SubjectKind,
    provider_identity,
    status_value,
)
from projections.documents import (
    FactRecord,
    HistoryEntry,
    RetractionRef,
    document,
    in_region,
    readings,
)
from projections.status import Interval, Stretch, overlaid
from service.queries import (
    Period,
    StoredDocument,
    SubjectStatus,
    change_order,
    no_record,
    not_yet,
    nothing_known,
    sort_key,
)

Row = dict[str, Any]


def believed(alias: str, known_at: int | None) -> tuple[str, list[int]]:
    """The condition that a row of periods or runs was the store's belief at `known_at`
    (None: is now), with its parameters."""
    if known_at is None:
        return f"{alias}.known_to IS NULL", []
    return (
        f"{alias}.known_from <= %s AND ({alias}.known_to IS NULL OR {alias}.known_to > %s)",
        [known_at, known_at],
    )


def recorded(alias: str, known_at: int | None) -> tuple[str, list[int]]:
    """The condition that a fact of the timeline counted at `known_at`: recorded by then and
    not retracted by then (None: counts now)."""
    if known_at is None:
        return f"{alias}.retracted_by IS NULL", []
    return (
        f"{alias}.recorded_at <= %s AND ({alias}.retracted_at IS NULL "
        f"OR {alias}.retracted_at > %s)",
        [known_at, known_at],
    )


# The statuses that count as available: a period in one, with no country of its own, has no
# measure in force anywhere.
AVAILABLE = tuple(s.value for s in STATUSES if s.available)

STATUS_VALUES = {s.value: s for s in STATUSES}  # a dict lookup: listings read thousands
DECODERS = {kind: partial(stored_document, kind) for kind in SUBJECT_CLASSES}


def periods_of(count: int, known: str, t: dict[str, str]) -> str:
    marks = ", ".join(["%s"] * count)
    return (
        f"SELECT p.subject_id, p.valid_from, p.valid_to, p.document FROM {t['periods']} p "
        f"WHERE p.subject_id IN ({marks}) AND {known} AND p.valid_from < %s "
        "AND (p.valid_to IS NULL OR p.valid_to > %s) "
        f"AND (p.overall NOT IN ({', '.join(repr(s) for s in AVAILABLE)}) OR p.regions <> '') "
        "ORDER BY p.subject_id, p.valid_from"
    )


def acted_by(
    provider: str, known_at: int | None, until: int, since: int | None = None
) -> tuple[str, list[Any]]:
    """The condition that a fact `a` of the timeline is an action of `provider` that counted
    at `known_at` and occurred in `[since, until]` (no `since`: from the start): what "the
    provider acted on this subject" means, for listings and reports alike."""
    counts, counted = recorded("a", known_at)
    condition = f"a.provider = %s AND {counts} AND a.occurred_at <= %s"
    params: list[Any] = [provider_identity(provider), *counted, until]
    if since is not None:
        condition += " AND a.occurred_at >= %s"
        params.append(since)
    return condition, params


def intervals_of(count: int, known: str, t: dict[str, str]) -> str:
    marks = ", ".join(["%s"] * count)
    return f"SELECT * FROM {t['intervals']} r WHERE subject_id IN ({marks}) AND {known}"


def stretches_of(count: int, known: tuple[str, str], t: dict[str, str]) -> str:
    """The periods in which a country's answer is its own (`own` 1), and those that begin
    where one ends and are not (`own` 0, without their document): a primary-key lookup
    each."""
    marks = ", ".join(["%s"] * count)
    own = f"p.subject_id IN ({marks}) AND {known[0]} AND p.regions LIKE %s"
    return (
        "SELECT p.subject_id, p.valid_from, p.valid_to, p.event_id, p.document, 1 AS own "
        f"FROM {t['periods']} p WHERE {own} UNION ALL "
        "SELECT q.subject_id, q.valid_from, q.valid_to, q.event_id, NULL, 0 "
        f"FROM {t['periods']} p JOIN {t['periods']} q ON q.subject_id = p.subject_id "
        f"AND q.valid_from = p.valid_to AND {known[1]} WHERE {own} AND q.regions NOT LIKE %s"
    )


class ReadModelQueries:
    def __init__(self, view: Generations, deadline: float | None = None) -> None:
        self.view = view
        self.deadline = deadline  # seconds a statement may run (None: as long as it takes)

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
        with self.view.reading(self.deadline) as c:
            self.view.execute(c, query, params)
            rows = c.fetchall()
            # PostgreSQL's rows are dicts already; SQLite's are made dicts (for `get`).
            return rows if not rows or type(rows[0]) is dict else [dict(row) for row in rows]

    def changed(self, start: datetime, end: datetime) -> list[SubjectKey]:
        rows = self._all(
            lambda t: (
                f"SELECT DISTINCT s.kind, s.key, s.identity FROM {t['periods']} p "
                f"JOIN {t['subjects']} s ON s.subject_id = p.subject_id "
                "WHERE p.known_to IS NULL AND p.valid_from > %s AND p.valid_from <= %s"
            ),
            [micros(start), micros(end)],
        )
        return sorted((SubjectKey(r["kind"], r["key"]) for r in rows), key=change_order)

    def probe(self) -> None:
        self._all(lambda t: f"SELECT 1 FROM {t['periods']} LIMIT 1", [])

    def _subject(self, key: SubjectKey) -> Row | None:
        return self._one(
            lambda t: f"SELECT key, known_from FROM {t['subjects']} WHERE subject_id = %s",
            [key.id.hex],
        )

    def exists(self, key: SubjectKey, known_at: datetime | None) -> bool:
        found = self._subject(key)
        return found is not None and (known_at is None or found["known_from"] <= micros(known_at))

    def status(self, key: SubjectKey, as_of: datetime, known_at: datetime | None) -> SubjectStatus:
        """The subject with its period at as_of as believed at known_at, in one query."""
        moment, known = micros(as_of), maybe_micros(known_at)
        inner, inner_params = believed("q", known)
        outer, outer_params = believed("p", known)
        row = self._one(
            lambda t: (
                "SELECT s.kind, s.key, s.exists_from, s.known_from, p.valid_to, p.document "
                f"FROM {t['subjects']} s LEFT JOIN {t['periods']} p ON p.subject_id = s.subject_id "
                f"AND p.valid_from = (SELECT q.valid_from FROM {t['periods']} q "
                f"WHERE q.subject_id = s.subject_id AND q.valid_from <= %s AND {inner} "
                f"ORDER BY q.valid_from DESC LIMIT 1) AND {outer} WHERE s.subject_id = %s"
            ),
            [moment, *inner_params, *outer_params, key.id.hex],
        )
        if row is None:
            raise no_record(key)
        subject = SubjectKey(row["kind"], row["key"])
        if known_at is not None and row["known_from"] > known:
            raise nothing_known(subject, known_at)
        if row["document"] is not None and (row["valid_to"] is None or row["valid_to"] > moment):
            return SubjectStatus(
                subject,
                as_of,
                known_at,
                stored_document(subject.kind, row["document"]),
            )
        state = SUBJECT_CLASSES[subject.kind].state_before_first_fact(subject.key)
        if state is None:
            begins = row["exists_from"] if known_at is None else self._exists_from(key, known)
            raise not_yet(subject, as_of, from_micros(begins) if begins is not None else None)
        return SubjectStatus(subject, as_of, known_at, document(state))

    def _exists_from(self, key: SubjectKey, known_at: int | None) -> int | None:
        """When the subject begins to exist as known at `known_at`: its first fact counting
        then."""
        counts, params = recorded("a", known_at)
        found = self._one(
            lambda t: (
                f"SELECT MIN(a.occurred_at) AS begins FROM {t['timeline']} a "
                f"WHERE a.subject_id = %s AND {counts}"
            ),
            [key.id.hex, *params],
        )
        return found["begins"] if found is not None else None

    def statuses(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None = None,
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> list[SubjectStatus]:
        """Every subject's period at as_of (a range query)."""
        found, _ = self._periods(as_of, known_at, status, None, None, 0, region=region, stamp=stamp)
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
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        """A page of them, cut by the database (with the total, in the same query)."""
        return self._periods(
            as_of, known_at, status, kind, limit, offset, search, provider, region, stamp
        )

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
        region: str | None = None,
        stamp: datetime | None = None,
    ) -> tuple[list[SubjectStatus], int]:
        rows, total = self._rows(
            as_of, known_at, status, kind, limit, offset, search, provider, region
        )
        said = stamp or known_at
        found = [
            SubjectStatus(
                SubjectKey(row["kind"], row["key"]),
                as_of,
                said,
                StoredDocument(
                    STATUS_VALUES[row["overall"]], row["document"], DECODERS[row["kind"]]
                ),
            ).in_region(region)
            for row in rows
        ]
        return found, total

    def _rows(
        self,
        as_of: datetime,
        known_at: datetime | None,
        status: Status | None,
        kind: SubjectKind | None,
        limit: int | None,
        offset: int,
        search: str | None = None,
        provider: str | None = None,
        region: str | None = None,
    ) -> tuple[list[Row], int]:
        """The rows of each subject's period at as_of (with the total, for a page)."""
        known = maybe_micros(known_at)
        inner, inner_params = believed("q", known)
        params: list[Any] = [micros(as_of), *inner_params, micros(as_of)]
        where = ""
        if search:
            escaped = "".join("\\" + c if c in "\\%_" else c for c in search.casefold())
            where += " AND s.identity LIKE %s ESCAPE '\\'"
            params.append(f"%{escaped}%")
        if provider:
            acted, acted_params = acted_by(provider, known, micros(as_of))
            where += " AND EXISTS (SELECT 1 FROM {timeline} a WHERE a.subject_id = s.subject_id "
            where += f"AND {acted})"
            params += acted_params
        if status is not None and region is not None:  # its own status there, or elsewhere's
            where += " AND (p.regions LIKE %s OR (p.regions NOT LIKE %s AND p.overall = %s))"
            params += [status_in(region, str(status)), own_in(region), str(status)]
        elif status is not None:
            where += " AND p.overall = %s"
            params.append(str(status))
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
                    f"q.overall, q.regions, q.valid_to FROM {t['periods']} q WHERE q.subject_id = "
                    f"s.subject_id AND q.valid_from <= %s AND {inner} "
                    "ORDER BY q.valid_from DESC LIMIT 1) p"
                )
            else:  # SQLite: subjects first (CROSS JOIN keeps the order), each period by rowid
                source = (  # (joined on its key, the planner scanned every period instead)
                    f"{t['subjects']} s CROSS JOIN {t['periods']} p ON p.rowid = (SELECT "
                    f"q.rowid FROM {t['periods']} q WHERE q.subject_id = s.subject_id AND "
                    f"q.valid_from <= %s AND {inner} ORDER BY q.valid_from DESC LIMIT 1)"
                )
            return (
                # Only a page needs the total beside it (the window costs a third of a query
                # for every subject: all of them are counted by the rows themselves).
                "SELECT p.document, p.overall, s.kind, s.key"
                + (", COUNT(*) OVER () AS total " if limit is not None else " ")
                + f"FROM {source} WHERE (p.valid_to IS NULL OR p.valid_to > %s)"
                f"{where.replace('{timeline}', t['timeline'])} ORDER BY {order.format('s.')}"
                + (" LIMIT %s OFFSET %s" if limit is not None else "")
            )

        rows = self._all(query, params)
        if limit is None:
            total = len(rows)
        elif rows:
            total = int(rows[0]["total"])
        elif offset and limit is not None:  # past the end: count what there is
            total = self._rows(as_of, known_at, status, kind, 1, 0, search, provider, region)[1]
        else:
            total = 0
        return rows, total

    def history(
        self,
        key: SubjectKey,
        known_at: datetime | None,
        limit: int | None = None,
        offset: int = 0,
        region: str | None = None,
        between: tuple[datetime, datetime] | None = None,
    ) -> list[HistoryEntry]:
        found = self._subject(key)
        if found is None:
            raise no_record(key)
        known = maybe_micros(known_at)
        if known_at is not None and found["known_from"] > known:
            raise nothing_known(SubjectKey(key.kind, found["key"]), known_at)
        params: list[Any] = [key.id.hex]
        if known is not None:
            params.append(known)
        if region is not None:
            params.append(f"% {region} %")
        if between is not None:  # a range of the primary key: a hot subject is not read whole
            params += [micros(between[0]), micros(between[1])]
        if limit is not None:
            params += [limit, offset]
        rows = self._all(
            lambda t: (
                "SELECT record, retracted_by, retracted_at, retraction_reason "
                f"FROM {t['timeline']} WHERE subject_id = %s"
                + (" AND recorded_at <= %s" if known is not None else "")
                + (" AND (regions IS NULL OR regions LIKE %s)" if region is not None else "")
                + (" AND occurred_at > %s AND occurred_at <= %s" if between is not None else "")
                + " ORDER BY occurred_at, version"
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
                and (known is None or row["retracted_at"] <= known)
                else None,
            )
            for row in (rows if limit is not None else rows[offset:])
        ]

    def naming(self, region: str, known_at: datetime | None, limit: int) -> list[FactRecord]:
        counts, params = recorded("a", maybe_micros(known_at))
        rows = self._all(
            lambda t: (
                f"SELECT a.record FROM {t['timeline']} a WHERE a.regions LIKE %s AND {counts} "
                "ORDER BY a.recorded_at DESC, a.subject_id DESC, a.version DESC LIMIT %s"
            ),
            [f"% {region} %", *params, limit],
        )
        return [record_from_json(from_json_text(row["record"])) for row in rows]

    def acted_on(
        self, provider: str, start: datetime, end: datetime, known_at: datetime | None
    ) -> list[SubjectKey]:
        acted, params = acted_by(
            provider, maybe_micros(known_at), micros(end) - 1, since=micros(start)
        )
        rows = self._all(
            lambda t: (
                f"SELECT DISTINCT s.kind, s.key, s.identity FROM {t['timeline']} a "
                f"JOIN {t['subjects']} s ON s.subject_id = a.subject_id WHERE {acted}"
            ),
            params,
        )
        return sorted((SubjectKey(r["kind"], r["key"]) for r in rows), key=sort_key)

    def periods(
        self, keys: Sequence[SubjectKey], start: datetime, end: datetime, known_at: datetime | None
    ) -> dict[SubjectKey, list[Period]]:
        known, known_params = believed("p", maybe_micros(known_at))
        by_id = {key.id.hex: key for key in keys}
        found: dict[SubjectKey, list[Period]] = {key: [] for key in keys}
        for chunk in chunks(list(by_id)):
            params = [*chunk, *known_params, micros(end), micros(start)]
            for r in self._all(partial(periods_of, len(chunk), known), params):
                key = by_id[r["subject_id"]]
                found[key].append(
                    Period(
                        from_micros(r["valid_from"]),
                        from_micros(r["valid_to"]) if r["valid_to"] is not None else None,
                        stored_document(key.kind, r["document"]),
                    )
                )
        return found

    def intervals(
        self, keys: Sequence[SubjectKey], known_at: datetime | None, region: str | None = None
    ) -> dict[SubjectKey, list[Interval]]:
        known, known_params = believed("r", maybe_micros(known_at))
        by_id = {key.id.hex: key for key in keys}
        found: dict[SubjectKey, list[Interval]] = {key: [] for key in keys}
        for chunk in chunks(list(by_id)):
            rows = self._all(partial(intervals_of, len(chunk), known), [*chunk, *known_params])
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
        world = {key: sorted(runs, key=lambda i: i.order) for key, runs in found.items()}
        if region is None:
            return world
        stretches = self._stretches(by_id, maybe_micros(known_at), region)
        return {key: overlaid(runs, *stretches[key]) for key, runs in world.items()}

    def _stretches(
        self, by_id: dict[str, SubjectKey], known_at: int | None, region: str
    ) -> dict[SubjectKey, tuple[list[Stretch], dict[datetime, str | None]]]:
        """Per subject, the periods in which `region`'s answer is its own, as stretches of
        its readings, and the facts that began the periods right after them."""
        (p, p_params), (q, q_params) = believed("p", known_at), believed("q", known_at)
        found: dict[SubjectKey, tuple[list[Stretch], dict[datetime, str | None]]] = {
            key: ([], {}) for key in by_id.values()
        }
        for chunk in chunks(list(by_id)):
            own = [*chunk, *p_params, own_in(region)]
            rows = self._all(
                partial(stretches_of, len(chunk), (p, q)), [*own, *q_params, *own, own_in(region)]
            )
            for r in sorted(rows, key=lambda r: r["valid_from"]):
                key = by_id[r["subject_id"]]
                stretches, resumed = found[key]
                begins = from_micros(r["valid_from"])
                if not r["own"]:
                    resumed[begins] = r["event_id"]
                    continue
                there = in_region(stored_document(key.kind, r["document"]), region)
                ends = from_micros(r["valid_to"]) if r["valid_to"] is not None else None
                stretches.append(Stretch(begins, ends, readings(there), r["event_id"]))
        return found
