"""A report as a Frictionless Data Package, for researchers to deposit and cite: a
`datapackage.json` with a Table Schema for each resource (types, units, keys), each table as
CSV (and as Parquet beside it), the `known_at` it is pinned to, a `CITATION.cff` and a README
that states the rules in brief."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.reporting.formats import csv_text, flat_columns, parquet_bytes
from adapters.reporting.tables import Kind, Table, header, tables
from service.reports import Report

# The report's tables a package holds, with their primary keys.
RESOURCES: dict[str, list[str]] = {
    "events": ["event_id"],
    "availability": ["subject", "channel"],
    "time_in_status": ["subject", "channel", "status"],
    "outages": ["subject", "channel", "start"],
    "accountability": ["provider", "subject", "channel", "region"],
}
FIELD_TYPES: dict[Kind, dict[str, Any]] = {
    "text": {"type": "string"},
    "list": {"type": "string", "description": "URLs, one space apart"},
    "number": {"type": "number"},
    "bool": {"type": "boolean"},
    "time": {"type": "datetime", "format": "any"},
}
UNITS = {"_seconds": "seconds", "seconds": "seconds"}
RULES = """\
The rules in brief. A subject is a platform (from its registration on) or an account (active
until its first fact). Facts are recorded, never changed: a correction is a retraction, and a
fact counts only from when it was recorded (`recorded_at`) until retracted. A platform is
online, partial or offline on each channel (web, ios, android): the web channel is the worst
of its hosting (offline when every host terminated it), its domain, its withdrawal and access
blocks; an app channel is also partial while delisted from its store. Its overall status is
the worst of its channels. An account is active, withheld (in a country), suspended or
banned. A country can have an answer of its own (a block, a delisting from its storefronts, a
withdrawal from its market, a withheld account); `region` names it (empty: the worldwide
answer). Accountability counts, for each provider, the time its measures in force kept a
channel below online; measures in force at once each count the whole time.
"""


def publish(
    report: Report, directory: Path, version: str, store: dict[str, Any] | None = None
) -> list[Path]:
    """Writes the package into `directory` (made if missing), and `store` (the Datasette
    metadata of the store it comes from) as `datasette.json`; returns the files written."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    every = tables(report)
    head = header(report)
    whole = report.header.start.year <= 1  # every fact is in the package: keys resolve
    written, resources = [], []
    for name, key in RESOURCES.items():
        table = every[name]
        csv_path, parquet_path = data / f"{name}.csv", data / f"{name}.parquet"
        csv_path.write_text(csv_text(table), encoding="utf-8", newline="")
        parquet_path.write_bytes(parquet_bytes(table))
        written += [csv_path, parquet_path]
        resources.append(resource(table, key, whole))
    package = {
        "profile": "tabular-data-package",
        "name": "deplatforming",
        "title": f"Deplatforming, {head['from'][:10]} to {head['to'][:10]}",
        "description": "Who cut which platform or account off, when, through which channel, "
        "in which countries, and for how long; as the record stood at known_at.",
        "version": version,
        "created": head["made_at"],
        "known_at": head["known_at"],
        "period": {"from": head["from"], "to": head["to"]},
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0"}],
        "resources": resources,
    }
    files = {
        directory / "datapackage.json": json.dumps(package, indent=2, ensure_ascii=False) + "\n",
        directory / "CITATION.cff": citation(head, version),
        directory / "README.md": readme(head, resources),
    }
    if store is not None:
        files[directory / "datasette.json"] = json.dumps(store, indent=2) + "\n"
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return [*written, *files]


def resource(table: Table, key: list[str], whole: bool) -> dict[str, Any]:
    fields = []
    for name, kind in flat_columns(table):
        field = {"name": name, **FIELD_TYPES[kind]}
        if name.endswith("_iso"):
            field = {"name": name, "type": "duration"}
        unit = next((u for suffix, u in UNITS.items() if name.endswith(suffix)), None)
        if unit:
            field["description"] = f"in {unit}"
        fields.append(field)
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""], "primaryKey": key}
    if whole and table.name == "outages":  # what opened an outage is one of the events
        schema["foreignKeys"] = [
            {
                "fields": "opened_by_event_id",
                "reference": {"resource": "events", "fields": "event_id"},
            }
        ]
    return {
        "name": table.name,
        "path": f"data/{table.name}.csv",
        "parquet": f"data/{table.name}.parquet",
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "description": table.description,
        "schema": schema,
    }


def citation(head: dict[str, Any], version: str) -> str:
    return (
        "cff-version: 1.2.0\n"
        "message: If you use this dataset, please cite it as below.\n"
        "type: dataset\n"
        f'title: "Deplatforming, {head["from"][:10]} to {head["to"][:10]}, as recorded by '
        f'{head["known_at"][:19]}Z"\n'
        "authors:\n"
        "  - name: deplatforming\n"
        f'version: "{version}"\n'
        f"date-released: {head['known_at'][:10]}\n"
        "license: CC-BY-4.0\n"
    )


def readme(head: dict[str, Any], resources: list[dict[str, Any]]) -> str:
    lines = [
        f"# Deplatforming, {head['from'][:10]} to {head['to'][:10]}",
        "",
        f"As the record stood at {head['known_at']} (store position {head['position']}); made "
        f"by deplatforming {head['version']} at {head['made_at']}. Every time is UTC; every "
        "duration is given in seconds (`*_seconds`) and as ISO 8601 (`*_iso`).",
        "",
        "## Tables",
        "",
        *(f"- `{r['path']}` (and `{r['parquet']}`): {r['description']}" for r in resources),
        "",
        "## Rules",
        "",
        RULES,
    ]
    return "\n".join(lines)
