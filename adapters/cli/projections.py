"""The read models: follow the event stream, report how far they are, rebuild them."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from adapters.cli.common import AsJSON, DatabaseURL, cli, err, out, print_json, store

projections_cli = typer.Typer(
    help="The read models that serve queries: follow the event stream, report, rebuild.",
    no_args_is_help=True,
)
cli.add_typer(projections_cli, name="projections", rich_help_panel="Operations")


@projections_cli.command("run")
def projections_run(
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="Seconds between polls.")] = 0.5,
    database_url: DatabaseURL = None,
) -> None:
    """Follow the event stream and keep the read models up to date, until stopped."""
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    with store(database_url) as services:
        runner = services.runner

        def standing() -> str:  # from memory while following, else one statement
            progress = runner.progress()
            return f"position {progress.position}, lag {progress.lag}"

        err.print(f"following from {standing()}; Ctrl-C stops")
        runner.follow(stop, poll, report=lambda: err.print(standing(), highlight=False))


@projections_cli.command("status")
def projections_status(as_json: AsJSON = False, database_url: DatabaseURL = None) -> None:
    """Position, lag and last error of the read models."""
    from adapters.cli.render import table_of
    from adapters.serialize import progress_json

    with store(database_url) as services:
        report = progress_json(services.runner.report())
    if as_json:
        print_json(report)
        return
    table = table_of("read models", list(report))
    table.add_row(*(str(v) if v is not None else "" for v in report.values()))
    out.print(table)


@projections_cli.command("rebuild")
def projections_rebuild(as_json: AsJSON = False, database_url: DatabaseURL = None) -> None:
    """Rebuild the read models from the first event into fresh tables, then switch to them."""
    from adapters.cli.render import progress_bar
    from adapters.composition import rebuild

    with store(database_url) as services:
        total = services.app.head()
        with progress_bar("rebuilding", total, visible=not as_json) as advance:
            rebuilt = rebuild(services, advance)
    if as_json:
        print_json(
            {
                "generation": rebuilt.generation,
                "events": rebuilt.events,
                "seconds": round(rebuilt.seconds, 3),
                "replaced": rebuilt.replaced,
            }
        )
        return
    out.print(
        f"rebuilt generation {rebuilt.generation} from {rebuilt.events} events in "
        f"{rebuilt.seconds:.2f}s ({rebuilt.rate:,.0f} events/s)"
        + (f"; dropped generation {rebuilt.replaced}" if rebuilt.replaced else ""),
        highlight=False,
    )
