"""A report in the formats analysts use: JSON (with its JSON Schema), CSV, Parquet (typed
timestamps and durations), Markdown. HTML is in `reporting.html`."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from adapters.reporting.tables import (
    SECTIONS,
    Kind,
    Table,
    header,
    human_duration,
    iso_duration,
    plain,
    tables,
)
from domain.clock import EPOCH
from service.reports import Header, Report, Selection

# Flat columns: a duration becomes exact seconds and an ISO 8601 duration.
FLAT_SCHEMA: dict[str, dict[str, Any]] = {
    "text": {"type": ["string", "null"]},
    "list": {"type": ["array", "null"], "items": {"type": "string"}},
    "number": {"type": ["number", "null"]},
    "bool": {"type": ["boolean", "null"]},
    "time": {"type": ["string", "null"], "format": "date-time"},
}


def flat_columns(table: Table) -> list[tuple[str, Kind]]:
    found: list[tuple[str, Kind]] = []
    for name, kind in table.columns:
        if kind == "duration":
            found += [(f"{name}_seconds", "number"), (f"{name}_iso", "text")]
        else:
            found.append((name, kind))
    return found


def flat_rows(table: Table) -> list[dict[str, Any]]:
    rows = []
    for row in table.rows:
        flat: dict[str, Any] = {}
        for (name, kind), value in zip(table.columns, row, strict=True):
            if kind == "duration":
                flat[f"{name}_seconds"] = value.total_seconds() if value is not None else None
                flat[f"{name}_iso"] = iso_duration(value) if value is not None else None
            else:
                flat[name] = plain(value, kind)
        rows.append(flat)
    return rows


# JSON --------------------------------------------------------------------------------------


def json_document(report: Report) -> dict[str, Any]:
    return {
        "header": header(report),
        "tables": {name: flat_rows(table) for name, table in tables(report).items()},
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `json_document`, from the tables' columns."""
    table_schemas = {}
    for name, columns in table_columns().items():
        table_schemas[name] = {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {column: FLAT_SCHEMA[kind] for column, kind in columns},
                "required": [column for column, _ in columns],
                "additionalProperties": False,
            },
        }
    nullable_text = {"type": ["string", "null"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deplatforming report",
        "type": "object",
        "required": ["header", "tables"],
        "properties": {
            "header": {
                "type": "object",
                "properties": {
                    "from": FLAT_SCHEMA["time"],
                    "to": FLAT_SCHEMA["time"],
                    "subjects": {"type": ["array", "null"], "items": {"type": "string"}},
                    "kind": nullable_text,
                    "provider": nullable_text,
                    "region": nullable_text,
                    "known_at": FLAT_SCHEMA["time"],
                    "position": {"type": "integer"},
                    "tool": {"type": "string"},
                    "version": {"type": "string"},
                    "made_at": FLAT_SCHEMA["time"],
                    "covers": {"type": "array", "items": {"type": "string"}},
                },
            },
            "tables": {
                "type": "object",
                "properties": table_schemas,
                "required": list(table_schemas),
            },
        },
    }


def table_columns() -> dict[str, list[tuple[str, Kind]]]:
    """Each table's flat columns (read off an empty report: they do not depend on rows)."""
    header = Header(EPOCH, EPOCH, Selection(), EPOCH, 0, "", EPOCH)
    empty = Report(header, [], [], [], [], [], [])
    return {name: flat_columns(section(empty)) for name, section in SECTIONS.items()}


# CSV ---------------------------------------------------------------------------------------


# A text cell a spreadsheet would take for a formula (OWASP's rule for CSV injection).
FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell as CSV holds it: text a spreadsheet would evaluate is prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, list):  # sources: URLs, one space apart
        value = " ".join(value)
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value
    return value


