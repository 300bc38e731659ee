"""Errors as RFC 9457 problem details (`application/problem+json`), naming what is at fault."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from adapters.http.templating import templates, wants_page
from adapters.read_models.schema import ReadTooLong
from domain.errors import UnknownSubject
from domain.values import InvalidSubject
from service.application import ConcurrentWrites
from service.query_service import TooLarge

PROBLEM = "application/problem+json"
RETRY_AFTER = "5"  # seconds, on a 503
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; writes add recorded, duplicates, rejected.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
PROBLEM_RESPONSES = {
    "4XX": {
        "description": "A problem with the request: 401/403 credentials, 404 unknown, 409 "
        "conflict with the record, 413 too large, 422 invalid",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
    "5XX": {
        "description": "The store could not answer",
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    },
}


class Problem(Exception):
    """An error answered with a problem document; `extra` holds its extension members."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(request: Request, problem: Problem) -> Response:
    """The problem as RFC 9457 JSON, or as an HTML page for a page route."""
    if wants_page(request):
        return templates.TemplateResponse(
            request,
            "error.html",
            {"problem": problem},
            status_code=problem.status,
            headers=problem.headers,
        )
    body = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extra,
    }
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers
    )


def allowed_methods(request: Request) -> set[str]:
    """The methods the routes of the request's path take (Starlette names one route's)."""
    allowed: set[str] = set()
    for route in leaves(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            allowed |= getattr(route, "methods", None) or set()
    return allowed


def leaves(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes, those of included routers among them (no prefix is used here)."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            yield from leaves(included.routes)
        else:
            yield route


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> Response:
        return problem_response(request, problem)

    @app.exception_handler(UnknownSubject)
    async def on_unknown(request: Request, error: UnknownSubject) -> Response:
        return problem_response(request, Problem(404, "Unknown subject", str(error)))

    @app.exception_handler(InvalidSubject)
    async def on_invalid_subject(request: Request, error: InvalidSubject) -> Response:
        return problem_response(request, Problem(422, "Invalid subject key", str(error)))

    @app.exception_handler(ReadTooLong)
    async def on_read_too_long(request: Request, error: ReadTooLong) -> Response:
        problem = Problem(503, "Read too long", str(error), headers={"Retry-After": RETRY_AFTER})
        return problem_response(request, problem)

    @app.exception_handler(PersistenceError)
    async def on_store(request: Request, error: PersistenceError) -> Response:
        text = str(error).lower()
        if "lock" in text or "busy" in text:
            title, detail = "Store busy", "another writer holds the store's lock (an import?)"
        else:
            title, detail = "Store unavailable", "the store cannot be reached"
        detail += "; nothing was changed: try again shortly"
        problem = Problem(503, title, detail, headers={"Retry-After": RETRY_AFTER})
        return problem_response(request, problem)

    @app.exception_handler(ConcurrentWrites)
    async def on_contention(request: Request, error: ConcurrentWrites) -> Response:
        detail = f"other writers kept changing the same subjects: {error}; nothing was recorded"
        problem = Problem(503, "Write contention", detail, headers={"Retry-After": RETRY_AFTER})
        return problem_response(request, problem)

    @app.exception_handler(TooLarge)
    async def on_too_large(request: Request, error: TooLarge) -> Response:
        return problem_response(request, Problem(413, "Too large", str(error)))

    @app.exception_handler(OverflowError)
    async def on_overflow(request: Request, error: OverflowError) -> Response:
        detail = "a time reached the edge of the calendar (years 1 to 9999): choose another"
        return problem_response(request, Problem(422, "Time out of range", detail))

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, error: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "error": e["msg"]}
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
        return problem_response(request, Problem(422, "Invalid request", detail, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "Error")
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every route of the path says which methods it takes
            headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
        problem = Problem(error.status_code, title, str(error.detail), headers=headers)
        return problem_response(request, problem)  # with its headers: `Allow` on a 405
