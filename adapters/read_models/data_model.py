"""What each read-model table and column holds, in words, declared once: the reference page
(`docs/data-model.md`, made by `scripts/data_model.py`) and the Datasette metadata that
`deplatform publish` writes are made from it, so that analysts can query a store with SQL."""

from __future__ import annotations

from typing import Any

TIMES = (
    "Instants are microseconds since 1970-01-01T00:00:00Z (UTC); `valid_*` is valid time (when "
    "it held in the world), `known_*` transaction time (when the store believed it), each range "
    "half-open, a null end open. At any `known_at` K, the rows with `known_from <= K` and "
    "(`known_to` null or `> K`) are what the store believed then."
)

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "periods": (
        "A subject's status over a stretch of valid time (one period a fact, or where a timed "
        "suspension runs out), as believed over a stretch of transaction time.",
        {
            "subject_id": "the subject (`subjects.subject_id`)",
            "valid_from": "when the period begins (valid time)",
            "known_from": "when the store began to believe this row",
            "valid_to": "when the period ends (null: it goes on)",
            "known_to": "when the store stopped believing it (null: it still does)",
            "overall": "the worldwide overall status: online, partial, offline; active, "
            "withheld, suspended, banned",
            "regions": "each country whose answer is its own, with its status there "
            "(` BR:offline NG:partial `; empty: none)",
            "event_id": "the last fact at `valid_from` (null where a suspension ran out)",
            "document": "the status as JSON: channels, hosts, domain, store listings, "
            "services, the measures in force, and each country's own answer",
        },
    ),
    "intervals": (
        "Worldwide runs of one status per channel (overall, web, ios, android): when it went "
        "offline and for how long. A country's runs are derived when read.",
        {
            "subject_id": "the subject",
            "channel": "overall, web, ios or android (accounts: overall)",
            "valid_from": "when the run begins",
            "known_from": "when the store began to believe this row",
            "valid_to": "when it ends (null: it goes on)",
            "known_to": "when the store stopped believing it (null: it still does)",
            "status": "the status throughout the run",
            "event_id": "the fact that began it (null where a suspension ran out)",
        },
    ),
    "subjects": (
        "Every platform and account the store has a record of.",
        {
            "subject_id": "its id (hex UUID5 of its kind and identity)",
            "kind": "platform or account",
            "key": "its key as first spelled (`parler`, `twitter:realDonaldTrump`)",
            "identity": "its key as compared (an account's after NFKC and case folding)",
            "exists_from": "when it begins to exist (a platform's registration; null: every "
            "fact retracted)",
            "known_from": "when its first fact was recorded",
        },
    ),
    "timeline": (
        "Every fact, in valid-time order per subject, with its recording and its retraction.",
        {
            "subject_id": "the subject",
            "occurred_at": "when the fact took effect (valid time)",
            "version": "its place in the subject's recording order",
            "event_id": "the fact's id",
            "record": "the fact as JSON (its type, fields, sources, reason, note)",
            "recorded_at": "when the store recorded it",
            "retracted_by": "the retraction's event id (null: in force)",
            "retracted_at": "when the retraction was recorded",
            "retraction_reason": "why it was retracted",
            "provider": "who acted, as matched (case and spaces folded)",
            "regions": "the countries the fact names (` BR NG `; null: worldwide)",
        },
    ),
}


def datasette_metadata(generation: int, database: str) -> dict[str, Any]:
    """Datasette's metadata for a store's read models (`datasette STORE.db -m FILE`)."""
    return {
        "title": "deplatforming",
        "description": TIMES,
        "databases": {
            database: {
                "tables": {
                    f"rm{generation}_{name}": {"description": what, "columns": columns}
                    for name, (what, columns) in TABLES.items()
                }
            }
        },
    }


def reference() -> str:
    """The reference page of the read models, in Markdown."""
    lines = [
        "# The data model",
        "",
        "A store holds the facts (the event store: `stored_events`, `event_ids` and "
        "`tracking` on SQLite; `deplatforming_events`, `deplatforming_event_ids` and "
        "`deplatforming_tracking` on PostgreSQL), the checkpoints writes read subjects from "
        "(`timelines` and `checkpoints`; on PostgreSQL `deplatforming_timelines` and "
        "`deplatforming_checkpoints`: the service's own, described in `docs/architecture.md`) "
        "and the read models every query answers from, described here. The read models of "
        "generation g are `rm<g>_<table>`; the table `read_models` says which generation "
        "readers use (`status`) and which layout it has (`layout`), and keeps the runner's "
        "last error. Open a SQLite store with Datasette and the metadata `deplatform publish` "
        "writes "
        "(`datasette deplatform.db -m dataset/datasette.json`), or with DuckDB.",
        "",
        TIMES,
    ]
    for name, (what, columns) in TABLES.items():
        lines += ["", f"## `rm<g>_{name}`", "", what, "", "| column | holds |", "| --- | --- |"]
        lines += [f"| `{column}` | {holds} |" for column, holds in columns.items()]
    return "\n".join(lines) + "\n"
