"""Rich tables of typed answers, and the summary of a write."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

import typer
from rich.cells import cell_len
from rich.progress import MofNCompleteColumn, Progress
from rich.table import Column, Table
from rich.text import Text

from adapters.cli.common import CONTROL, err, markup_free, out, print_json
from adapters.reporting.tables import human_duration
from adapters.wording import words
from domain.clock import iso, now
from domain.values import STATUSES, Status
from projections.documents import FactRecord, HistoryEntry, PlatformDocument
from projections.status import Interval
from service.queries import SubjectStatus
from service.recording import Outcome

COLOURS = {0: "red", 1: "yellow", 2: "green"}  # by rank: worst first
# The columns a narrow terminal does without, first to last.
STATUS_DROPS = ("hosting / detail", "by", "android", "ios", "web", "since")
HISTORY_DROPS = ("position", "by", "recorded_at", "provider", "reason")
INTERVAL_DROPS = ("provider", "begun by", "for", "to")


def text(value: str | None) -> Text:
    """Stored text (a provider, a reason, a name) as a cell: never read as Rich markup, and
    without control characters."""
    return Text(CONTROL.sub("", value or ""))


def coloured(value: Status | str | None) -> str:
    if value is None:
        return ""
    status = next((s for s in STATUSES if s == value), None)
    return f"[{COLOURS[status.rank]}]{value}[/]" if status is not None else str(value)


WHOLE = {
    "subject",
    "occurred_at",
    "recorded_at",
    "since",
    "from",
    "to",
    "at",
    "status",
    "event_id",
}


def table_of(title: str, columns: Sequence[str]) -> Table:
    """A table whose cells wrap at the terminal's width rather than being cut short; keys,
    times and statuses are kept on one line (folded only if even they do not fit)."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in WHOLE)
    return table


def show(table: Table, drop: Sequence[str] = ()) -> None:
    """Prints a table that fits the terminal: while the columns' narrowest forms do not fit,
    those named in `drop` are left out, in that order; no column is then narrower than its
    longest word (keys, times and ids whole), so that none is crushed to nothing."""
    for name in drop:
        if sum(narrowest(c) + 3 for c in table.columns) + 1 <= out.width:
            break
        table.columns = [c for c in table.columns if c.header != name]
    for column in table.columns:
        column.min_width = narrowest(column)
    out.print(table)


def narrowest(column: Column) -> int:
    """The width a column cannot go below: its widest cell if it does not wrap, else its
    longest word."""
    texts = [str(column.header)] + [
        cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
        for cell in column.cells
    ]
    if column.no_wrap:
        return max(cell_len(t) for t in texts)
    return max(cell_len(word) for t in texts for word in t.split() or [""])


def second(moment: datetime | None) -> str:
    """An instant to the second, in UTC (`2021-01-11T07:59:00Z`), as tables show it."""
    return iso(moment.replace(microsecond=0)) if moment is not None else ""


def status_table(statuses: Sequence[SubjectStatus]) -> Table:
    table = table_of(
        f"as of {second(statuses[0].as_of)}" if statuses else "no subjects",
        ("subject", "status", "since", "by", "web", "ios", "android", "hosting / detail"),
    )
    for status in statuses:
        doc = status.document
        if isinstance(doc, PlatformDocument):
            channels = {c.value: v for c, v in doc.channels.items()}
            detail = ", ".join(f"{h.provider} ({h.scope})" for h in doc.hosting) or "no host"
        else:
            channels = {}
            detail = f"until {second(doc.until)}" if doc.until else ""
        cause = doc.last_event
        by = f"{words(cause.type)} ({cause.provider})" if cause and cause.provider else ""
        table.add_row(
            status.subject.key,
            coloured(status.status),
            second(doc.since),
            text(by or (words(cause.type) if cause else "")),
            *(coloured(channels.get(c)) for c in ("web", "ios", "android")),
            text(detail),
        )
    return table


def history_table(subject: str, entries: Sequence[HistoryEntry]) -> Table:
    table = table_of(
        f"history of {subject}",
        ("occurred_at", "type", "provider", "reason", "event_id", "recorded_at", "by", "position"),
    )
    for entry in entries:
        record = entry.record
        strike = "[strike]" if entry.retracted else ""
        occurred = record.occurred_at
        table.add_row(
            f"{strike}{second(occurred)}",
            f"{strike}{words(record.type)}" + (" (retracted)" if entry.retracted else ""),
            text(record.fields.get("provider")),
            text(record.fields.get("reason")),
            text(record.event_id),
            second(record.recorded_at),
            text(record.recorded_by),
            str(record.position),
        )
    return table


def intervals_table(
    subject: str, runs: Sequence[Interval], events: Mapping[str, FactRecord]
) -> Table:
    """Each run of one status, with the event that began it (its type and provider, from
    `events` by id) and how long it lasted (or has lasted, if it goes on)."""
    table = table_of(
        f"status intervals of {subject}",
        ("channel", "status", "from", "to", "for", "begun by", "provider"),
    )
    for run in runs:
        began = events.get(run.event_id) if run.event_id else None
        lasted = (run.valid_to or now()) - run.valid_from
        table.add_row(
            run.channel,
            coloured(run.status),
            second(run.valid_from),
            second(run.valid_to) or "(goes on)",
            human_duration(lasted),
            words(began.type) if began else ("(suspension ran out)" if not run.event_id else ""),
            text(began.fields.get("provider") if began else None),
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
            | ({"rejected_unlisted": outcome.unlisted} if outcome.unlisted else {})
        )
    else:
        for line, error in rejected:
            err.print(f"[red]line {line}:[/] {markup_free(error)}", highlight=False)
        if outcome.unlisted:
            err.print(f"… and {outcome.unlisted} more rejected lines", highlight=False)
        verdict = "nothing recorded" if rejected and not recorded else f"recorded {recorded}"
        at = f" (store position {outcome.position})" if outcome.position else ""
        count = len(rejected) + outcome.unlisted
        out.print(
            f"{verdict}, {outcome.duplicate_count} duplicate(s), {count} rejected{at}",
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
