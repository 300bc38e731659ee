"""The JSON API: statuses, histories, the event feed and changes; writes with a bearer token."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters import interchange, json_input
from adapters.access import FAILED_CHECKS, Allowance, Tokens
from adapters.composition import Services
from adapters.http.deps import (
    MAX_POSITION,
    AsOf,
    KnownAt,
    Limit,
    Offset,
    Reads,
    Region,
    StatusFilter,
    Tracker,
    instant,
    subject_key,
)
from adapters.http.problems import RETRY_AFTER, Problem
from adapters.http.templating import href
from adapters.serialize import (
    change_json,
    history_json,
    interval_json,
    progress_json,
    status_json,
    status_text,
)
from domain.clock import iso, now
from domain.values import Status, SubjectKind
from service.application import ConcurrentWrites
from service.query_service import QueryService
from service.recording import NewFact, Outcome

router = APIRouter()
MAX_STATUSES = 10_000  # subjects /status answers at once


# Reads ------------------------------------------------------------------------------------


@router.get(
    "/status",
    summary="Every subject that exists at as_of, as known at known_at, a page at a time "
    '(`X-Total-Count` says how many; `Link: rel="next"` names the next page)',
)
def all_statuses(
    request: Request,
    queries: Reads,
    as_of: AsOf,
    known_at: KnownAt,
    status: StatusFilter,
    region: Region,
    limit: Annotated[int, Query(ge=1, le=MAX_STATUSES, description="Page size.")] = MAX_STATUSES,
    offset: Offset = 0,
) -> Response:
    """Worldwide, each subject's document as stored is passed through, not decoded."""
    found, total = queries.page(as_of, known_at, status, limit=limit, offset=offset, region=region)
    body = "[" + ",".join(map(status_text, found)) + "]"
    headers = {"X-Total-Count": str(total)}
    if offset + limit < total:
        following = request.url.include_query_params(offset=offset + limit)
        headers["Link"] = f'<{href(following)}>; rel="next"'
    return Response(body, media_type="application/json", headers=headers)


def listing(
    queries: QueryService,
    kind: SubjectKind,
    as_of: datetime | None,
    known_at: datetime | None,
    status: Status | None,
    limit: int,
    offset: int,
    search: str | None,
    provider: str | None,
    region: str | None,
) -> dict[str, Any]:
    found, total = queries.page(
        as_of,
        known_at,
        status,
        kind,
        limit=limit,
        offset=offset,
        search=search,
        provider=provider,
        region=region,
    )
    return {
        "items": [status_json(s) for s in found],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def add_listing(kind: SubjectKind) -> None:
    @router.get(f"/{kind}s", name=f"{kind}s", summary=f"{kind.title()}s with their status, paged")
    def kind_listing(
        queries: Reads,
        as_of: AsOf,
        known_at: KnownAt,
        status: StatusFilter,
        region: Region,
        limit: Limit = 100,
        offset: Offset = 0,
        q: Annotated[
            str | None, Query(max_length=200, description="Only keys holding this text.")
        ] = None,
        provider: Annotated[
            str | None,
            Query(max_length=200, description="Only subjects this provider acted on by as_of."),
        ] = None,
    ) -> dict[str, Any]:
        return listing(queries, kind, as_of, known_at, status, limit, offset, q, provider, region)


add_listing("platform")
add_listing("account")


@router.get("/subjects/{subject}/status", summary="A subject's status (as the CLI's --json)")
def subject_status(
    subject: str, queries: Reads, as_of: AsOf, known_at: KnownAt, region: Region
) -> dict[str, Any]:
    """With `known_at` (a cited answer), `revised_since` lists what the record learned since
    that changes it (empty: it stands)."""
    key = subject_key(subject)
    found = status_json(queries.status(key, as_of, known_at, region))
    if known_at is not None:
        later = queries.revised_since(key, as_of or known_at, known_at, region)
        found["revised_since"] = [history_json(entry) for entry in later]
    return found


@router.get("/subjects/{subject}/history", summary="A subject's events in valid-time order")
def subject_history(
    subject: str,
    queries: Reads,
    known_at: KnownAt,
    region: Region,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    found = queries.history(subject_key(subject), known_at, limit, offset, region)
    return [history_json(e) for e in found]


@router.get("/subjects/{subject}/intervals", summary="Per channel, the periods of one status")
def subject_intervals(
    subject: str, queries: Reads, known_at: KnownAt, region: Region
) -> list[dict[str, Any]]:
    return [interval_json(i) for i in queries.intervals(subject_key(subject), known_at, region)]


@router.get("/events", summary="The global feed, in recording order, with a cursor")
def events(
    tracker: Tracker,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="The cursor: the last position seen.")
    ] = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    facts, cursor = tracker.app.feed(after, limit)
    return {"events": [interchange.export_record(f) for f in facts], "next": cursor}


@router.get(
    "/changes",
    summary="What happened in (from, to]: every status change, in order, and every fact",
)
def changes(
    queries: Reads,
    start: Annotated[datetime | None, instant("from", "The earlier moment (required)")],
    end: Annotated[datetime | None, instant("to", "The later moment (now)")],
    region: Region,
    net: Annotated[
        bool, Query(description="Only channels whose status differs at the two ends.")
    ] = False,
    limit: Limit = 100,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="The cursor: a page's `next`.")
    ] = 0,
) -> dict[str, Any]:
    if start is None:
        raise Problem(422, "Invalid request", "from: required", field="from")
    end = end or now()
    if end < start:
        raise Problem(422, "Invalid request", "to must not be before from", field="to")
    found = queries.changes(start, end, net=net, region=region, limit=limit, after=after)
    return {
        "from": iso(start),
        "to": iso(end),
        "region": region,
        "subjects": [change_json(c) for c in found.subjects],
        "next": found.next,
    }


