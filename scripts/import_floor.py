"""What an import costs before any rule of ours: the per-event work of the stack the design
mandates (pydantic validating the line, the library's event object and aggregate, its mapper
encoding the stored state, SQLite writing the event and its event-id row), each timed alone,
beside the time per event that a target import rate leaves once the CLI has started.

    uv run python scripts/import_floor.py                 # 50,000 events over 2,000 subjects
    uv run python scripts/import_floor.py --events 200000 --subjects 10000 --target 30000

The stack's work is CPU spent whatever the code around it does; with every core perfectly
busy it needs at least `sum / cores` per event. What the target leaves beyond that is all the
domain's rules (the bitemporal timeline, late facts, retractions), the event-id checks,
passing facts between processes and the bookkeeping may take. The domain's rules, as they
are, are timed on the same facts for comparison (in memory, nothing written).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from eventsourcing.domain import Aggregate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.composition import Services, open_services
from adapters.interchange import EVENT_INPUT, parse_line
from scripts import histories
from scripts.bench import CLI
from service.ports import IndexedEvent
from service.recording import Batch, NewFact, Outcome

T = TypeVar("T")
CHUNK = 5000  # facts checked together, as the CLI's import does


class Bare(Aggregate):
    """An aggregate without rules, whose event has the fields of a provider's action."""

    class Happened(Aggregate.Event):
        event_id: str
        recorded_by: str | None
        occurred_at: datetime
        reason: str | None
        sources: list[str]
        note: str | None
        provider: str


def best(work: Callable[[], T], events: int, repeat: int = 3) -> tuple[float, T]:
    """The fastest of `repeat` runs, in microseconds per event, and what it made."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        made = work()
        timings.append(time.perf_counter() - started)
    return min(timings) / events * 1e6, made


def startup(directory: str) -> float:
    """Seconds the CLI takes to import a one-line file (median of three fresh processes)."""
    line = Path(directory, "one.jsonl")
    line.write_text(
        '{"type":"PlatformRegistered","platform":"p","name":"P","occurred_at":"2021-01-01"}\n'
    )
    runs = []
    for n in range(3):
        started = time.perf_counter()
        subprocess.run(
            [
                CLI,
                "import",
                str(line),
                "--no-projections",
                "--json",
                "--database-url",
                f"sqlite:///{directory}/start{n}.db",
            ],
            check=True,
            capture_output=True,
        )
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def rules_of(services: Services, chunks: list[list[NewFact]]) -> float:
    """Seconds the domain's rules take in an import of these chunks (`Batch.run`, each fact
    checked against its subject's timeline), the writes around them not counted."""
    spent = 0.0
    run = Batch.run

    def timed(batch: Batch) -> Outcome:
        nonlocal spent
        started = time.perf_counter()
        try:
            return run(batch)
        finally:
            spent += time.perf_counter() - started

    Batch.run = timed  # type: ignore[method-assign]
    try:
        outcome = services.app.import_stream(chunks)
    finally:
        Batch.run = run  # type: ignore[method-assign]
    assert outcome.committed and not outcome.rejected
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--subjects", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target", type=float, default=30_000, help="events/s to judge by")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="floor-") as directory:  # the stores it writes
        measure(args, directory)


def measure(args: argparse.Namespace, directory: str) -> None:
    n = args.events
    lines = [orjson.dumps(f) for f in histories.history(n, args.subjects, args.seed)]

    rows: dict[str, float] = {}
    rows["pydantic validates a line"], models = best(
        lambda: [EVENT_INPUT.validate_python(orjson.loads(line)) for line in lines], n
    )
    moment = datetime.now(UTC)

    def events() -> list[Any]:
        aggregates: dict[str, Bare] = {}
        made = []
        for model in models:
            key = getattr(model, "platform", None) or getattr(model, "account", None)
            aggregate = aggregates.get(key)
            if aggregate is None:
                aggregate = aggregates[key] = Bare()
            event = Bare.Happened(
                originator_id=aggregate.id,
                originator_version=aggregate.version + 1,
                timestamp=moment,
                event_id=model.event_id,
                recorded_by=None,
                occurred_at=getattr(model, "occurred_at", moment),
                reason=getattr(model, "reason", None),
                sources=getattr(model, "sources", []),
                note=getattr(model, "note", None),
                provider=getattr(model, "provider", ""),
            )
            event.mutate(aggregate)
            made.append(event)
        return made

    rows["library event and aggregate"], made = best(events, n)
    services = open_services(f"sqlite:///{directory}/store.db", embedded=False)
    app = services.app
    rows["library mapper encodes it"], stored = best(
        lambda: [app.mapper.to_stored_event(e) for e in made], n
    )
    index = [IndexedEvent(e.event_id, e.originator_id, "0" * 64) for e in made]

    def write() -> None:
        with app.index.bulk() as bulk:
            bulk.insert(stored, index)

    rows["SQLite writes event and id"], _ = best(write, n, repeat=1)
    services.close()

    facts = [parse_line(line.decode(), number) for number, line in enumerate(lines, 1)]
    checking = open_services(f"sqlite:///{directory}/rules.db", embedded=False)
    rules = rules_of(checking, [facts[i : i + CHUNK] for i in range(0, n, CHUNK)]) / n * 1e6
    checking.close()

    cores = os.cpu_count() or 1
    stack = sum(rows.values())
    start = startup(directory)
    budget = (n / args.target - start) / n * 1e6
    width = max(map(len, rows)) + 2
    print(f"{n:,} events over {args.subjects:,} subjects, {cores} cores, us per event")
    for name, micros in rows.items():
        print(f"  {name:<{width}} {micros:6.1f}")
    print(f"  {'the stack, in all':<{width}} {stack:6.1f}   ({stack / cores:.1f} on {cores} cores)")
    print(f"CLI start: {start:.2f} s")
    print(f"target {args.target:,.0f} events/s: {budget:.1f} per event once started")
    print(f"left beyond the stack, every core busy: {budget - stack / cores:.1f}")
    print(f"the domain's rules as they are (one core): {rules:.1f}")


if __name__ == "__main__":
    main()
