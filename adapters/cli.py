"""The `deplatform` command: import, record, retract, query and export the event store.

Exit codes: 0 success, 1 something was rejected or not found (or the store failed),
2 usage errors (unknown options, malformed times, bad database URLs).
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import structlog
import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from adapters import interchange
from adapters.config import BadDatabaseURL, Settings, StoreUnavailable, store_env
from adapters.logging import configure
from adapters.store import open_store, rebuild
from domain.clock import iso
from domain.errors import UnknownSubject
from domain.values import AccountStatus, Availability, InvalidSubject, SubjectKey
from service.application import ConcurrentWrites, Deplatforming
from service.recording import Outcome

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "parler-2021.jsonl"

cli = typer.Typer(
    help="Track deplatforming: who cut which platform or account off, when, and how.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = structlog.get_logger("deplatform")


StatusValue = StrEnum(  # type: ignore[misc]
    "StatusValue", {v.value: v.value for v in (*Availability, *AccountStatus)}
)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return interchange.parse_instant(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///path.db or postgresql://user:pass@host:port/db "
        "[env DEPLATFORM_DATABASE_URL; default sqlite:///./deplatform.db]",
        show_default=False,
    ),
]
AsOf = Annotated[
    datetime | None,
    typer.Option("--as-of", parser=parse_time, metavar="T", help="Valid time (default now)."),
]
KnownAt = Annotated[
    datetime | None,
    typer.Option(
        "--known-at", parser=parse_time, metavar="T", help="Transaction time (default now)."
    ),
]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def store(database_url: str | None) -> Iterator[Deplatforming]:
    settings = Settings()
    configure(settings.log_level)
    try:
        app = open_store(database_url or settings.database_url)
    except BadDatabaseURL as error:
        fail(str(error), 2)
    except StoreUnavailable as error:
        fail(str(error))
    except (PersistenceError, OSError) as error:
        fail(f"cannot open the store: {error}")
    try:
        yield app
    except UnknownSubject as error:
        fail(str(error))
    except ConcurrentWrites as error:
        fail(str(error))
    except PersistenceError as error:
        fail(f"store error: {error}")
    finally:
        app.close()


def subject_key(text: str) -> SubjectKey:
    try:
        return SubjectKey.parse(text)
    except InvalidSubject as error:
        fail(str(error), 2)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


# Writes ---------------------------------------------------------------------------


def report(outcome: Outcome, parse_errors: list[tuple[int, str]], as_json: bool) -> None:
    """Prints the outcome of a write; exits 1 if anything was rejected."""
    rejected = sorted(
        [*parse_errors, *((r.label or 0, r.error) for r in outcome.rejected)],
        key=lambda item: item[0],
    )
    recorded = len(outcome.recorded) if outcome.committed else 0
    if as_json:
        print_json(
            {
                "recorded": recorded,
                "duplicates": len(outcome.duplicates),
                "rejected": [{"line": line, "error": error} for line, error in rejected],
            }
        )
    else:
        for line, error in rejected:
            err.print(f"[red]line {line}:[/] {error}", highlight=False)
        verdict = "nothing recorded" if rejected and not recorded else f"recorded {recorded}"
        out.print(
            f"{verdict}, {len(outcome.duplicates)} duplicate(s), {len(rejected)} rejected",
            highlight=False,
        )
    if rejected:
        raise typer.Exit(1)


@cli.command("import")
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="JSON Lines file, or - for stdin")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Record the valid lines even if some are not.")
    ] = False,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Import events from a JSON Lines file: all or nothing unless --skip-invalid."""
    try:
        stream = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}", 2)
    with stream:
        try:
            parsed = list(interchange.parse_lines(stream))
        except UnicodeDecodeError as error:
            fail(f"{file} is not UTF-8 text: {error.reason}", 1)
    parse_errors = [(p.line, p.error) for p in parsed if p.error is not None]
    facts = [p.fact for p in parsed if p.fact is not None]
    with store(database_url) as app:
        outcome = app.record(
            facts, atomic=not skip_invalid, commit=skip_invalid or not parse_errors
        )
    log.info("import", file=file, recorded=len(outcome.recorded), rejected=len(outcome.rejected))
    report(outcome, parse_errors, as_json)


