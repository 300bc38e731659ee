"""The pages: the status board, a subject's timeline, and the Atom feed of recorded events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html import escape
from importlib.metadata import version as package_version
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from adapters import interchange
from adapters.composition import PACKAGE, Services
from adapters.countries import country_code, country_name
from adapters.http.deps import Reads, Region, Tracker, subject_key
from adapters.http.problems import Problem
from adapters.http.templating import href, mark_page, templates
from adapters.interchange import FORBIDDEN
from adapters.serialize import history_json, record_json, status_json
from adapters.timeline import channel_lanes, fill, timeline_svg
from adapters.wording import words
from domain import Subject
from domain.clock import FIRST, iso, now, shifted
from domain.values import STATUSES, status_value
from projections.documents import OVERALL, FactRecord, readings
from projections.uptime import Day, daily, share_available
from service.application import StoredFact
from service.queries import SubjectStatus
from service.reports import service_spans

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_page)])
DAYS = 90  # the board's bars: this many days up to the moment shown, unless from/to
MAX_DAYS = 731
PER_PAGE = 50  # subjects per page of the board
FILTERS = ("status", "kind", "provider", "q", "region")


def form_instant(request: Request, name: str) -> datetime | None:
    """A time from the page's form: the browser sends `2021-01-12T00:00` without a zone,
    and the form says UTC; anything else is parsed as in the API."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    if len(value) in (16, 19) and value[10:11] == "T" and value[-1].isdigit():
        value += "Z"
    try:
        return interchange.parse_instant(value)
    except ValueError as error:
        raise Problem(422, "Invalid time", f"{name}: {error}", field=name) from None


def moments(
    request: Request, tracker: Services
) -> tuple[datetime | None, datetime | None, dict[str, Any]]:
    """The moment a page shows (`as_of`, `known_at`), the form's values, and the page's
    permalink: the same view with both pinned, `known_at` to when the store's last fact was
    recorded, so that the link gives the same answer whatever is recorded later."""
    as_of, known_at = form_instant(request, "as_of"), form_instant(request, "known_at")
    moment = as_of or now()
    shown = {"as_of": iso(moment), "known_at": iso(known_at) if known_at else None}
    form = {k: (v[:19] if v and request.query_params.get(k) else "") for k, v in shown.items()}
    query = "?" + str(request.query_params) if request.query_params else ""
    pinned = known_at or tracker.app.last_recorded_at() or moment
    permalink = href(request.url.include_query_params(as_of=iso(moment), known_at=iso(pinned)))
    return as_of, known_at, {"form": form, "query": query, "permalink": permalink, **shown}


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def board(request: Request, queries: Reads, tracker: Tracker) -> HTMLResponse:
    as_of, known_at, context = moments(request, tracker)
    moment = as_of or now()
    shown = filters(request)
    window_start, window_end = window(request, moment)
    days = (window_end - window_start).days
    try:
        wanted = min(max(int(request.query_params.get("page", "1")), 1), 2**31)
    except ValueError:
        raise Problem(422, "Invalid page", "page: expected a number", field="page") from None

    def listed(offset: int) -> tuple[list[SubjectStatus], int]:
        return queries.page(
            as_of,
            known_at,
            status_value(shown["status"]) if shown["status"] else None,
            shown["kind"] or None,  # type: ignore[arg-type]  # checked by `filters`
            limit=PER_PAGE,
            offset=offset,
            search=shown["q"] or None,
            provider=shown["provider"] or None,
            region=shown["region"] or None,
        )

    statuses, total = listed((wanted - 1) * PER_PAGE)
    pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
    page = min(wanted, pages)
    if page != wanted:  # past the last page: show the last
        statuses, total = listed((page - 1) * PER_PAGE)
    every = queries.intervals_many([s.subject for s in statuses], known_at, shown["region"] or None)
    rows = []
    for status in statuses:
        document = status.document
        intervals = every[status.subject]
        channels = []
        for name, current in readings(document).items():
            bars = daily(intervals, name, window_end, days)
            share = share_available(intervals, name, window_start, window_end)
            channels.append(
                {
                    "name": name,
                    "status": current,
                    "bars": day_bars(status.subject.key, name, bars),
                    "share": f"{share:.1%}" if share is not None else "n/a",
                }
            )
        since, cause = document.since, document.last_event
        elsewhere: dict[str, list[dict[str, str]]] = {}  # countries with a status of their own
        for code, answer in sorted(document.regions.items()):
            if answer.status != document.status:
                place = {"code": code, "name": country_name(code)}
                elsewhere.setdefault(answer.status.value, []).append(place)
        rows.append(
            {
                "key": status.subject.key,
                "kind": status.subject.kind,
                "name": status.name,
                "channels": channels,
                "since": iso(since)[:10] if since else None,
                "since_full": iso(since) if since else None,
                "cause": cause and {"type": words(cause.type), "provider": cause.provider},
                "countries": [{"status": s, "places": p} for s, p in elsewhere.items()],
            }
        )

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number))

    paging = {
        "page": page,
        "pages": pages,
        "total": total,
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
    }
    axis = {
        "start": iso(window_start)[:10],
        "end": iso(window_end)[:10],
        "days": days,
        "ticks": bar_ticks(window_start, days),
    }
    return templates.TemplateResponse(
        request,
        "board.html",
        {"rows": rows, "paging": paging, "filters": shown, "axis": axis, **context},
    )


