"""A report as one standalone HTML page (no external assets, printable to PDF): each
subject's timeline over the period, with its services as lanes, then the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from adapters.reporting.formats import human
from adapters.reporting.tables import header, tables
from adapters.timeline import channel_lanes, timeline_svg
from domain.values import SubjectKey
from projections.documents import FactRecord
from service.reports import Report, ServiceSpan

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["html"])
)


def figures(report: Report) -> list[dict[str, Any]]:
    start, end = report.header.start, report.header.end
    events: dict[SubjectKey, list[FactRecord]] = {}  # by subject, read once (not per subject)
    for entry in report.events:
        events.setdefault(entry.record.subject, []).append(entry.record)
    services: dict[SubjectKey, list[ServiceSpan]] = {}
    for span in report.services:
        services.setdefault(span.subject, []).append(span)
    found = []
    for key in report.subjects:
        intervals = report.intervals.get(key, [])
        channels = list(dict.fromkeys(str(i.channel) for i in intervals))
        bars = channel_lanes(channels, intervals)
        svg = timeline_svg(key.key, bars, events.get(key, []), start, end, services.get(key, []))
        found.append({"subject": key.key, "svg": svg})
    return found


def page(report: Report) -> str:
    rendered = []
    for name, table in tables(report).items():
        rows = []
        for row in table.rows:
            cells = []
            for (column, kind), value in zip(table.columns, row, strict=True):
                if kind == "list" and column.endswith("sources") and value:
                    cells.append({"links": value})
                else:
                    cells.append({"text": human(value, column, kind), "time": kind == "time"})
            rows.append(cells)
        rendered.append(
            {
                "title": name.replace("_", " ").capitalize(),
                "description": table.description,
                "columns": [column for column, _ in table.columns],
                "rows": rows,
            }
        )
    template = templates.get_template("report.html")
    return template.render(header=header(report), figures=figures(report), tables=rendered)
