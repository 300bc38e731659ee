"""The providers' pages: the index ranking them by the subjects their measures cut off, and
a provider's page (what it did to whom, and how long its measures bound each channel)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from adapters.countries import country_name
from adapters.http.deps import Region, Tracker
from adapters.http.pages import form_instant, moments
from adapters.http.problems import Problem
from adapters.http.templating import mark_page, templates
from adapters.reporting.tables import human_duration
from domain.clock import FIRST, iso, now
from projections.documents import CHANNEL_ORDER
from service.reports import Accountability

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_page)])
PROVIDER_SUBJECTS = 500  # subjects a provider page reads at most


@router.api_route("/providers", methods=["GET", "HEAD"], response_class=HTMLResponse)
def providers_page(request: Request, tracker: Tracker, region: Region) -> HTMLResponse:
    """Providers ranked by the subjects their measures in force cut off over a period (the
    whole record up to `as_of`, unless `from`), and the longest they bound one, with where:
    per channel and country."""
    as_of, known_at, context = moments(request, tracker)
    end = as_of or now()
    start = form_instant(request, "from") or FIRST
    if end <= start:
        raise Problem(422, "Invalid period", "from must be earlier than as_of", field="from")
    tracker.queries.settle()
    ranked = tracker.queries.providers(start, end, known_at, region)
    rows = [
        {
            "provider": standing.provider,
            "subjects": standing.subjects,
            "longest": human_duration(standing.time),
            "ongoing": any(row.ongoing for row in standing.bound),
            "where": where_bound(standing.bound),
        }
        for standing in ranked
    ]
    period = {
        "from": iso(start) if start != FIRST else None,
        "region": region and {"code": region, "name": country_name(region)},
    }
    return templates.TemplateResponse(
        request, "providers.html", {"rows": rows, "period": period, **context}
    )


def where_bound(bound: Sequence[Accountability]) -> list[dict[str, Any]]:
    """Where a provider's measures bound subjects: per country (None: worldwide, first), the
    channels, and the longest it bound one there."""
    places: dict[str | None, tuple[dict[str, None], timedelta]] = {}
    for row in bound:
        channels, longest = places.get(row.region, ({}, timedelta()))
        channels[str(row.channel)] = None
        places[row.region] = (channels, max(longest, row.time))
    return [
        {
            "region": region,
            "country": country_name(region) if region else "worldwide",
            "channels": [c for c in CHANNEL_ORDER if c in channels],
            "longest": human_duration(longest),
        }
        for region, (channels, longest) in sorted(places.items(), key=lambda p: p[0] or "")
    ]


@router.api_route(  # a provider's name may hold "/" (links keep it as it is)
    "/providers/{provider:path}", methods=["GET", "HEAD"], response_class=HTMLResponse
)
def provider_page(
    provider: str, request: Request, tracker: Tracker, region: Region
) -> HTMLResponse:
    """What a provider did to whom and when, and the outage time each action opened, over
    the whole record up to `as_of`."""
    as_of, known_at, context = moments(request, tracker)
    end = as_of or now()
    tracker.queries.settle()
    # Only the subjects it acted on (an indexed query) are read and folded into the report.
    acted_on, acted_total = tracker.queries.page(
        end, known_at, limit=PROVIDER_SUBJECTS, provider=provider[:200]
    )
    subjects = [s.subject.key for s in acted_on]
    report = tracker.report(
        FIRST, end, subjects=subjects, provider=provider[:200], known_at=known_at, region=region
    )
    if not report.providers:
        where = f" in {country_name(region)}" if region else ""
        raise Problem(404, "Unknown provider", f"no action by {provider!r} is recorded{where}")
    actions = [
        {
            "occurred_at": iso(action.record.fields["occurred_at"]),
            "subject": action.record.subject.key,
            "type": action.record.type,
            "reason": action.record.fields.get("reason"),
            "outage": human_duration(action.outage) if action.outage else "",
            "sources": action.record.fields.get("sources", []),
        }
        for action in sorted(report.providers, key=lambda a: a.record.fields["occurred_at"])
    ]
    bound = [
        {
            "subject": a.subject.key,
            "channel": str(a.channel),
            "region": a.region,
            "country": country_name(a.region) if a.region else None,
            "time": human_duration(a.time),
            "seconds": a.time.total_seconds(),
            "since": iso(a.since),
            "ongoing": a.ongoing,
            "measures": a.measures,
        }
        for a in sorted(report.accountability, key=lambda a: (-a.time, a.subject.key))
    ]
    first = min(a["occurred_at"] for a in actions)[:10]
    return templates.TemplateResponse(
        request,
        "provider.html",
        {
            "provider": report.providers[0].provider,
            "actions": actions,
            "subjects": sorted({a["subject"] for a in actions}),
            "bound": bound,
            "first": first,
            "more": acted_total - len(subjects),
            **context,
        },
    )