def bar_ticks(start: datetime, days: int) -> list[dict[str, str]]:
    """Where the bars' days begin a month (or, for a window of weeks, a week), as a share of
    the bars' width, with the date: the date axis under the bars' heading."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    weekly = days <= 45
    ticks = []
    for n in range(days):
        day = first + timedelta(days=n)
        if (weekly and day.weekday() == 0) or (not weekly and day.day == 1):
            label = f"{day:%m-%d}" if weekly else f"{day:%Y-%m}"
            ticks.append({"at": f"{100 * n / days:.2f}", "label": label})
    return ticks


def filters(request: Request) -> dict[str, str]:
    """The board's filters, as given (checked): status, kind, provider, search, country."""
    shown = {name: request.query_params.get(name, "").strip()[:200] for name in FILTERS}
    if shown["region"]:
        try:
            shown["region"] = country_code(shown["region"])
        except ValueError as error:
            raise Problem(422, "Invalid country", f"region: {error}", field="region") from None
    if shown["status"] and shown["status"] not in STATUSES:
        raise Problem(422, "Invalid status", f"status: expected one of {', '.join(STATUSES)}")
    if shown["kind"] not in ("", "platform", "account"):
        raise Problem(422, "Invalid kind", "kind: expected platform or account", field="kind")
    return shown


def window(request: Request, moment: datetime) -> tuple[datetime, datetime]:
    """The bars' days: `from`/`to` (dates), or the `DAYS` days up to the moment shown."""
    end = form_instant(request, "to") or moment
    start = form_instant(request, "from") or shifted(end, -timedelta(days=DAYS))
    if end <= start:
        raise Problem(422, "Invalid window", "to must be later than from", field="to")
    if end - start > timedelta(days=MAX_DAYS):
        raise Problem(422, "Invalid window", f"at most {MAX_DAYS} days of bars", field="from")
    return start, start + timedelta(days=max((end - start).days, 1))


def day_bars(subject: str, channel: str, days: list[Day]) -> str:
    width = 6
    rects = "".join(
        f'<rect x="{i * width}" y="0" width="{width - 1}" height="20" fill="{fill(d.status)}">'
        f"<title>{d.start:%Y-%m-%d}: {d.status or 'did not exist'}</title></rect>"
        for i, d in enumerate(days)
    )
    label = escape(f"{subject} {channel}: daily status over the last {len(days)} days")
    return (
        f'<svg class="bars" viewBox="0 0 {len(days) * width} 20" role="img" aria-label="{label}" '
        f'preserveAspectRatio="none">{rects}</svg>'
    )


