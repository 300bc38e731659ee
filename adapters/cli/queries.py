"""Queries: a subject's status (or everyone's), its history and intervals; the export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.common import (
    AsJSON,
    AsOf,
    DatabaseURL,
    KnownAt,
    Region,
    cli,
    err,
    fail,
    print_json,
    store,
    subject_key,
    warn_if_behind,
)

# Statuses by name, for --status: the domain's, named here so that `--help` loads no domain
# (a test checks they are the domain's).
STATUS_NAMES = ("online", "partial", "offline", "active", "suspended", "withheld", "banned")


@cli.command(
    rich_help_panel="Queries",
    short_help="A subject's status, or everyone's, at a moment.",
    epilog="Example: deplatform status parler --as-of 2021-01-12",
)
def status(
    subject: Annotated[
        str | None, typer.Argument(help="A platform slug or an account key (twitter:handle).")
    ] = None,
    all_subjects: Annotated[bool, typer.Option("--all", help="Every subject.", metavar="")] = False,
    status_filter: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"With --all: only subjects with this overall status ({', '.join(STATUS_NAMES)}).",
        ),
    ] = None,
    as_of: AsOf = None,
    known_at: KnownAt = None,
    region: Region = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Status of a subject (or --all) at --as-of, as the store knew it at --known-at,
    worldwide or in a --region."""
    if (subject is None) == (not all_subjects):
        fail("give a SUBJECT or --all (not both)", 2)
    if status_filter is not None and not all_subjects:
        fail("--status filters --all", 2)
    from adapters.cli.render import STATUS_DROPS, second, show, status_table
    from adapters.serialize import history_json, status_json
    from domain.values import status_value

    key = subject_key(subject) if subject else None
    try:
        wanted = status_value(status_filter) if status_filter else None
    except ValueError as error:
        fail(f"--status: {error}", 2)
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        queries = services.queries
        statuses = (
            [queries.status(key, as_of, known_at, region)]
            if key
            else queries.statuses(as_of, known_at, wanted, region)
        )
        # A cited answer (--known-at): what the record learned since that changes it.
        later = (
            queries.revised_since(key, statuses[0].as_of, known_at, region)
            if key and known_at is not None
            else None
        )
    if as_json:
        documents = [status_json(s) for s in statuses]
        if later is not None:
            documents[0]["revised_since"] = [history_json(entry) for entry in later]
        print_json(documents if all_subjects else documents[0])
        return
    show(status_table(statuses), STATUS_DROPS)
    if later:
        err.print(
            f"since {known_at:%Y-%m-%d %H:%M:%S} UTC, {len(later)} fact(s) changed this answer: "
            + "; ".join(
                f"{entry.record.type} of {second(entry.record.occurred_at)}"
                + (" (retracted)" if entry.retracted else "")
                for entry in later
            ),
            highlight=False,
        )


@cli.command(
    rich_help_panel="Queries",
    short_help="A subject's facts in valid-time order.",
    epilog="Example: deplatform history twitter:realDonaldTrump",
)
def history(
    subject: Annotated[str, typer.Argument(help="A platform slug or an account key.")],
    known_at: KnownAt = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N events.")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip the first N.")] = 0,
    region: Region = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """A subject's events in valid-time order, with recording times and retractions (in a
    --region: the worldwide ones and those naming it)."""
    from adapters.cli.render import HISTORY_DROPS, history_table, show
    from adapters.serialize import history_json

    key = subject_key(subject)
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        entries = services.queries.history(key, known_at, limit, offset, region)
    if as_json:
        print_json([history_json(e) for e in entries])
    else:
        show(history_table(subject, entries), HISTORY_DROPS)


@cli.command(
    rich_help_panel="Queries",
    short_help="A subject's runs of one status, per channel.",
    epilog="Example: deplatform intervals x --region BR",
)
def intervals(
    subject: Annotated[str, typer.Argument(help="A platform slug or an account key.")],
    known_at: KnownAt = None,
    region: Region = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Per channel, the periods of one status: when it went offline, and for how long
    (worldwide, or in a --region)."""
    from adapters.cli.render import INTERVAL_DROPS, intervals_table, show
    from adapters.serialize import interval_json

    key = subject_key(subject)
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        runs = services.queries.intervals(key, known_at, region)
        history = services.queries.history(key, known_at, region=region)
        events = {e.record.event_id: e.record for e in history}
    if as_json:
        print_json([interval_json(run) for run in runs])
    else:
        show(intervals_table(subject, runs, events), INTERVAL_DROPS)


@cli.command(
    rich_help_panel="Operations",
    short_help="The store as JSON Lines, in recording order.",
    epilog="Example: deplatform export backup.jsonl",
)
def export(
    file: Annotated[
        Path | None, typer.Argument(help="Where to write (default: standard output).")
    ] = None,
    after: Annotated[
        int,
        typer.Option(
            "--after",
            min=0,
            max=2**63 - 1,
            metavar="POSITION",
            help="Only facts recorded after this position (the last `position` a consumer saw).",
        ),
    ] = 0,
    database_url: DatabaseURL = None,
) -> None:
    """Export the store as JSON Lines, in recording order (from a position, with --after)."""
    from adapters.interchange import export_record

    with store(database_url, create=False) as services:
        target = open(file, "w", encoding="utf-8") if file else sys.stdout  # noqa: SIM115
        try:
            for stored in services.app.export(after):
                record = export_record(stored)
                target.write(json.dumps(record, ensure_ascii=False) + "\n")
        finally:
            if file:
                target.close()