def csv_text(table: Table) -> str:
    """RFC 4180: CRLF between records, and any field holding a comma, a quote, CR or LF
    quoted (a bare CR in a reason stays inside its field)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _ in flat_columns(table)])
    for row in flat_rows(table):
        writer.writerow([csv_cell(v) for v in row.values()])
    return out.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


# Parquet -----------------------------------------------------------------------------------

ARROW_TYPES = {
    "text": pa.string(),
    "list": pa.list_(pa.string()),
    "number": pa.float64(),
    "bool": pa.bool_(),
    "time": pa.timestamp("us", tz="UTC"),
}


def arrow_table(table: Table) -> pa.Table:
    """The table with typed columns: UTC timestamps to the microsecond, lists of sources, and
    each duration as exact seconds (`*_seconds`, as every tool reads a float) and an ISO 8601
    duration (`*_iso`), as in CSV and JSON."""
    fields, arrays = [], []
    for n, (name, kind) in enumerate(table.columns):
        values = [row[n] for row in table.rows]
        if kind == "duration":
            fields += [(f"{name}_seconds", pa.float64()), (f"{name}_iso", pa.string())]
            arrays += [
                pa.array([v.total_seconds() if v is not None else None for v in values]),
                pa.array([iso_duration(v) if v is not None else None for v in values], pa.string()),
            ]
        else:
            fields.append((name, ARROW_TYPES[kind]))
            arrays.append(pa.array(values, type=ARROW_TYPES[kind]))
    return pa.table(arrays, schema=pa.schema(fields))


def arrow_tables(report: Report) -> dict[str, pa.Table]:
    return {name: arrow_table(table) for name, table in tables(report).items()}


def parquet_bytes(table: Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(arrow_table(table), out)
    return out.getvalue()


# Markdown ----------------------------------------------------------------------------------


# What gives text a meaning in Markdown or HTML inside a table cell: escaped, so that a
# reason holding `<script>` or `[x](javascript:...)` reads as the text it is.
URL_SAFE = ":/?#@!$&'()*+,;=%~-._"  # all but what could end an autolink (`<`, `>`, spaces)
MARKUP = re.compile(r"([\\`*_\[\]<>|&~!])")


def human(value: Any, name: str, kind: Kind) -> str:
    """A cell for people to read: durations as `5 d 16 h 1 min`, shares as percentages,
    lists joined by spaces."""
    if value is None:
        return ""
    if kind == "duration":
        return human_duration(value)
    if name.startswith("share"):
        return f"{value:.1%}"
    if kind == "list":
        return " ".join(value)
    return str(plain(value, kind))


def cell(value: Any, name: str, kind: Kind) -> str:
    """A Markdown cell: `human`'s text escaped, and the sources (http(s) URLs, checked at
    input) as links."""
    if kind == "list" and name.endswith("sources"):
        return " ".join(f"<{quote(url, safe=URL_SAFE)}>" for url in value or [])
    return escaped(human(value, name, kind))


def escaped(text: str) -> str:
    """Text as Markdown shows it literally, on one line."""
    return MARKUP.sub(r"\\\1", " ".join(text.splitlines()))


def markdown(report: Report) -> str:
    h = header(report)
    lines = [
        f"# Deplatforming report, {h['from']} to {h['to']}",
        "",
        f"Subjects: {escaped(', '.join(h['covers'])) or 'none'}"
        + (f", as seen in {h['region']}" if h["region"] else "")
        + f". As the record stood at {h['known_at']} "
        f"(store position {h['position']}); made by deplatforming {h['version']} at "
        f"{h['made_at']}.",
    ]
    for name, table in tables(report).items():
        lines += ["", f"## {name.replace('_', ' ').capitalize()}", "", table.description, ""]
        if not table.rows:
            lines.append("None in this period.")
            continue
        lines.append("| " + " | ".join(n for n, _ in table.columns) + " |")
        lines.append("|" + " --- |" * len(table.columns))
        for row in table.rows:
            cells = (cell(v, n, k) for (n, k), v in zip(table.columns, row, strict=True))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