@router.api_route("/subjects/{subject}", methods=["GET", "HEAD"], response_class=HTMLResponse)
def subject_page(
    subject: str, request: Request, queries: Reads, tracker: Tracker, region: Region
) -> HTMLResponse:
    """A subject's status (worldwide, with each country's own answer as a lane of its own,
    or in a `region`), why, its timeline and its facts."""
    as_of, known_at, context = moments(request, tracker)
    key = subject_key(subject)
    status = queries.status(key, as_of, known_at, region)
    history = queries.history(key, known_at, region=region)
    intervals = queries.intervals(key, known_at, region)
    events = [e.record for e in history if not e.retracted]
    moment = as_of or now()
    # Its life: from its first fact (an account counts as active before, from the start).
    born = min((i.valid_from for i in intervals if i.valid_from != FIRST), default=moment)
    start = form_instant(request, "from") or born  # the subject's life, unless a range
    end = form_instant(request, "to") or max(moment, shifted(start, timedelta(days=1)))
    if end <= start:
        raise Problem(422, "Invalid range", "to must be later than from", field="to")
    channels = [str(channel) for channel in readings(status.document)]
    services = service_spans(key, history, start, end)
    own = [] if region else sorted(queries.own_answers([key], start, end, known_at))
    regional = {code: queries.intervals(key, known_at, code) for code in own}
    svg = timeline_svg(
        status.subject.key,
        channel_lanes(channels, intervals, regional),
        events,
        start,
        end,
        services,
        link=lambda event: f"#event-{quote(event.event_id)}",
    )
    changed = sorted(
        {i.valid_from.year for i in intervals if i.channel == OVERALL}
        | {e.occurred_at.year for e in events if e.occurred_at is not None}
    )
    zooms = [
        {
            "label": str(year),
            "href": str(
                request.url.include_query_params(
                    **{"from": f"{year:04d}-01-01", "to": f"{year + 1:04d}-01-01"}
                )
            ),
        }
        for year in changed
        if 1 < year < 9999
    ]
    whole = str(request.url.remove_query_params(["from", "to"]))
    cited = citation(status.name, status.subject.key, context)
    # A cited view (known_at pinned): what the record learned since that changes it.
    later = queries.revised_since(key, moment, known_at, region) if known_at is not None else []
    current = str(request.url.remove_query_params(["known_at"]))
    # Worldwide, a country's own facts change no worldwide value; in a country, they do.
    lasts = last_changes([e for e in events if region or "regions" not in e.fields], moment)
    return templates.TemplateResponse(
        request,
        "subject.html",
        {
            "status": status_json(status),
            "history": [history_json(e) for e in history],
            "timeline": svg,
            "span": (iso(start), iso(end)),
            "zooms": zooms,
            "lasts": lasts,
            "whole": whole,
            "citation": cited,
            "region": region and {"code": region, "name": country_name(region)},
            "revised": [history_json(entry) for entry in later],
            "current": current,
            "countries": [{"code": code, "name": country_name(code)} for code in own],
            **context,
        },
    )


def last_changes(events: list[FactRecord], moment: datetime) -> dict[str, Any]:
    """When the platform's domain, each store listing and each service last changed by
    `moment`: the header's "since when" (as ISO text, keyed as the template reads them)."""
    lasts: dict[str, Any] = {"domain": None, "stores": {}, "services": {}}
    for record in sorted(
        (r for r in events if r.occurred_at is not None and r.occurred_at <= moment),
        key=lambda r: (r.occurred_at, r.position or 0),
    ):
        at = iso(record.occurred_at) if record.occurred_at else None
        fields = record.fields
        if record.type in ("DomainSuspended", "DomainRestored"):
            lasts["domain"] = at
        elif "store" in fields:
            lasts["stores"][fields["store"]] = at
        elif "service" in fields:
            lasts["services"][f"{fields['service']}|{fields['provider']}"] = at
        elif record.type == "PlatformRegistered":
            lasts["domain"] = lasts["domain"] or at
            for store in fields.get("app_stores", []):
                lasts["stores"].setdefault(store, at)
    return lasts


@router.api_route("/subjects/{subject}/citation.json", methods=["GET", "HEAD"])
def subject_citation(subject: str, request: Request, queries: Reads, tracker: Tracker) -> Response:
    """CSL-JSON for reference managers: the subject page's view, its moment pinned."""
    _, _, context = moments(request, tracker)
    status = queries.status(subject_key(subject), form_instant(request, "as_of"))
    page = context["permalink"].replace("/citation.json", "", 1)
    cited = citation(status.name, status.subject.key, context | {"permalink": page})
    return Response(
        json.dumps([cited["csl"]], ensure_ascii=False, indent=2),
        media_type="application/vnd.citationstyles.csl+json",
    )


def citation(name: str, key: str, context: dict[str, Any]) -> dict[str, Any]:
    """A citation of a view: its text, as a journalist pastes it, and CSL-JSON."""
    link = context["permalink"]
    pinned = parse_qs(urlsplit(link).query)["known_at"][0]
    as_of = context["as_of"]
    title = f"{name} ({key}): status as of {as_of[:19]}Z, as recorded by {pinned[:19]}Z"
    accessed = now()
    version = package_version(PACKAGE)
    text = (
        f"deplatforming, “{title}”, dataset version {version}, {link} "
        f"(accessed {accessed:%Y-%m-%d})."
    )
    csl = {
        "id": f"deplatforming-{key}-{as_of[:10]}",
        "type": "dataset",
        "title": title,
        "publisher": "deplatforming",
        "version": version,
        "URL": link,
        "issued": {"date-parts": [[int(part) for part in pinned[:10].split("-")]]},
        "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]},
    }
    parts = urlsplit(link)
    csl_url = parts._replace(path=parts.path.rstrip("/") + "/citation.json").geturl()
    return {"text": text, "csl": csl, "link": link, "csl_url": csl_url}


