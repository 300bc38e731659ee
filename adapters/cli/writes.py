"""Writes: import a JSON Lines file, record one event, retract one. A CLI write also brings
the read models up to date before it exits (the store is opened embedded), so that the next
command reads it."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from adapters.cli.common import (
    AsJSON,
    DatabaseURL,
    NoProjections,
    cli,
    cli_writer,
    fail,
    log,
    out,
    store,
)

if TYPE_CHECKING:
    from adapters.interchange import ParsedLine
    from service.recording import NewFact

IMPORT_CHUNK = 5000  # lines parsed, validated and written together
PARALLEL_BYTES = 8_000_000  # a file larger than this is parsed by a worker process


@cli.command(
    "import",
    rich_help_panel="Writes",
    short_help="Import facts from a JSON Lines file.",
    epilog="Example: deplatform import examples/parler-2021.jsonl",
)
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE|-", help="JSON Lines file, or - for stdin")],
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Record the valid lines even if some are not.", metavar=""
        ),
    ] = False,
    as_json: AsJSON = False,
    no_projections: NoProjections = False,
    database_url: DatabaseURL = None,
) -> None:
    """Import events from a JSON Lines file: all or nothing unless --skip-invalid."""
    from adapters.cli.render import progress_bar, report
    from adapters.import_lines import parse_chunks
    from adapters.runtime import spare_survivors
    from service.recording import LISTED

    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}", 2)
    parse_errors: list[tuple[int, str]] = []  # the first LISTED; the others counted
    unlisted = 0
    writer = cli_writer()

    def chunks() -> Iterator[list[NewFact]]:
        """The file's facts, a chunk at a time; lines that are not facts are noted. A large
        file is parsed by a worker process meanwhile."""
        nonlocal unlisted
        large = stat.S_ISREG(os.fstat(stream.fileno()).st_mode) and (
            os.fstat(stream.fileno()).st_size > PARALLEL_BYTES
        )
        for parsed in parse_chunks(stream, IMPORT_CHUNK, parallel=large, recorded_by=writer):
            errors = [(p.line, p.error) for p in parsed if p.error is not None]
            room = max(LISTED - len(parse_errors), 0)
            parse_errors.extend(errors[:room])
            unlisted += len(errors[room:])
            yield [p.fact for p in parsed if p.fact is not None]
            spare_survivors()  # what the chunk left alive stays: collections skip it

    with (
        stream,
        store(database_url, embedded=not no_projections, as_json=as_json) as services,
        progress_bar("importing", visible=not as_json) as advance,
    ):
        outcome = services.import_stream(
            chunks(),
            atomic=not skip_invalid,
            commit_if=lambda: skip_invalid or not parse_errors,
            progress=advance,
            recorded_by=writer,
        )
    outcome.unlisted += unlisted
    rejected = len(parse_errors) + len(outcome.rejected) + outcome.unlisted
    log().info("import", file=file, recorded=outcome.recorded_count, rejected=rejected)
    report(outcome, parse_errors, as_json)


@cli.command(
    rich_help_panel="Writes",
    short_help="Record one fact.",
    epilog=(
        'Example: deplatform record --json-event \'{"type": "DomainSuspended", '
        '"platform": "gab", "occurred_at": "2018-10-29", "provider": "GoDaddy"}\''
    ),
)
def record(
    json_event: Annotated[str, typer.Option("--json-event", help="One event as a JSON object.")],
    as_json: AsJSON = False,
    no_projections: NoProjections = False,
    database_url: DatabaseURL = None,
) -> None:
    """Record one event given as JSON."""
    from adapters.interchange import parse_lines

    parsed = list(parse_lines([json_event]))
    if not parsed:
        fail("--json-event is empty", 2)
    write_one(parsed[0], as_json, database_url, not no_projections)


@cli.command(
    rich_help_panel="Writes",
    short_help="Retract a fact.",
    epilog='Example: deplatform retract EVENT_ID --reason "wrong day"',
)
def retract(
    event_id: Annotated[str, typer.Argument(help="The event_id of the event to retract.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it no longer counts.")],
    as_json: AsJSON = False,
    no_projections: NoProjections = False,
    database_url: DatabaseURL = None,
) -> None:
    """Retract an event: from now on it no longer counts (history keeps it, marked)."""
    from adapters.interchange import parse_lines

    raw = {"type": "EventRetracted", "retracts": event_id, "reason": reason}
    parsed = next(parse_lines([json.dumps(raw)]))
    write_one(parsed, as_json, database_url, not no_projections)


def write_one(parsed: ParsedLine, as_json: bool, database_url: str | None, embedded: bool) -> None:
    from adapters.cli.render import report
    from service.recording import Outcome

    if parsed.fact is None:
        assert parsed.error is not None
        report(Outcome(), [(parsed.line, parsed.error)], as_json)
        return
    with store(database_url, embedded=embedded, as_json=as_json) as services:
        outcome = services.record([parsed.fact], recorded_by=cli_writer())
    if not as_json and outcome.committed:
        out.print(f"event_id {parsed.fact.event_id}", highlight=False)
    report(outcome, [], as_json)
