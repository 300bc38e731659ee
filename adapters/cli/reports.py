"""Reports over a period, and what changed in one."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.common import (
    AsJSON,
    DatabaseURL,
    KnownAt,
    Region,
    cli,
    fail,
    out,
    parse_time,
    print_json,
    store,
    subject_key,
    warn_if_behind,
)
from adapters.report_formats import FORMATS

From = Annotated[
    datetime,
    typer.Option("--from", parser=parse_time, metavar="T", help="Start of the period."),
]
To = Annotated[
    datetime,
    typer.Option("--to", parser=parse_time, metavar="T", help="End of the period (excluded)."),
]


class KindName(StrEnum):
    platform = "platform"
    account = "account"


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        fail("--to must be later than --from", 2)


@cli.command(
    rich_help_panel="Reports",
    short_help="Providers ranked by the subjects they cut off.",
    epilog="Example: deplatform providers --from 2021-01-01 --to 2022-01-01",
)
def providers(
    start: From,
    end: To,
    known_at: KnownAt = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Providers ranked by the subjects their measures in force cut off in [--from, --to), and
    how long they bound each channel in each country."""
    from adapters.cli.render import show, table_of, text
    from adapters.reporting.tables import human_duration
    from adapters.serialize import standing_json
    from domain.clock import iso

    check_period(start, end)
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        ranked = services.queries.providers(start, end, known_at)
    if as_json:
        print_json(
            {"from": iso(start), "to": iso(end), "providers": [standing_json(p) for p in ranked]}
        )
        return
    table = table_of(
        "providers by the subjects they cut off", ("provider", "subjects", "longest", "where")
    )
    for standing in ranked:  # a provider's name is text, never Rich markup
        name = text(standing.provider)
        places = dict.fromkeys(row.region or "worldwide" for row in standing.bound)
        where = ", ".join(sorted(places, key=lambda place: (place != "worldwide", place)))
        table.add_row(name, str(standing.subjects), human_duration(standing.time), where)
    show(table, ("where",))


@cli.command(
    rich_help_panel="Reports",
    short_help="A report of a period, in a format.",
    epilog="Example: deplatform report --from 2021-01-01 --to 2021-02-01 --format md",
)
def report(
    start: From,
    end: To,
    subjects: Annotated[
        list[str] | None,
        typer.Option("--subject", help="A platform slug or account key (repeat for more)."),
    ] = None,
    kind: Annotated[
        KindName | None, typer.Option("--kind", help="Only platforms or only accounts.")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only subjects this provider acted on.")
    ] = None,
    known_at: KnownAt = None,
    region: Region = None,
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(FORMATS)}.")] = "md",
    table: Annotated[
        str | None, typer.Option("--table", help="With csv or parquet: one table, not a zip.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to write (default stdout).")
    ] = None,
    database_url: DatabaseURL = None,
) -> None:
    """A report of a period: time in each status, outages and their causes, providers'
    actions, services lost, accounts' suspensions and bans, and the period's events
    (worldwide, or in a --region)."""
    from adapters.reporting import BadReportRequest, render

    check_period(start, end)
    suffix = output.suffix.lstrip(".") if output is not None else ""
    if table is None and fmt in ("csv", "parquet") and suffix in ("csv", "parquet"):
        from adapters.reporting.tables import SECTIONS

        fail(
            f"{output}: a .{suffix} file holds one table; give --table (one of "
            f"{', '.join(SECTIONS)}), or -o a .zip for every table",
            2,
        )
    named = [subject_key(s).key for s in subjects or []]
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        made = services.report(
            start,
            end,
            subjects=named,
            kind=kind.value if kind else None,
            provider=provider,
            known_at=known_at,
            region=region,
        )
    try:
        rendered = render(made, fmt, table)
    except BadReportRequest as error:
        fail(str(error), 2)
    if output is not None:
        output.write_bytes(rendered.content)
        out.print(f"wrote {output} ({len(rendered.content):,} bytes)", highlight=False)
    elif rendered.media_type.startswith(("text/", "application/json")):
        sys.stdout.write(rendered.content.decode())
    else:
        sys.stdout.buffer.write(rendered.content)


@cli.command(
    rich_help_panel="Reports",
    short_help="A dataset to deposit: a Frictionless Data Package.",
    epilog="Example: deplatform publish dataset --known-at 2026-01-01",
)
def publish(
    directory: Annotated[Path, typer.Argument(help="Where to write it (made if missing).")],
    start: Annotated[
        datetime | None,
        typer.Option("--from", parser=parse_time, metavar="T", help="Start (default: all)."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", parser=parse_time, metavar="T", help="End (default: now)."),
    ] = None,
    known_at: KnownAt = None,
    region: Region = None,
    database_url: DatabaseURL = None,
) -> None:
    """Write a Frictionless Data Package of the record (events, availability, time in each
    status, outages, accountability; CSV and Parquet, with their Table Schemas, the moment
    it is pinned to, a CITATION.cff and a README): what researchers deposit and cite."""
    from importlib.metadata import version

    from adapters.publishing import publish as write_package
    from adapters.read_models.data_model import datasette_metadata
    from domain.clock import FIRST, now

    start, end = start or FIRST, end or now()
    check_period(start, end)
    with store(database_url, create=False) as services:
        if known_at is None:
            warn_if_behind(services)
        made = services.report(start, end, known_at=known_at or now(), region=region)
        database = Path(services.app.env.get("SQLITE_DBNAME", "deplatform")).stem
        metadata = datasette_metadata(services.view.generation, database)
    files = write_package(made, directory, version("deplatforming"), metadata)
    out.print(f"wrote {len(files)} files to {directory}", highlight=False)


@cli.command(
    rich_help_panel="Queries",
    short_help="What happened in a period.",
    epilog="Example: deplatform changes --from 2021-01-06 --to 2021-01-13",
)
def changes(
    start: From,
    end: To,
    net: Annotated[
        bool,
        typer.Option(
            "--net", help="Only channels whose status differs at the two ends.", metavar=""
        ),
    ] = False,
    region: Region = None,
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """What happened in (--from, --to]: every status change, channel by channel (worldwide,
    with the countries whose own answer changed, or in a --region), and every other fact."""
    from adapters.cli.render import coloured, second, show, table_of, text
    from adapters.serialize import change_json
    from domain.clock import iso

    check_period(start, end)
    with store(database_url, create=False) as services:
        warn_if_behind(services)
        found = services.queries.changes(start, end, net=net, region=region).subjects
    if as_json:
        print_json(
            {
                "from": iso(start),
                "to": iso(end),
                "region": region,
                "subjects": [change_json(c) for c in found],
            }
        )
        return
    table = table_of(
        f"changes from {second(start)} to {second(end)}",
        ("subject", "channel", "at", "from", "to", "by"),
    )
    for change in found:
        for t in change.transitions:
            by = (
                f"{t.event.type} ({t.event.fields.get('provider', '')})"
                if t.event
                else "(suspension ran out)"
            )
            table.add_row(
                change.subject.key,
                f"{t.channel} in {t.region}" if t.region else str(t.channel),
                second(t.at),
                coloured(t.before),
                coloured(t.after),
                text(by),
            )
        said = {t.event.event_id for t in change.transitions if t.event}
        for entry in change.events:  # the period's facts that changed no status
            record = entry.record
            if record.event_id not in said and not entry.retracted:
                provider = record.fields.get("provider", "")
                by = f"{record.type} ({provider})" if provider else record.type
                table.add_row(change.subject.key, "", second(record.occurred_at), "", "", text(by))
    show(table, ("by", "from"))
