"""A report as tidy tables: one row per observation, typed columns (text, number, boolean,
instant, duration), the same for every format (JSON, CSV, Parquet, Markdown, HTML)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from domain.clock import iso
from projections.documents import FactRecord
from service.reports import Outage, Report

Kind = Literal["text", "list", "number", "bool", "time", "duration"]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: list[tuple[str, Kind]]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        names = [name for name, _ in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]


FACT_COLUMNS: list[tuple[str, Kind]] = [
    ("occurred_at", "time"),
    ("subject", "text"),
    ("kind", "text"),
    ("type", "text"),
    ("reason", "text"),
    ("sources", "list"),
    ("event_id", "text"),
]


def sources(record: FactRecord) -> list[str] | None:
    return list(record.fields.get("sources", [])) or None


def fact_values(record: FactRecord) -> tuple[Any, ...]:
    return (
        record.occurred_at,
        record.subject.key,
        record.subject.kind,
        record.type,
        record.fields.get("reason"),
        sources(record),
        record.event_id,
    )


def event_columns(prefix: str) -> list[tuple[str, Kind]]:
    return [
        (f"{prefix}_event_id", "text"),
        (f"{prefix}_type", "text"),
        (f"{prefix}_provider", "text"),
        (f"{prefix}_reason", "text"),
        (f"{prefix}_sources", "list"),
    ]


def event_values(record: FactRecord | None) -> tuple[Any, ...]:
    if record is None:
        return (None, None, None, None, None)
    return (
        record.event_id,
        record.type,
        record.fields.get("provider"),
        record.fields.get("reason"),
        sources(record),
    )


def ending(outage: Outage) -> str:
    if outage.ongoing:
        return "ongoing"
    if outage.ran_out:
        return "ran out"
    return outage.closed_by.type if outage.closed_by else "unknown"


def availability(report: Report) -> Table:
    return Table(
        "availability",
        "Per subject and channel: the time it existed in the period, the time it was "
        "available (online; an account active) and that share, and the time before it existed.",
        [
            ("subject", "text"),
            ("kind", "text"),
            ("channel", "text"),
            ("existed", "duration"),
            ("available", "duration"),
            ("share_available", "number"),
            ("before_existence", "duration"),
        ],
        [
            (
                c.subject.key,
                c.subject.kind,
                str(c.channel),
                c.existed,
                c.available,
                c.share_available,
                c.before_existence,
            )
            for c in report.channels
        ],
    )


def time_in_status(report: Report) -> Table:
    return Table(
        "time_in_status",
        "Per subject, channel and status: the time spent in that status within the period.",
        [
            ("subject", "text"),
            ("kind", "text"),
            ("channel", "text"),
            ("status", "text"),
            ("time", "duration"),
        ],
        [
            (c.subject.key, c.subject.kind, str(c.channel), status.value, spent)
            for c in report.channels
            for status, spent in c.by_status.items()
        ],
    )


def outages(report: Report) -> Table:
    return Table(
        "outages",
        "Every run of one status in which a channel was not available, with its own start "
        "and end (empty while it lasts), its time within the period, and the events that "
        "opened and closed it.",
        [
            ("subject", "text"),
            ("kind", "text"),
            ("channel", "text"),
            ("status", "text"),
            ("start", "time"),
            ("end", "time"),
            ("ended", "text"),
            ("time_in_period", "duration"),
            *event_columns("opened_by"),
            *event_columns("closed_by"),
        ],
        [
            (
                o.subject.key,
                o.subject.kind,
                str(o.channel),
                o.status.value,
                o.start,
                o.end,
                ending(o),
                o.duration,
                *event_values(o.opened_by),
                *event_values(o.closed_by),
            )
            for o in report.outages
        ],
    )


def providers(report: Report) -> Table:
    return Table(
        "provider_actions",
        "Every action a provider took in the period, on whom and when, with the outage time "
        "it opened on the subject's overall status within the period.",
        [
            ("provider", "text"),
            ("outage_opened", "duration"),
            *FACT_COLUMNS,
        ],
        [(a.provider, a.outage, *fact_values(a.record)) for a in report.providers],
    )


def accountability(report: Report) -> Table:
    return Table(
        "accountability",
        "Per provider, subject, channel and country (empty: the worldwide answer): the time "
        "within the period during which a measure of that provider kept the channel below "
        "online (an account's `overall` below active), and how many of its measures that "
        "was. Measures in force at once each count the full time: each provider's was needed.",
        [
            ("provider", "text"),
            ("subject", "text"),
            ("kind", "text"),
            ("channel", "text"),
            ("region", "text"),
            ("seconds", "number"),
            ("measures", "number"),
            ("since", "time"),
            ("ongoing", "bool"),
        ],
        [
            (
                a.provider,
                a.subject.key,
                a.subject.kind,
                a.channel,
                a.region,
                a.time.total_seconds(),
                a.measures,
                a.since,
                a.ongoing,
            )
            for a in report.accountability
        ],
    )


def services(report: Report) -> Table:
    return Table(
        "services",
        "Supporting services (payments, cdn, ddos_protection, email, ...) a subject lost and "
        "regained (or not yet), overlapping the period, with the time lost within it.",
        [
            ("subject", "text"),
            ("provider", "text"),
            ("service", "text"),
            ("lost_at", "time"),
            ("regained_at", "time"),
            ("time_in_period", "duration"),
            ("lost_event_id", "text"),
            ("regained_event_id", "text"),
        ],
        [
            (
                s.subject.key,
                s.provider,
                s.service,
                s.lost_at,
                s.regained_at,
                s.duration,
                s.lost_by.event_id,
                s.regained_by.event_id if s.regained_by else None,
            )
            for s in report.services
        ],
    )


def accounts(report: Report) -> Table:
    return Table(
        "accounts",
        "Accounts' suspensions and bans overlapping the period: how they ended (reinstated, "
        "ran out, replaced by another status, or ongoing) and their time within it.",
        [
            ("subject", "text"),
            ("status", "text"),
            ("start", "time"),
            ("end", "time"),
            ("ended", "text"),
            ("time_in_period", "duration"),
            *event_columns("opened_by"),
        ],
        [
            (
                o.subject.key,
                o.status.value,
                o.start,
                o.end,
                ending(o),
                o.duration,
                *event_values(o.opened_by),
            )
            for o in report.accounts
        ],
    )


def events(report: Report) -> Table:
    return Table(
        "events",
        "The facts that occurred in the period, in valid-time order, with their sources.",
        [
            *FACT_COLUMNS,
            ("provider", "text"),
            ("recorded_at", "time"),
            ("position", "number"),
        ],
        [
            (
                *fact_values(e.record),
                e.record.fields.get("provider"),
                e.record.recorded_at,
                e.record.position,
            )
            for e in report.events
        ],
    )


SECTIONS: dict[str, Callable[[Report], Table]] = {
    "availability": availability,
    "time_in_status": time_in_status,
    "outages": outages,
    "provider_actions": providers,
    "accountability": accountability,
    "services": services,
    "accounts": accounts,
    "events": events,
}


def tables(report: Report) -> dict[str, Table]:
    return {name: section(report) for name, section in SECTIONS.items()}


def header(report: Report) -> dict[str, Any]:
    h = report.header
    return {
        "from": iso(h.start),
        "to": iso(h.end),
        "subjects": [key.key for key in h.selection.subjects] or None,
        "kind": h.selection.kind,
        "provider": h.selection.provider,
        "region": h.selection.region,
        "known_at": iso(h.known_at),
        "position": h.position,
        "tool": "deplatforming",
        "version": h.version,
        "made_at": iso(h.made_at),
        "covers": [key.key for key in report.subjects],
    }


def iso_duration(span: timedelta) -> str:
    """ISO 8601: `P5DT16H1M`, `PT0S`; fractions of a second kept."""
    micros = span // timedelta(microseconds=1)
    days, rest = divmod(micros, 86_400_000_000)
    hours, rest = divmod(rest, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = rest / 1_000_000
    clock = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M")) if value) + (
        f"{seconds:g}S" if seconds else ""
    )
    text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def human_duration(span: timedelta) -> str:
    """`5 d 16 h 1 min`; seconds only under an hour."""
    total = int(span.total_seconds())
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    if total < 3_600:
        parts.append((seconds, "s"))
    text = " ".join(f"{value} {unit}" for value, unit in parts if value)
    return text or "0 s"


def plain(value: Any, kind: Kind) -> Any:
    """A cell as JSON and CSV write it: instants in ISO 8601 UTC."""
    if value is None:
        return None
    if kind == "time":
        assert isinstance(value, datetime)
        return iso(value)
    return value