@router.api_route("/feed.atom", methods=["GET", "HEAD"])
def atom(request: Request, tracker: Tracker) -> Response:
    """The last 100 facts recorded, newest first; a retraction names the fact it retracts."""
    head = tracker.app.head()
    facts, _ = tracker.app.feed(max(head - 200, 0), 200)
    facts = facts[-100:]
    targets = retracted_facts(tracker, facts)
    entries = [
        feed_entry(
            stored.subject.key,
            interchange.export_record(stored),
            targets.get(getattr(stored.fact, "retracts", "")),
        )
        for stored in facts
    ]
    return feed_response(
        request,
        list(reversed(entries)),
        title="deplatforming: recorded events",
        feed_id="urn:deplatforming:feed",
        paths=("feed.atom", ""),
    )


def retracted_facts(tracker: Services, facts: list[StoredFact]) -> dict[str, Subject.Action]:
    """The facts that the retractions among `facts` retract, by event id."""
    wanted = {
        f.fact.retracts: f.subject.id for f in facts if isinstance(f.fact, Subject.EventRetracted)
    }
    subjects = tracker.app.load_many(list(set(wanted.values())))
    found = {}
    for event_id, subject_id in wanted.items():
        fact = subjects[subject_id].facts.get(event_id) if subject_id in subjects else None
        if isinstance(fact, Subject.Action):
            found[event_id] = fact
    return found


@router.api_route("/subjects/{subject}/feed.atom", methods=["GET", "HEAD"])
def subject_atom(subject: str, request: Request, queries: Reads) -> Response:
    """A subject's last 100 facts by recording time, newest first."""
    key = subject_key(subject)
    history = queries.history(key)
    records = sorted((e.record for e in history), key=lambda r: r.position or 0)
    entries = [feed_entry(key.key, record_json(r)) for r in records[-100:]]
    return feed_response(
        request,
        list(reversed(entries)),
        title=f"deplatforming: {key.key}",
        feed_id=f"urn:deplatforming:subject:{key.id}",
        paths=(f"subjects/{quote(key.key)}/feed.atom", f"subjects/{quote(key.key)}"),
    )


def feed_entry(
    subject: str, record: dict[str, Any], retracted: Subject.Action | None = None
) -> dict[str, Any]:
    """An entry of a feed: dated when the record learned the fact (a reader lists it among
    the news of that day), with the time it took effect in its title and summary."""
    occurred = str(record.get("occurred_at", ""))
    provider = record.get("provider")
    if retracted is not None:
        by = retracted.provider if isinstance(retracted, Subject.ProviderAction) else None
        title = (
            f"retracted: {words(retracted.type)} of {subject}"
            + (f" by {by}" if by else "")
            + f" on {iso(retracted.occurred_at)[:10]}"
        )
    else:
        title = f"{words(record['type'])}: {subject}" + (f" ({provider})" if provider else "")
        countries = [country_name(code) for code in record.get("regions", [])]
        title += f" in {', '.join(countries)}" if countries else ""
        title += f", {occurred[:10]}" if occurred else ""
    what = record.get("reason") or record.get("note") or ""
    took = f"took effect {occurred}" if occurred else ""
    return record | {
        "subject": subject,
        "provider": provider,
        "title": title,
        "summary": ": ".join(part for part in (took, what) if part),
    }


def feed_response(
    request: Request,
    entries: list[dict[str, Any]],
    *,
    title: str,
    feed_id: str,
    paths: tuple[str, str],
) -> Response:
    updated = entries[0]["recorded_at"] if entries else iso(datetime(1970, 1, 1, tzinfo=UTC))
    body = templates.get_template("feed.atom").render(
        events=entries,
        updated=updated,
        base=str(request.base_url),
        title=title,
        feed_id=feed_id,
        self_path=paths[0],
        page_path=paths[1],
    )
    # Text the input refuses may be in an older store: none of it reaches the XML.
    return Response(FORBIDDEN.sub("", body), media_type="application/atom+xml")
