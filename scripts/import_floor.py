"""Where an import's time goes, part by part, on the two sides of its bulk path: the parsing
worker (validating each line, deriving its id and digest, encoding its stored state ahead,
packing the chunk) and the importing process (unpacking, reading what the chunk touches,
the domain's rules, completing the states and writing the events and index rows, keeping
the subjects in memory and their checkpoints in the store), each timed on the same facts,
beside the time per event that a target rate leaves once the CLI has started.

    uv run python scripts/import_floor.py                 # 50,000 events over 2,000 subjects
    uv run python scripts/import_floor.py --events 200000 --subjects 10000 --target 30000

The two sides run at once, on two cores: an import goes at the pace of the slower one, the
importing process (the rules live there, and only there: a subject's facts are checked in
order against everything before them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest.mock import patch

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.composition import open_services
from adapters.import_lines import encoded_ahead, pack, parse_packed, unpack
from adapters.interchange import parse_chunk
from adapters.runtime import spare_survivors, tune_collector
from scripts import histories
from scripts.bench import CLI

CHUNK = 5000  # lines parsed, then checked, together (as the CLI's import does)
WRITER = "floor"
# The importing process's parts: (where, what it does).
MAIN_PARTS = {
    "read what a chunk touches": "service.recording.Batch.__init__",
    "the domain's rules": "service.recording.Batch.run",
    "complete states, write events and ids": "service.application.Deplatforming._insert",
    "freeze what it keeps in memory": "domain.subjects.Subject.freeze",
    "keep checkpoints": "service.application.Deplatforming._keep",
}


def per_event(work: Callable[[], Any], events: int, repeat: int = 3) -> float:
    """The fastest of `repeat` runs, in microseconds per event."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings) / events * 1e6


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


def timed(spent: dict[str, float], name: str, target: str) -> Any:
    """`target` (a function's dotted path) patched to add the seconds it takes to `spent`."""
    module, _, attribute = target.rpartition(".")
    owner_path, _, owner_name = module.rpartition(".")
    owner = getattr(__import__(owner_path, fromlist=[owner_name]), owner_name)
    original = getattr(owner, attribute)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - started

    return patch.object(owner, attribute, wrapper)


def worker_side(chunks: list[list[tuple[int, str]]], n: int) -> tuple[dict[str, float], list]:
    """The parsing worker's parts, in microseconds per event, and the chunks it packs."""
    parsed = [parse_chunk(chunk) for chunk in chunks]
    facts = [p.fact for chunk in parsed for p in chunk if p.fact is not None]
    rows = {
        "validate, derive id and digest": per_event(lambda: [parse_chunk(c) for c in chunks], n),
        "encode states ahead": per_event(lambda: [encoded_ahead(f, WRITER) for f in facts], n),
    }
    with patch("adapters.import_lines.encoded_ahead", lambda fact, writer: b""):
        rows["pack"] = per_event(lambda: [pack(p, WRITER) for p in parsed], n)
    packed = [parse_packed(chunk, WRITER) for chunk in chunks]
    return rows, packed


def main_side(url: str, packed: list[bytes], n: int) -> tuple[dict[str, float], float]:
    """The importing process's parts, in microseconds per event, and its whole time."""
    spent: dict[str, float] = defaultdict(float)
    services = open_services(url, embedded=False)

    def unpacked() -> Iterator[list[Any]]:
        for chunk in packed:
            started = time.perf_counter()
            facts = [p.fact for p in unpack(chunk) if p.fact is not None]
            spent["unpack"] += time.perf_counter() - started
            yield facts
            spare_survivors()  # as the CLI does

    try:
        with ExitStack() as stack:
            for name, target in MAIN_PARTS.items():
                stack.enter_context(timed(spent, name, target))
            started = time.perf_counter()
            outcome = services.app.import_stream(unpacked(), recorded_by=WRITER)
            whole = time.perf_counter() - started
    finally:
        services.close()
    assert outcome.committed and not outcome.rejected
    rows = {"unpack": spent.pop("unpack")} | {name: spent[name] for name in MAIN_PARTS}
    rows["the rest (transaction, commit)"] = whole - sum(rows.values())
    return {k: v / n * 1e6 for k, v in rows.items()}, whole / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--subjects", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target", type=float, default=30_000, help="events/s to judge by")
    args = parser.parse_args()
    tune_collector()  # as the CLI does
    with tempfile.TemporaryDirectory(prefix="floor-") as directory:  # the stores it writes
        measure(args, directory)


def measure(args: argparse.Namespace, directory: str) -> None:
    n = args.events
    lines = [orjson.dumps(f).decode() for f in histories.history(n, args.subjects, args.seed)]
    numbered = list(enumerate(lines, start=1))
    chunks = [numbered[i : i + CHUNK] for i in range(0, n, CHUNK)]
    worker, packed = worker_side(chunks, n)
    importing, whole = main_side(f"sqlite:///{directory}/store.db", packed, n)

    cores = os.cpu_count() or 1
    start = startup(directory)
    budget = (n / args.target - start) / n * 1e6
    width = max(map(len, [*worker, *importing])) + 2
    print(f"{n:,} events over {args.subjects:,} subjects, {cores} cores, us per event (SQLite)")
    for side, rows in (("parsing worker", worker), ("importing process", importing)):
        print(f"{side}:")
        for name, micros in rows.items():
            print(f"  {name:<{width}} {micros:6.1f}")
        print(f"  {'in all':<{width}} {sum(rows.values()):6.1f}")
    slower = max(sum(worker.values()), whole)
    print(f"CLI start: {start:.2f} s")
    print(f"the slower side sets the pace: {slower:.1f} us per event, {1e6 / slower:,.0f} events/s")
    print(f"target {args.target:,.0f} events/s: {budget:.1f} us per event once started")


if __name__ == "__main__":
    main()
