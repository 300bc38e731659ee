"""Serving: the HTTP API and pages, and the demo that loads the example and serves it."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.common import DatabaseURL, check_url, cli, err, fail, out, store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = EXAMPLES / "parler-2021.jsonl"  # the story the demo replays
REGIONAL = EXAMPLES / "regional-2024-2025.jsonl"  # loaded beside it, for the country pages
STORY = "2021-01-12"  # the story's moment: Parler offline, Trump's accounts suspended and banned


@cli.command(
    rich_help_panel="Operations",
    short_help="Load the examples, replay Parler's story, serve it.",
    epilog="Example: deplatform demo",
)
def demo(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="An empty store to load (default: a fresh file)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only print the replay, do not serve.", metavar="")
    ] = False,
) -> None:
    """Load the examples into a fresh store (Parler's story, and regional cut-offs), replay
    Parler's event by event, and serve them, opening at the story's moment (a store the
    demo made is removed when it stops)."""
    made = None if database_url else tempfile.mkdtemp(prefix="deplatform-demo-")
    url = database_url or f"sqlite:///{made}/demo.db"
    try:
        replay(url)
        if no_serve:
            return
        out.print(
            f"Serving the example at http://{host}:{port}/?as_of={STORY} (the story's moment; "
            f"API docs at http://{host}:{port}/docs). While it serves, try: deplatform status "
            f"--all --as-of {STORY} --database-url {url}. Ctrl-C stops"
            + (" and removes this store." if made else "."),
            highlight=False,
        )
        sys.stdout.flush()
        run_server(url, host, port, follow=True)
    finally:
        if made is not None:  # the demo's own store goes with it
            shutil.rmtree(made, ignore_errors=True)


def replay(url: str) -> None:
    """Loads the examples into the store and prints Parler's story, fact by fact."""
    from adapters.cli.render import coloured, second, show, table_of, text
    from adapters.interchange import parse_lines
    from adapters.wording import words
    from domain import Subject
    from projections.documents import PlatformDocument

    with store(url) as services:
        heads = []  # where each example's facts end in the store
        for example in (EXAMPLE, REGIONAL):
            parsed = list(parse_lines(example.read_text(encoding="utf-8").splitlines()))
            outcome = services.record([p.fact for p in parsed if p.fact is not None])
            if outcome.rejected or not outcome.committed:
                fail(f"the example {example.name} did not load: {outcome.rejected}")
            heads.append(services.app.head())
        replayed = heads[0]
        queries = services.queries
        rows = []  # (moment, position, subject, what, by)
        for stored in services.app.export():
            if stored.position > replayed:
                break
            fact, key = stored.fact, stored.subject
            if not isinstance(fact, Subject.Action):
                continue
            by = getattr(fact, "provider", "") or ""
            rows.append((fact.occurred_at, stored.position, key, words(fact.type), by))
            until = getattr(fact, "until", None)
            if until and getattr(queries.status(key, until).document, "since", None) == until:
                rows.append((until, 0, key, "(suspension ends)", ""))
        table = table_of(
            f"Replay of {EXAMPLE.name} (store: {url})",
            ("occurred_at", "subject", "event", "by", "status after", "channels"),
        )
        for moment, _, key, what, by in sorted(rows, key=lambda r: (r[0], r[1])):
            after = queries.status(key, moment)
            channels = (
                " ".join(f"{c}={coloured(v)}" for c, v in after.document.channels.items())
                if isinstance(after.document, PlatformDocument)
                else ""
            )
            table.add_row(second(moment), key.key, what, text(by), coloured(after.status), channels)
    show(table, ("channels", "by"))


@cli.command(
    rich_help_panel="Operations",
    short_help="Serve the API and the pages.",
    epilog="Example: deplatform serve --port 8000",
)
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    no_projections: Annotated[
        bool,
        typer.Option(
            "--no-projections", help="Do not follow the stream here (workers do).", metavar=""
        ),
    ] = False,
    database_url: DatabaseURL = None,
) -> None:
    """Serve the JSON API (documented at /docs) and the status pages."""
    from adapters.config import Settings, redacted
    from adapters.logging import configure

    settings = Settings()
    configure(settings.log_level if settings.log_level != "WARNING" else "INFO", json=True)
    url = database_url or settings.database_url
    err.print(f"serving http://{host}:{port}/ (store {redacted(url)}); Ctrl-C stops")
    run_server(url, host, port, not no_projections)


def allowed_hosts(configured: str | None, host: str) -> list[str]:
    """The Host headers the service answers: those configured, else the address it serves and
    localhost's names (any, serving every address: then set DEPLATFORM_PUBLIC_URL)."""
    if configured:
        return [name.strip() for name in configured.split(",") if name.strip()]
    if host in ("0.0.0.0", "::", ""):
        err.print(
            "[yellow]warning:[/] serving every address: links follow the Host header; "
            "set DEPLATFORM_PUBLIC_URL or DEPLATFORM_ALLOWED_HOSTS",
            highlight=False,
        )
        return ["*"]
    return list(dict.fromkeys([host, "localhost", "127.0.0.1", "::1"]))


def run_server(database_url: str, host: str, port: int, follow: bool) -> None:
    import uvicorn  # the HTTP stack is loaded only by the commands that serve

    from adapters.access import TokenFileError, Tokens
    from adapters.config import Settings
    from adapters.http.app import create_app

    check_url(database_url)  # a bad URL or a refusing database, said before serving
    settings = Settings()
    try:
        tokens = Tokens.load(settings.api_token, settings.api_tokens)
    except TokenFileError as error:
        fail(str(error), 2)
    app = create_app(
        database_url,
        tokens=tokens,
        write_rate=settings.write_rate,
        follow_projections=follow,
        public_url=settings.public_url,
        allowed_hosts=allowed_hosts(settings.allowed_hosts, host),
        read_deadline=settings.request_deadline,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