@router.get("/livez", summary="The process answers (no store work): for liveness probes")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/healthz",
    summary="Store reachable, projection following: 200, or 503 naming the part that is down",
)
def healthz(tracker: Tracker, request: Request) -> JSONResponse:
    runner = tracker.runner
    store: dict[str, Any] = {"status": "ok"}
    reads: dict[str, Any] = {"status": "ok"}
    try:
        progress = runner.report()
    except PersistenceError as error:
        store = {"status": "unreachable", "error": str(error)}
        progress = runner.remembered()
    if store["status"] == "ok":
        try:  # as reads are: bounded by their deadline (a lock held on a read model...)
            tracker.queries.read_models.probe()
        except PersistenceError as error:
            reads = {"status": "unavailable", "error": str(error)}
    projection = progress_json(progress)
    expected = request.app.state.follow_projections  # a follower of this process's own
    if progress.failing_since is not None:
        projection["status"] = "failing"
    elif expected and not progress.following:
        projection["status"] = "stopped"
    else:
        projection["status"] = "ok"
    body: dict[str, Any] = {
        "status": "ok",
        "head": progress.head,
        "store": store,
        "reads": reads,
        "projection": projection,
        "read_only": not request.app.state.tokens,
    }
    down = [part for part in ("store", "reads", "projection") if body[part]["status"] != "ok"]
    if not down:
        return JSONResponse(body)
    detail = "; ".join(f"{part}: {body[part]['status']}" for part in down)
    del body["status"]  # the problem document's own member holds 503
    raise Problem(503, "Unhealthy", detail, headers={"Retry-After": RETRY_AFTER}, **body)


# Writes -----------------------------------------------------------------------------------


