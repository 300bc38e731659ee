"""The HTTP service: the JSON API and the pages, on one store, with the projections kept up
to date in the same process unless separate workers run them."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.middleware.gzip import GZipMiddleware
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.access import FAILED_CHECKS, Allowance, Tokens
from adapters.bounds import ABANDONED, DEADLINE
from adapters.composition import open_services
from adapters.config import REQUEST_DEADLINE, REQUEST_TIMEOUT, redacted
from adapters.http import problems
from adapters.http.api import EVENT_SCHEMA
from adapters.http.api import router as api
from adapters.http.pages import router as pages
from adapters.http.provider_pages import router as provider_pages
from adapters.http.region_pages import router as region_pages
from adapters.http.reports import router as reports
from adapters.http.templating import href
from domain.clock import iso
from service.query_service import READ_WAIT

MAX_BODY_BYTES = 1024 * 1024  # documented in the README and the OpenAPI description
STOP_WAIT = 2.0  # seconds the server waits for the runner's page in progress when stopping
# Pages and reports use only their own inline styles and SVG: nothing from elsewhere, no script.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
# The API docs (Swagger UI, ReDoc) run their own script and styles, from this server only.
DOCS_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'self'; base-uri 'none'"
)

log = structlog.get_logger("deplatform.http")


class Bounds:
    """Bounds each request's work (`adapters.bounds`): it must be done by its deadline, and
    is marked abandoned once its client goes away, so that the store stops working for it at
    once (the server is idle again), rather than at the deadline."""

    def __init__(self, app: ASGIApp, deadline: float | None = None) -> None:
        self.app = app
        self.deadline = deadline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        abandoned = threading.Event()
        token = ABANDONED.set(abandoned)
        ends = DEADLINE.set(time.monotonic() + self.deadline if self.deadline else None)
        messages: asyncio.Queue[Message] = asyncio.Queue()

        async def listen() -> None:  # the body, then (if it comes) the client leaving
            while True:
                message = await receive()
                await messages.put(message)
                if message["type"] == "http.disconnect":
                    abandoned.set()
                    return

        async def relay() -> Message:
            message = await messages.get()
            if message["type"] == "http.disconnect":  # told again to whoever asks again
                messages.put_nowait(message)
            return message

        listener = asyncio.ensure_future(listen())
        try:
            await self.app(scope, relay, send)
        finally:
            listener.cancel()
            ABANDONED.reset(token)
            DEADLINE.reset(ends)


class PublicURL:
    """Takes every request as made to the service's public URL (its scheme and host), so
    that the links it answers with never come from a Host header a client chose."""

    def __init__(self, app: ASGIApp, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"public URL {url!r}: expected http(s)://host[:port]")
        self.app, self.scheme, self.host = app, parts.scheme, parts.netloc.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope = dict(scope, scheme=self.scheme, headers=[(b"host", self.host), *headers])
        await self.app(scope, receive, send)


def create_app(
    database_url: str,
    *,
    api_token: str | None = None,
    tokens: Tokens | None = None,
    write_rate: float | None = None,
    follow_projections: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
    read_wait: float = READ_WAIT,
    public_url: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    read_deadline: float = REQUEST_DEADLINE,
) -> FastAPI:
    """The service on a store. Links it gives are built from `public_url` if given, else from
    the request's Host, refused (400) unless in `allowed_hosts` (None: any, as in tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Its runner projects; a request waits briefly for the store, then is answered 503.
        services = open_services(
            database_url,
            embedded=False,
            timeout=REQUEST_TIMEOUT,
            read_wait=read_wait,
            read_deadline=read_deadline,
        )
        app.state.services = services
        stop = threading.Event()
        follower = None
        if follow_projections:  # beside the queries, never inside them
            follower = threading.Thread(
                target=services.runner.follow, args=(stop,), name="projections", daemon=True
            )
            follower.start()
        log.info(
            "serving",
            store=redacted(database_url),
            writers=[c.name for c in app.state.tokens.credentials],
        )
        try:
            yield
        finally:
            stop.set()  # the runner stops after the page it is applying
            if follower is not None:
                follower.join(timeout=STOP_WAIT)
            services.close()

    app = FastAPIOffline(  # /docs and /redoc with their assets from the package, not a CDN
        title="deplatforming",
        summary="Who cut which platform or account off, when, and through which channel.",
        description=(
            "Statuses at any moment (`as_of`) as the record stood at any moment (`known_at`); "
            "times are ISO 8601 with a timezone, or a bare date. Writes need "
            "`Authorization: Bearer <token>` with one of the service's tokens (it is read-only "
            "without DEPLATFORM_API_TOKEN or DEPLATFORM_API_TOKENS), each write recorded with the "
            f"token's name; request bodies are limited to {max_body_bytes} bytes. "
            "Errors are RFC 9457 problem details. Reads answer from read models that follow "
            "the store: `X-Read-Models-Position` and `X-Read-Models-Lag` say how far they are; "
            "a read waits (briefly) for this server's last write, or for the position a "
            "client names in `X-Min-Position` (writes return theirs as `position`)."
        ),
        lifespan=lifespan,
    )
    defaults = app.openapi

    def openapi() -> dict[str, Any]:
        """The schema, with the interchange format's event models among its components."""
        if app.openapi_schema is None:
            schema = defaults()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(EVENT_SCHEMA.get("$defs", {}))
            components["Problem"] = problems.PROBLEM_SCHEMA
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    if "422" in responses:  # FastAPI's, but answered as a problem too
                        responses["422"] = problems.PROBLEM_RESPONSES["4XX"]
                    for code, answer in problems.PROBLEM_RESPONSES.items():
                        own = responses.setdefault(code, {"description": answer["description"]})
                        own["content"] = own.get("content", {}) | answer["content"]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    app.state.tokens = tokens if tokens is not None else Tokens.load(api_token)
    app.state.write_rate = Allowance(write_rate)  # events a minute, per token
    app.state.failed_checks = Allowance(FAILED_CHECKS)  # wrong tokens a minute, per client
    app.state.follow_projections = follow_projections
    app.state.max_body_bytes = max_body_bytes
    problems.install(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # listings and pages compress well
    app.include_router(api)
    app.include_router(pages)
    app.include_router(region_pages)
    app.include_router(provider_pages)
    app.include_router(reports)

    @app.middleware("http")
    async def log_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            log.info(
                "request",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        response.headers["X-Request-ID"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"  # the reports page frames its report
        response.headers["Referrer-Policy"] = "no-referrer"  # permalinks hold no secrets, sources
        documentation = request.url.path.startswith(("/docs", "/redoc"))  # their own script
        response.headers["Content-Security-Policy"] = (
            DOCS_SECURITY_POLICY if documentation else CONTENT_SECURITY_POLICY
        )
        progress = getattr(request.state, "progress", None)
        if progress is not None:  # a read: how far the read models it answered from are
            response.headers["X-Read-Models-Position"] = str(progress.position)
            response.headers["X-Read-Models-Lag"] = str(progress.lag)
        pinned = getattr(request.state, "pinned", None)
        if pinned is not None and response.status_code == 200:
            # The same question with the record pinned as it stood: the same answer for good
            # (with `as_of` given: without it, the answer is about "now", which moves).
            canonical = request.url.include_query_params(known_at=iso(pinned))
            # A header holds Latin-1 only: a key in any script goes percent-encoded.
            links = [response.headers.get("Link"), f'<{href(canonical)}>; rel="canonical"']
            response.headers["Link"] = ", ".join(link for link in links if link)
        return response

    app.add_middleware(Bounds, deadline=read_deadline)
    # Outermost (added last): every other part sees the request as made to the public URL.
    if public_url is not None:
        app.add_middleware(PublicURL, url=public_url)
    elif allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
