"""Reports over the web: files in every format, their JSON Schema, and a page with a form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from adapters.http.deps import KnownAt, Reads, Region, Tracker, instant, subject_key
from adapters.http.problems import Problem
from adapters.http.templating import mark_page, templates
from adapters.reporting import FORMATS, BadReportRequest, render
from adapters.reporting.formats import json_schema
from adapters.reporting.tables import SECTIONS
from domain.values import SubjectKind

router = APIRouter()
MAX_SUBJECTS = 1000  # a report over the web covers at most this many (the CLI: any number)

Start = Annotated[datetime | None, instant("from", "Start of the period (required for a file)")]
End = Annotated[datetime | None, instant("to", "End of the period, excluded")]


@router.get(
    "/reports/schema.json",
    summary="The JSON Schema of a report in JSON",
    response_class=Response,
    responses={
        200: {
            "description": "A JSON Schema (draft 2020-12)",
            "content": {"application/schema+json": {"schema": {"type": "object"}}},
        }
    },
)
def schema() -> Response:
    return JSONResponse(json_schema(), media_type="application/schema+json")


def page_without_format(request: Request) -> None:
    """Without a format, /reports is a page: its errors are answered as a page."""
    if "format" not in request.query_params:
        mark_page(request)


@router.get(
    "/reports",
    summary="A report of a period in a format (json, csv, md, html, parquet); without a "
    "format, the reports page",
    response_class=Response,
    dependencies=[Depends(page_without_format)],
    responses={
        "4XX": {  # the page's errors are pages
            "description": "A problem with the request (a page, without a format)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def reports(
    request: Request,
    queries: Reads,  # settled: the report follows this server's last write
    tracker: Tracker,
    start: Start,
    end: End,
    known_at: KnownAt,
    subject: Annotated[list[str] | None, Query(description="Slugs or account keys.")] = None,
    kind: Annotated[SubjectKind | None, Query(description="platform or account")] = None,
    provider: Annotated[str | None, Query(max_length=200)] = None,
    region: Region = None,
    fmt: Annotated[
        str | None, Query(alias="format", description=f"One of {', '.join(FORMATS)}.")
    ] = None,
    table: Annotated[
        str | None, Query(description=f"With csv or parquet, one of {', '.join(SECTIONS)}.")
    ] = None,
) -> Response:
    subjects = [s for text in subject or [] for s in text.replace(",", " ").split()]
    if fmt is None:
        return page(request, start, end, subjects)
    if start is None or end is None:
        raise Problem(422, "Invalid request", "from and to: both required", field="from")
    if end <= start:
        raise Problem(422, "Invalid request", "to must be later than from", field="to")
    named = [subject_key(s).key for s in subjects]
    made = tracker.report(
        start,
        end,
        subjects=named,
        kind=kind,
        provider=provider or None,
        known_at=known_at,
        region=region,
        most=MAX_SUBJECTS,
    )
    try:
        rendered = render(made, fmt, table)
    except BadReportRequest as error:
        raise Problem(422, "Invalid request", str(error), field="format") from None
    disposition = "inline" if fmt == "html" else "attachment"
    return Response(
        rendered.content,
        media_type=rendered.media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{rendered.filename}"'},
    )


router.add_api_route(  # HEAD too (outside the schema, which would repeat the operation)
    "/reports",
    reports,
    methods=["HEAD"],
    include_in_schema=False,
    response_class=Response,
    dependencies=[Depends(page_without_format)],
)


def page(
    request: Request, start: datetime | None, end: datetime | None, subjects: list[str]
) -> HTMLResponse:
    """The form; with a period, the report itself and a link to each format."""
    context: dict[str, Any] = {
        "form": {
            "from": request.query_params.get("from", ""),
            "to": request.query_params.get("to", ""),
            "subject": " ".join(subjects),
            "known_at": request.query_params.get("known_at", ""),
        },
        "links": [],
    }
    if start is not None and end is not None:
        if end <= start:
            raise Problem(422, "Invalid request", "to must be later than from", field="to")
        for s in subjects:
            subject_key(s)  # an invalid key is refused here, not in the frame
        query = {k: v for k, v in request.query_params.multi_items() if k != "format"}
        context["links"] = [
            (fmt, str(request.url.include_query_params(**dict(query), format=fmt)))
            for fmt in FORMATS
        ]
        context["report"] = str(request.url.include_query_params(format="html"))
    return templates.TemplateResponse(request, "reports.html", context)
