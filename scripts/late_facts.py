"""Benchmark: what the projection runner pays for late facts, by the length of the subject.

    uv run python scripts/late_facts.py [--sizes 1000 10000 100000] [--late 30]
        [--small 2000] [--pages 5] [--store sqlite|postgresql|both] [--database-url URL]

For each size, a platform whose Google Play listing was removed and reinstated hour after
hour takes late service facts (each within its last 50 facts), recorded one at a time; the
row is the median time the runner takes to apply one (`runner.catch_up()` after its
record), beside the same on the smallest platform, measured in the same run: a ratio near 1
says the cost does not grow with the subject's history. The first late fact, for a subject
the runner does not hold yet, is shown apart. A last row applies pages of 400 late facts on
400 of `--small` platforms of 20 facts each (many small subjects at once).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.composition import Services, open_services
from adapters.interchange import to_new_fact
from adapters.runtime import tune_collector
from scripts.bench import POSTGRES, drop, fresh_store

START = datetime(2000, 1, 1, tzinfo=UTC)
SMALL_FACTS, PAGE = 20, 400


def platform_history(slug: str, size: int) -> list[dict]:
    facts = [
        {
            "type": "PlatformRegistered",
            "platform": slug,
            "name": slug,
            "occurred_at": START.isoformat(),
            "app_stores": ["google_play"],
            "hosting_provider": "H",
        }
    ]
    for n in range(size):
        facts.append(
            {
                "type": ("AppStoreRemoved", "AppStoreReinstated")[n % 2],
                "platform": slug,
                "provider": "G",
                "store": "google_play",
                "occurred_at": (START + timedelta(hours=n + 1)).isoformat(),
            }
        )
    return facts


def late(slug: str, hours: float, service: str) -> dict:
    moment = START + timedelta(hours=hours)
    return {
        "type": "ServiceTerminated",
        "platform": slug,
        "provider": "S",
        "service": service,
        "occurred_at": moment.isoformat(),
    }


def imported(services: Services, facts: list[dict]) -> None:
    parsed = [to_new_fact(f) for f in facts]
    services.app.import_stream(parsed[i : i + 5000] for i in range(0, len(parsed), 5000))
    services.runner.catch_up()


def timed_catch_up(services: Services, facts: list[dict]) -> float:
    services.app.record([to_new_fact(f) for f in facts])
    started = time.perf_counter()
    services.runner.catch_up()
    return time.perf_counter() - started


def one_platform(url: str, size: int, count: int, rnd: random.Random) -> list[float]:
    """Times of `count` late facts on a platform of `size` facts, the first one first."""
    services = open_services(url, embedded=False)
    try:
        imported(services, platform_history("hot", size))
        services.runner.projections[0].subjects.clear()  # the first late fact reads it once
        span = min(50, size)
        return [
            timed_catch_up(services, [late("hot", size - span * rnd.random(), f"s{n % 2}")])
            for n in range(count)
        ]
    finally:
        services.close()


def small_platforms(url: str, count: int, pages: int, rnd: random.Random) -> list[float]:
    services = open_services(url, embedded=False)
    try:
        imported(
            services,
            [f for p in range(count) for f in platform_history(f"p{p}", SMALL_FACTS)],
        )
        return [
            timed_catch_up(
                services,
                [
                    late(f"p{p}", SMALL_FACTS * rnd.random(), f"s{page}")
                    for p in rnd.sample(range(count), min(PAGE, count))
                ],
            )
            for page in range(pages)
        ]
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--late", type=int, default=30, help="Late facts per platform.")
    parser.add_argument("--small", type=int, default=2_000, help="Small platforms.")
    parser.add_argument("--pages", type=int, default=5, help="Pages of the small platforms.")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--database-url", default=POSTGRES, help="PostgreSQL for its runs.")
    args = parser.parse_args()
    tune_collector()  # as the CLI and the server run
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    for kind in kinds:
        rnd = random.Random(7)
        baseline = None
        for size in sorted(args.sizes):
            url = fresh_store(kind, args.database_url)
            try:
                times = one_platform(url, size, args.late, rnd)
            finally:
                drop(url)
            median = statistics.median(times[1:])
            baseline = baseline or median
            print(
                f"{kind:<10} late fact, platform of {size:>7,} facts  p50 {median * 1e3:8.1f} ms"
                f"  (first {times[0] * 1e3:8.1f} ms)  {median / baseline:5.2f}x the "
                f"{min(args.sizes):,}-fact platform's",
                flush=True,
            )
        url = fresh_store(kind, args.database_url)
        try:
            pages = small_platforms(url, args.small, args.pages, rnd)
        finally:
            drop(url)
        print(
            f"{kind:<10} a page of late facts on {min(PAGE, args.small)} platforms of "
            f"{SMALL_FACTS} facts"
            f"  p50 {statistics.median(pages) * 1e3:8.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
