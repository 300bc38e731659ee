"""The countries' pages: the index of countries where some subject's answer is its own, a
country's page (what is cut off there, why, and a timeline) and its feed."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from adapters.countries import country_code, country_name
from adapters.http.deps import Reads, Tracker
from adapters.http.pages import feed_entry, feed_response, moments
from adapters.http.problems import Problem
from adapters.http.templating import mark_page, templates
from adapters.serialize import measure_json, record_json
from adapters.timeline import timeline_svg
from domain.clock import now, shifted
from projections.documents import OVERALL
from service.queries import sort_key
from service.query_service import QueryService

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_page)])
TIMELINE_FACTS = 500  # the last facts naming a country that its timeline marks, at most
SPAN_DAYS = 90  # a country's timeline shows this many days up to the moment, at least


@router.api_route("/regions", methods=["GET", "HEAD"], response_class=HTMLResponse)
def regions_page(request: Request, queries: Reads, tracker: Tracker) -> HTMLResponse:
    """The countries where some subject's answer differs from the worldwide one at `as_of`."""
    as_of, known_at, context = moments(request, tracker)
    counts: dict[str, int] = {}
    for status in queries.statuses(as_of, known_at):
        for region in status.document.regions:
            counts[region] = counts.get(region, 0) + 1
    rows = [
        {"code": code, "name": country_name(code), "subjects": n}
        for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    return templates.TemplateResponse(request, "regions.html", {"rows": rows, **context})


@router.api_route("/regions/{region}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def region_page(region: str, request: Request, queries: Reads, tracker: Tracker) -> HTMLResponse:
    """What is blocked, delisted, withdrawn or withheld in a country at `as_of`, and why."""
    try:
        code = country_code(region)
    except ValueError as error:
        raise Problem(404, "Unknown country", str(error)) from None
    as_of, known_at, context = moments(request, tracker)
    rows = [
        {
            "subject": status.subject.key,
            "status": status.status.value,
            "own": code in worldwide.document.regions,
            "measures": [measure_json(measure) for measure in status.document.measures],
        }
        for worldwide in queries.statuses(as_of, known_at)
        if not (status := worldwide.in_region(code)).document.status.available
    ]
    return templates.TemplateResponse(
        request,
        "region.html",
        {
            "code": code,
            "name": country_name(code),
            "rows": rows,
            "timeline": region_timeline(queries, code, as_of or now(), known_at),
            **context,
        },
    )


def region_timeline(
    queries: QueryService, code: str, end: datetime, known_at: datetime | None
) -> str | None:
    """The subjects of the last facts naming a country, each a bar of its status there, up to
    `end`, with those facts marked (None: no fact names it)."""
    facts = [
        f
        for f in queries.naming(code, known_at, TIMELINE_FACTS)
        if f.occurred_at is not None and f.occurred_at <= end
    ]
    if not facts:
        return None
    keys = sorted({f.subject for f in facts}, key=sort_key)
    runs = queries.intervals_many(keys, known_at, code)
    first = min(f.occurred_at for f in facts if f.occurred_at is not None)
    start = min(shifted(first, -(end - first) / 20), shifted(end, -timedelta(days=SPAN_DAYS)))
    bars = [(key.key, [r for r in runs[key] if r.channel == OVERALL]) for key in keys]
    return timeline_svg(f"every subject in {country_name(code)}", bars, facts, start, end)


@router.api_route("/regions/{region}/feed.atom", methods=["GET", "HEAD"])
def region_atom(region: str, request: Request, queries: Reads) -> Response:
    """The last 100 facts recorded that name a country, newest first."""
    try:
        code = country_code(region)
    except ValueError as error:
        raise Problem(404, "Unknown country", str(error)) from None
    entries = [feed_entry(r.subject.key, record_json(r)) for r in queries.naming(code, None, 100)]
    return feed_response(
        request,
        entries,
        title=f"deplatforming: {country_name(code)}",
        feed_id=f"urn:deplatforming:region:{code}",
        paths=(f"regions/{code}/feed.atom", f"regions/{code}"),
    )