@cli.command()
def record(
    json_event: Annotated[str, typer.Option("--json-event", help="One event as a JSON object.")],
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Record one event given as JSON."""
    parsed = list(interchange.parse_lines([json_event]))
    if not parsed:
        fail("--json-event is empty", 2)
    write_one(parsed[0], as_json, database_url)


@cli.command()
def retract(
    event_id: Annotated[str, typer.Argument(help="The event_id of the event to retract.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it no longer counts.")],
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Retract an event: from now on it no longer counts (history keeps it, marked)."""
    raw = {"type": "EventRetracted", "retracts": event_id, "reason": reason}
    write_one(next(interchange.parse_lines([json.dumps(raw)])), as_json, database_url)


def write_one(parsed: interchange.ParsedLine, as_json: bool, database_url: str | None) -> None:
    if parsed.fact is None:
        assert parsed.error is not None
        report(Outcome(), [(parsed.line, parsed.error)], as_json)
        return
    with store(database_url) as app:
        outcome = app.record([parsed.fact])
    if not as_json and outcome.committed:
        out.print(f"event_id {parsed.fact.event_id}", highlight=False)
    report(outcome, [], as_json)


# Queries ------------------------------------------------------------------------------


@cli.command()
def status(
    subject: Annotated[
        str | None, typer.Argument(help="A platform slug or an account key (twitter:handle).")
    ] = None,
    all_subjects: Annotated[bool, typer.Option("--all", help="Every subject.")] = False,
    status_filter: Annotated[
        StatusValue | None,
        typer.Option("--status", help="With --all: only subjects with this overall status."),
    ] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Status of a subject (or --all) at --as-of, as the store knew it at --known-at."""
    if (subject is None) == (not all_subjects):
        fail("give a SUBJECT or --all (not both)", 2)
    if status_filter is not None and not all_subjects:
        fail("--status filters --all", 2)
    key = subject_key(subject) if subject else None
    wanted = status_filter.value if status_filter else None
    with store(database_url) as app:
        statuses = (
            [app.status(key, as_of, known_at)] if key else app.statuses(as_of, known_at, wanted)
        )
    documents = [s.to_json() for s in statuses]
    if as_json:
        print_json(documents if all_subjects else documents[0])
    else:
        out.print(status_table(documents))


def status_table(documents: list[dict[str, Any]]) -> Table:
    table = Table(title=f"as of {documents[0]['as_of']}" if documents else "no subjects")
    for column in ("subject", "kind", "status", "web", "ios", "android", "hosting / detail"):
        table.add_column(column)
    for doc in documents:
        channels = doc.get("channels", {})
        detail = (
            ", ".join(f"{h['provider']} ({h['scope']})" for h in doc["hosting"]) or "no host"
            if doc["kind"] == "platform"
            else (f"until {doc['until']}" if doc.get("until") else "")
        )
        table.add_row(
            doc["subject"],
            doc["kind"],
            coloured(doc["status"]),
            *(coloured(channels.get(c, "")) for c in ("web", "ios", "android")),
            detail,
        )
    return table


COLOURS = {
    "online": "green",
    "active": "green",
    "partial": "yellow",
    "suspended": "yellow",
    "offline": "red",
    "banned": "red",
}


def coloured(value: str) -> str:
    return f"[{COLOURS[value]}]{value}[/]" if value in COLOURS else value


@cli.command()
def history(
    subject: Annotated[str, typer.Argument(help="A platform slug or an account key.")],
    known_at: KnownAt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N events.")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip the first N.")] = 0,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """A subject's events in valid-time order, with recording times and retractions."""
    key = subject_key(subject)
    with store(database_url) as app:
        records = app.history(key, known_at, limit, offset)
    if as_json:
        print_json(records)
        return
    table = Table(title=f"history of {subject}")
    for column in ("occurred_at", "type", "provider", "reason", "recorded_at", "position"):
        table.add_column(column)
    for r in records:
        strike = "[strike]" if r["retracted"] else ""
        table.add_row(
            f"{strike}{r['occurred_at']}",
            f"{strike}{r['type']}" + (" (retracted)" if r["retracted"] else ""),
            r.get("provider", ""),
            r.get("reason", ""),
            r["recorded_at"],
            str(r["position"]),
        )
    out.print(table)


@cli.command()
def intervals(
    subject: Annotated[str, typer.Argument(help="A platform slug or an account key.")],
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Per channel, the periods of one status: when it went offline, and for how long."""
    key = subject_key(subject)
    with store(database_url) as app:
        runs = app.intervals(key)
    if as_json:
        print_json(runs)
        return
    table = Table(title=f"status intervals of {subject}")
    for column in ("channel", "status", "from", "to", "begun by event"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run["channel"],
            coloured(run["status"]),
            run["valid_from"],
            run["valid_to"] or "",
            run["event_id"] or "(suspension ran out)",
        )
    out.print(table)


@cli.command()
def export(
    file: Annotated[
        Path | None, typer.Argument(help="Where to write (default: standard output).")
    ] = None,
    database_url: DatabaseURL = None,
) -> None:
    """Export the whole store as JSON Lines, in recording order."""
    with store(database_url) as app:
        target = open(file, "w", encoding="utf-8") if file else sys.stdout  # noqa: SIM115
        try:
            for stored in app.export():
                record = interchange.export_record(stored)
                target.write(json.dumps(record, ensure_ascii=False) + "\n")
        finally:
            if file:
                target.close()


@cli.command()
def demo(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="An empty store to load (default: a fresh file)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Only print the replay, do not serve.")
    ] = False,
) -> None:
    """Load the Parler example into a fresh store, replay it event by event, and serve it."""
    url = database_url or f"sqlite:///{tempfile.mkdtemp(prefix='deplatform-demo-')}/demo.db"
    parsed = list(interchange.parse_lines(EXAMPLE.read_text(encoding="utf-8").splitlines()))
    with store(url) as app:
        outcome = app.record([p.fact for p in parsed if p.fact is not None])
        if outcome.rejected or not outcome.committed:
            fail(f"the example did not load: {outcome.rejected}")
        rows = []  # (moment, position, subject, what, by)
        for stored in app.export():
            fact, key = stored.fact, stored.subject
            by = getattr(fact, "provider", "") or ""
            rows.append((fact.occurred_at, stored.position, key, fact.type, by))  # type: ignore[attr-defined]
            until = getattr(fact, "until", None)
            if until and app.status(key, until).document["since"] == iso(until):
                rows.append((until, 0, key, "(suspension ends)", ""))
        table = Table(title=f"Replay of {EXAMPLE.name} (store: {url})")
        for column in ("occurred_at", "subject", "event", "by", "status after", "channels"):
            table.add_column(column)
        for moment, _, key, what, by in sorted(rows, key=lambda r: (r[0], r[1])):
            after = app.status(key, moment).to_json()
            channels = " ".join(f"{c}={coloured(v)}" for c, v in after.get("channels", {}).items())
            table.add_row(iso(moment), key.key, what, by, coloured(after["status"]), channels)
    out.print(table)
    out.print(f"Try: deplatform status --all --as-of 2021-01-12 --database-url {url}")
    if no_serve:
        return
    out.print(
        f"Serving the example at http://{host}:{port}/ (API docs at http://{host}:{port}/docs); "
        "Ctrl-C stops.",
        highlight=False,
    )
    sys.stdout.flush()
    run_server(url, host, port, follow=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    no_projections: Annotated[
        bool,
        typer.Option("--no-projections", help="Do not follow the stream here (workers do)."),
    ] = False,
    database_url: DatabaseURL = None,
) -> None:
    """Serve the JSON API (documented at /docs) and the status pages."""
    settings = Settings()
    configure(settings.log_level if settings.log_level != "WARNING" else "INFO", json=True)
    run_server(database_url or settings.database_url, host, port, not no_projections)


def run_server(database_url: str, host: str, port: int, follow: bool) -> None:
    import uvicorn

    from adapters.http.app import create_app

    try:
        store_env(database_url)  # a bad URL or a refusing database, said before serving
    except BadDatabaseURL as error:
        fail(str(error), 2)
    except StoreUnavailable as error:
        fail(str(error))
    app = create_app(database_url, api_token=Settings().api_token, follow_projections=follow)
    uvicorn.run(app, host=host, port=port, log_level="warning")


projections_cli = typer.Typer(
    help="The read models that serve queries: follow the event stream, report, rebuild.",
    no_args_is_help=True,
)
cli.add_typer(projections_cli, name="projections")


@projections_cli.command("run")
def projections_run(
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between polls.")] = 0.5,
    database_url: DatabaseURL = None,
) -> None:
    """Follow the event stream and keep the read models up to date, until stopped."""
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    with store(database_url) as app:
        runner = app.runner
        assert runner is not None
        err.print(f"following from position {runner.position} (lag {runner.lag()}); Ctrl-C stops")
        runner.follow(
            stop,
            poll,
            report=lambda: err.print(
                f"position {runner.position}, lag {runner.lag()}", highlight=False
            ),
        )


@projections_cli.command("status")
def projections_status(as_json: AsJSON = False, database_url: DatabaseURL = None) -> None:
    """Position, lag and last error of the read models."""
    with store(database_url) as app:
        runner = app.runner
        assert runner is not None
        report = runner.report()
    if as_json:
        print_json(report)
        return
    table = Table(title="read models")
    for column in report:
        table.add_column(column)
    table.add_row(*(str(v) if v is not None else "" for v in report.values()))
    out.print(table)


@projections_cli.command("rebuild")
def projections_rebuild(database_url: DatabaseURL = None) -> None:
    """Rebuild the read models from the first event into fresh tables, then switch to them."""
    with store(database_url) as app:
        total = app.recorder.max_notification_id() or 0
        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=err, transient=False
        ) as progress:
            task = progress.add_task("rebuilding", total=total)
            rebuilt = rebuild(app, lambda n: progress.advance(task, n))
    out.print(
        f"rebuilt generation {rebuilt.generation} from {rebuilt.events} events in "
        f"{rebuilt.seconds:.2f}s ({rebuilt.rate:,.0f} events/s)"
        + (f"; dropped generation {rebuilt.replaced}" if rebuilt.replaced else ""),
        highlight=False,
    )


def main() -> None:
    cli()
