"""Rich tables of typed answers, and the summary of a write."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import typer
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Table

from adapters.cli.common import err, out, print_json
from domain.clock import iso
from domain.values import STATUSES, Status
from projections.documents import HistoryEntry, PlatformDocument
from projections.status import Interval
from service.queries import SubjectStatus
from service.recording import Outcome

COLOURS = {0: "red", 1: "yellow", 2: "green"}  # by rank: worst first


def coloured(value: Status | str | None) -> str:
    if value is None:
        return ""
    status = next((s for s in STATUSES if s == value), None)
    return f"[{COLOURS[status.rank]}]{value}[/]" if status is not None else str(value)


def status_table(statuses: Sequence[SubjectStatus]) -> Table:
    table = Table(title=f"as of {iso(statuses[0].as_of)}" if statuses else "no subjects")
    for column in ("subject", "kind", "status", "web", "ios", "android", "hosting / detail"):
        table.add_column(column)
    for status in statuses:
        doc = status.document
        if isinstance(doc, PlatformDocument):
            channels = {c.value: v for c, v in doc.channels.items()}
            detail = ", ".join(f"{h.provider} ({h.scope})" for h in doc.hosting) or "no host"
        else:
            channels = {}
            detail = f"until {iso(doc.until)}" if doc.until else ""
        table.add_row(
            status.subject.key,
            status.subject.kind,
            coloured(status.status),
            *(coloured(channels.get(c)) for c in ("web", "ios", "android")),
            detail,
        )
    return table


def history_table(subject: str, entries: Sequence[HistoryEntry]) -> Table:
    table = Table(title=f"history of {subject}")
    for column in ("occurred_at", "type", "provider", "reason", "recorded_at", "position"):
        table.add_column(column)
    for entry in entries:
        record = entry.record
        strike = "[strike]" if entry.retracted else ""
        occurred = record.occurred_at
        table.add_row(
            f"{strike}{iso(occurred) if occurred else ''}",
            f"{strike}{record.type}" + (" (retracted)" if entry.retracted else ""),
            record.fields.get("provider", ""),
            record.fields.get("reason", ""),
            iso(record.recorded_at),
            str(record.position),
        )
    return table


def intervals_table(subject: str, runs: Sequence[Interval]) -> Table:
    table = Table(title=f"status intervals of {subject}")
    for column in ("channel", "status", "from", "to", "begun by event"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.channel,
            coloured(run.status),
            iso(run.valid_from),
            iso(run.valid_to) if run.valid_to else "",
            run.event_id or "(suspension ran out)",
        )
    return table


def report(outcome: Outcome, parse_errors: list[tuple[int, str]], as_json: bool) -> None:
    """Prints the outcome of a write; exits 1 if anything was rejected."""
    rejected = sorted(
        [*parse_errors, *((r.label or 0, r.error) for r in outcome.rejected)],
        key=lambda item: item[0],
    )
    recorded = outcome.recorded_count if outcome.committed else 0
    if as_json:
        print_json(
            {
                "recorded": recorded,
                "duplicates": outcome.duplicate_count,
                "rejected": [{"line": line, "error": error} for line, error in rejected],
                "position": outcome.position,
            }
            | (  # a write's ids; an import gives only counts (millions of ids would not do)
                {"event_ids": outcome.recorded if outcome.committed else []}
                if outcome.uncounted == (0, 0)
                else {}
            )
        )
    else:
        for line, error in rejected:
            err.print(f"[red]line {line}:[/] {error}", highlight=False)
        verdict = "nothing recorded" if rejected and not recorded else f"recorded {recorded}"
        at = f" (store position {outcome.position})" if outcome.position else ""
        out.print(
            f"{verdict}, {outcome.duplicate_count} duplicate(s), {len(rejected)} rejected{at}",
            highlight=False,
        )
    if rejected:
        raise typer.Exit(1)


@contextmanager
def progress_bar(
    description: str, total: int | None = None, *, visible: bool = True
) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr, when it is a terminal; yields the function that advances it
    (by a count of events or lines)."""
    columns = [*Progress.get_default_columns(), MofNCompleteColumn()]
    with Progress(*columns, console=err, disable=not (visible and err.is_terminal)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
