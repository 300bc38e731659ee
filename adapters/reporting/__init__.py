"""Reports in files: one entry point for the CLI, the API and notebooks."""

from __future__ import annotations

import json
from dataclasses import dataclass

from adapters.report_formats import FORMATS, TABLED
from adapters.reporting.tables import SECTIONS, header, tables
from service.reports import Report


class BadReportRequest(ValueError):
    """A format or table the reports do not have."""


@dataclass(frozen=True)
class Rendered:
    content: bytes
    media_type: str
    filename: str


def name_of(report: Report) -> str:
    h = report.header
    return f"deplatforming-report-{h.start:%Y-%m-%d}-{h.end:%Y-%m-%d}"


def render(report: Report, fmt: str, table: str | None = None) -> Rendered:
    if fmt not in FORMATS:
        raise BadReportRequest(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if table is not None and fmt not in TABLED:
        raise BadReportRequest(f"a single table is for {' and '.join(TABLED)}, not {fmt}")
    if table is not None and table not in SECTIONS:
        raise BadReportRequest(f"unknown table {table!r}; expected one of {', '.join(SECTIONS)}")
    # Imported here, not with the package: pyarrow and jinja2 take a few tenths of a second
    # to import, which every command of the CLI would pay (its tables use `tables`).
    from adapters.reporting import formats
    from adapters.reporting.html import page

    base = name_of(report)
    if fmt == "json":
        text = json.dumps(formats.json_document(report), ensure_ascii=False, indent=2) + "\n"
        return Rendered(text.encode(), "application/json", f"{base}.json")
    if fmt == "md":
        return Rendered(formats.markdown(report).encode(), "text/markdown", f"{base}.md")
    if fmt == "html":
        return Rendered(page(report).encode(), "text/html", f"{base}.html")
    every = tables(report)
    if fmt == "csv":
        if table is not None:
            csv = formats.csv_text(every[table]).encode()
            return Rendered(csv, "text/csv", f"{base}-{table}.csv")
        files = {f"{name}.csv": formats.csv_text(t).encode() for name, t in every.items()}
    else:
        if table is not None:
            data = formats.parquet_bytes(every[table])
            return Rendered(data, "application/vnd.apache.parquet", f"{base}-{table}.parquet")
        files = {f"{name}.parquet": formats.parquet_bytes(t) for name, t in every.items()}
    files["header.json"] = json.dumps(header(report), indent=2).encode()
    return Rendered(formats.zipped(files), "application/zip", f"{base}-{fmt}.zip")


__all__ = ["FORMATS", "BadReportRequest", "Rendered", "name_of", "render"]