def writer(request: Request) -> str:
    """The name of the token a write is made with (`Authorization: Bearer <token>`),
    within its rate; without tokens the service is read-only."""
    tokens: Tokens = request.app.state.tokens
    if not tokens:
        raise Problem(
            403,
            "Read-only service",
            "no API token is set (DEPLATFORM_API_TOKEN or DEPLATFORM_API_TOKENS): writes are off",
        )
    client = request.client.host if request.client else ""
    failed: Allowance = request.app.state.failed_checks
    if wait := failed.wait(client):  # each check costs a scrypt: a guesser waits, no one else
        raise Problem(
            429,
            "Too many failed token checks",
            f"this client presented {FAILED_CHECKS:g} wrong tokens within a minute; try again "
            f"in {wait:g} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    name = tokens.name_of(credentials.strip()) if scheme.lower() == "bearer" else None
    if name is None:
        if credentials:
            failed.take(client)
        raise Problem(
            401,
            "Unauthorized",
            "writes need the header 'Authorization: Bearer <token>' with one of the service's "
            "tokens",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limit_writes(request.app.state.write_rate, name, 0)
    return name


def limit_writes(rate: Allowance, name: str, events: int) -> None:
    """Refuses (429) a write of `events` events beyond the token's rate (0: whether any is
    left), spending them otherwise."""
    wait = rate.take(name, events) if events else rate.wait(name)
    if wait:
        raise Problem(
            429,
            "Too many writes",
            f"the token {name!r} may write {rate.per_minute:g} events a minute; try again in "
            f"{wait:g} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )


Writer = Depends(writer)


async def body(request: Request) -> Any:
    limit = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Payload too large", f"request bodies are limited to {limit} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise Problem(413, "Payload too large", f"request bodies are limited to {limit} bytes")
    try:
        return json_input.decode(raw)
    except UnicodeDecodeError as error:
        raise Problem(422, "Malformed JSON", f"the body is not UTF-8: {error.reason}") from None
    except json_input.InvalidInput as error:
        raise Problem(422, "Malformed JSON", str(error)) from None


def answer(outcome: Outcome, parse_errors: list[tuple[int, str]]) -> JSONResponse:
    rejected = sorted(
        [*parse_errors, *((r.label or 0, r.error) for r in outcome.rejected)], key=lambda x: x[0]
    )
    summary: dict[str, Any] = {
        "recorded": outcome.recorded_count if outcome.committed else 0,
        "duplicates": outcome.duplicate_count,
        "rejected": [{"index": index, "error": error} for index, error in rejected],
        "event_ids": outcome.recorded if outcome.committed else [],
        "position": outcome.position,  # pass as X-Min-Position to read this write elsewhere
    }
    detail = "; ".join(f"#{i}: {e}" for i, e in rejected)
    if parse_errors:
        raise Problem(422, "Invalid events", detail, **summary)
    if outcome.rejected and all(r.not_found for r in outcome.rejected):
        raise Problem(404, "Unknown event", detail, **summary)
    if outcome.rejected:
        raise Problem(409, "Events conflict with the record", detail, **summary)
    return JSONResponse(summary, status_code=201 if summary["recorded"] else 200)


def record(tracker: Services, items: list[Any], recorded_by: str, rate: Allowance) -> JSONResponse:
    """Records the items (within the token's rate, spent only if the store took the write)."""
    limit_writes(rate, recorded_by, len(items))
    try:
        return recorded(tracker, items, recorded_by)
    except (PersistenceError, ConcurrentWrites):
        rate.give_back(recorded_by, len(items))
        raise


def recorded(tracker: Services, items: list[Any], recorded_by: str) -> JSONResponse:
    facts: list[NewFact] = []
    parse_errors: list[tuple[int, str]] = []
    for index, item in enumerate(items, start=1):
        try:
            facts.append(interchange.to_new_fact(item, index))
        except json_input.InvalidInput as error:
            parse_errors.append((index, str(error)))
    outcome = tracker.record(facts, commit=not parse_errors, recorded_by=recorded_by)
    return answer(outcome, parse_errors)


EVENT_SCHEMA = interchange.EVENT_INPUT.json_schema(ref_template="#/components/schemas/{model}")
EVENTS_BODY = {  # the body is read by `body` (for its size limit), so its schema is given here
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {k: v for k, v in EVENT_SCHEMA.items() if k != "$defs"},
                        {
                            "type": "array",
                            "items": {k: v for k, v in EVENT_SCHEMA.items() if k != "$defs"},
                        },
                    ]
                }
            }
        },
    }
}


@router.post(
    "/events",
    dependencies=[Writer],
    status_code=201,
    summary="Record one event or a JSON array of events, atomically (same rules as import)",
    openapi_extra=EVENTS_BODY,
)
def post_events(
    request: Request,
    tracker: Tracker,
    by: Annotated[str, Writer],
    payload: Annotated[Any, Depends(body)],
) -> JSONResponse:
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise Problem(422, "Invalid events", "the array is empty")
    return record(tracker, items, by, request.app.state.write_rate)


class Retraction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=4000)]


RETRACTION_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Retraction.model_json_schema()}},
    }
}


@router.post(
    "/events/{event_id}/retract",
    dependencies=[Writer],  # before the body is read: see `body`
    status_code=201,
    summary="Retract an event: it no longer counts from now on",
    openapi_extra=RETRACTION_BODY,
)
def retract(
    event_id: str,
    request: Request,
    tracker: Tracker,
    by: Annotated[str, Writer],
    payload: Annotated[Any, Depends(body)],
) -> JSONResponse:
    try:
        retraction = Retraction.model_validate(payload)
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise Problem(422, "Invalid request", detail) from None
    retracting = {"type": "EventRetracted", "retracts": event_id, "reason": retraction.reason}
    return record(tracker, [retracting], by, request.app.state.write_rate)
