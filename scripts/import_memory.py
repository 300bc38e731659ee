"""The import's memory against the size of its file: a history with hot subjects (Zipf
sizes, late facts, retractions) imported whole through the CLI, with the peak resident set
of each of its processes (the import, and the worker that parses a large file), beside the
same import of a twentieth of the file as the baseline.

    uv run python scripts/import_memory.py                        # 1,150,000 lines, 203 MB
    uv run python scripts/import_memory.py --events 40000 --subjects 1000   # CI's short run

The reliability target is a peak under 500 MB for a 200 MB file (`--limit`); the ratio
says how memory grows with the file (1.0: not at all).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts import histories
from scripts.bench import CLI, POSTGRES, descendants, drop, fresh_store, high_water_kb

SAMPLE = 0.05  # seconds between readings of the processes' high-water marks
BASELINE_SHARE = 20  # the baseline imports a twentieth of the file
TARGET_FILE_MB = 200  # a file this large or larger is judged against `--limit`


def import_peak(path: Path, url: str) -> tuple[float, float]:
    """Imports a file into a fresh store through the CLI: its wall time and the largest
    peak resident set (MB) of any of its processes."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [CLI, "import", str(path), "--no-projections", "--json", "--database-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peaks: dict[int, int] = {}
    while process.poll() is None:
        for pid in descendants(process.pid):
            peaks[pid] = max(peaks.get(pid, 0), high_water_kb(pid))
        time.sleep(SAMPLE)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"deplatform import failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, max(peaks.values(), default=0) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_150_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=500.0, help="Peak RSS target, MB.")
    parser.add_argument("--database-url", default=POSTGRES, help="PostgreSQL for its runs.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="import-memory-") as folder:
        whole = histories.write(Path(folder) / "whole.jsonl", args.events, args.subjects, args.seed)
        lines = whole.read_bytes().splitlines(keepends=True)
        part = Path(folder) / "part.jsonl"
        part.write_bytes(b"".join(lines[: len(lines) // BASELINE_SHARE]))
        size = whole.stat().st_size / 1e6
        print(f"{len(lines):,} lines, {size:,.0f} MB, {args.subjects:,} subjects ({args.store})")
        runs = {}
        for name, path in (("baseline (a twentieth)", part), ("whole file", whole)):
            url = fresh_store(args.store, args.database_url)
            try:
                runs[name] = import_peak(path, url)
            finally:
                drop(url)
    base_peak, peak = (top for _, top in runs.values())
    for name, (took, top) in runs.items():
        print(f"  {name:<24} {took:8.1f} s   peak RSS {top:7.0f} MB")
    verdict = "met" if peak < args.limit else f"not met by {peak - args.limit:,.0f} MB"
    print(
        f"  peak RSS, whole / baseline: {peak / base_peak:.2f}x for {BASELINE_SHARE}x the lines; "
        f"target under {args.limit:,.0f} MB for a 200 MB file: "
        + (verdict if size >= TARGET_FILE_MB else f"not measured (the file is {size:,.0f} MB)")
    )


if __name__ == "__main__":
    main()
