"""Benchmark: import, read-model rebuild and status lookups, against raw-database baselines
measured in the same run (medians of --repeat runs; the machine is shared and noisy).

    uv run python scripts/bench_store.py [--events 20000] [--database-url URL] [--repeat 3]

Without --database-url each run uses a fresh SQLite file; a PostgreSQL URL gets a fresh
schema per run. Baselines: the same stored events inserted with one raw `executemany`
in one transaction (import), the whole notification log read page by page (rebuild),
and a status folded from the event store (lookup).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from adapters.composition import open_services, rebuild
from adapters.interchange import to_new_fact
from domain.values import Availability, SubjectKey
from service.application import Deplatforming
from service.queries import Queries
from service.recording import NewFact

START = datetime(2015, 1, 1, tzinfo=UTC)


def synthetic_history(events: int, seed: int = 7) -> list[NewFact]:
    """Valid histories: platforms losing and regaining hosts, stores and domains; accounts
    suspended (often for a time), banned and reinstated. About 20 events a subject."""
    rnd = random.Random(seed)
    facts: list[NewFact] = []
    n = 0
    while len(facts) < events:
        n += 1
        moment = START + timedelta(days=rnd.randrange(2000))
        if n % 2:
            slug = f"site-{n}"
            facts.append(
                to_new_fact(
                    {
                        "type": "PlatformRegistered",
                        "platform": slug,
                        "name": slug,
                        "occurred_at": moment.isoformat(),
                        "hosting_provider": "H0",
                        "app_stores": ["apple_app_store", "google_play"],
                    }
                )
            )
            host = "H0"
            for step in range(19):
                moment += timedelta(hours=rnd.randrange(1, 500))
                if step % 4 == 0:
                    kind, extra = "HostingTerminated", {"provider": host}
                elif step % 4 == 1:
                    host = f"H{step}"
                    kind, extra = "HostingRestored", {"provider": host, "scope": "partial"}
                else:
                    kind = "AppStoreRemoved" if step % 4 == 2 else "AppStoreReinstated"
                    extra = {"provider": "Store", "store": "google_play"}
                facts.append(
                    to_new_fact(
                        {"type": kind, "platform": slug, "occurred_at": moment.isoformat(), **extra}
                    )
                )
        else:
            key = f"net:user{n}"
            for step in range(20):
                moment += timedelta(hours=rnd.randrange(1, 500))
                kind = [
                    "AccountSuspended",
                    "AccountReinstated",
                    "AccountBanned",
                    "AccountReinstated",
                ][step % 4]
                facts.append(
                    to_new_fact(
                        {
                            "type": kind,
                            "account": key,
                            "provider": "Net",
                            "occurred_at": moment.isoformat(),
                        }
                    )
                )
    return facts[:events]


def fresh_url(base: str | None) -> str:
    if base is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/store.db"
    return f"{base}?schema=bench_{uuid.uuid4().hex[:10]}"


def drop(url: str) -> None:
    """Removes a run's store: its schema on PostgreSQL, its folder on SQLite."""
    if url.startswith("sqlite"):
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)
        return
    base, schema = url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def raw_insert(app: Deplatforming) -> float:
    """The same stored events, inserted with one executemany into a scratch table."""
    stored = [
        (n.originator_id, n.originator_version, n.topic, n.state)
        for n in app.recorder.select_notifications(0, 10**9, inclusive_of_start=False)
    ]
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    sqlite = "sqlite" in type(datastore).__module__
    table = "bench_raw" if sqlite else f'"{datastore.schema}".bench_raw'
    mark = "?" if sqlite else "%s"
    rows = [(str(i), v, t, s) for i, v, t, s in stored]

    def insert() -> None:
        with datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE {table} (originator_id TEXT, originator_version BIGINT, "
                "topic TEXT, state BYTEA)".replace("BYTEA", "BLOB" if sqlite else "BYTEA")
            )
            c.executemany(f"INSERT INTO {table} VALUES ({', '.join([mark] * 4)})", rows)

    return timed(insert)


def read_log(app: Deplatforming) -> float:
    def read() -> None:
        after = 0
        while page := app.recorder.select_notifications(after, 500, inclusive_of_start=False):
            [app.mapper.to_domain_event(n) for n in page]
            after = page[-1].id

    return timed(read)


def lookups(queries: Queries, keys: list[SubjectKey], rnd: random.Random) -> list[float]:
    moments = [START + timedelta(days=rnd.randrange(2500)) for _ in keys]
    times = []
    for key, moment in zip(keys, moments, strict=True):
        started = time.perf_counter()
        with contextlib.suppress(LookupError):  # a platform before its registration
            queries.status(key, moment, None)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    facts = synthetic_history(args.events)
    keys = sorted({f.subject for f in facts if f.subject}, key=lambda k: k.key)
    figures: dict[str, list[float]] = defaultdict(list)
    for run in range(args.repeat):
        url = fresh_url(args.database_url)
        services = open_services(url, embedded=False)  # the import without projecting
        app = services.app
        started = time.perf_counter()
        outcome = app.record(facts)
        figures["import"].append(time.perf_counter() - started)
        if not outcome.committed or len(outcome.recorded) != len(facts):
            raise SystemExit(f"the synthetic history did not import: {outcome.rejected[:3]}")
        figures["raw insert"].append(raw_insert(app))
        figures["read log"].append(read_log(app))
        figures["rebuild"].append(timed(lambda s=services: rebuild(s)))
        sample = random.Random(run).sample(keys, min(200, len(keys)))
        moment = START + timedelta(days=1000)
        ports = services.queries
        for name, queries in (("read models", ports.read_models), ("fold", ports.fold)):
            lookup = statistics.median(lookups(queries, sample, random.Random(run)))
            figures[f"lookup ({name})"].append(lookup)
            offline = timed(lambda q=queries, t=moment: q.statuses(t, None, Availability.OFFLINE))
            figures[f"offline ({name})"].append(offline)
        services.close()
        drop(url)
    median = {k: statistics.median(v) for k, v in figures.items()}
    store = args.database_url or "sqlite (fresh file per run)"
    print(f"{args.events} events, {len(keys)} subjects, {store}, median of {args.repeat} runs")
    print(
        f"  import          {args.events / median['import']:>9,.0f} events/s   "
        f"baseline raw executemany {args.events / median['raw insert']:>9,.0f} rows/s   "
        f"{median['import'] / median['raw insert']:.1f}x slower"
    )
    print(
        f"  rebuild         {args.events / median['rebuild']:>9,.0f} events/s   "
        f"baseline raw log read    {args.events / median['read log']:>9,.0f} events/s "
        f"{median['rebuild'] / median['read log']:.1f}x slower"
    )
    print(
        f"  status of one   {median['lookup (read models)'] * 1e3:>9.2f} ms         "
        f"baseline fold            {median['lookup (fold)'] * 1e3:>9.2f} ms       "
        f"{median['lookup (fold)'] / median['lookup (read models)']:.1f}x faster"
    )
    print(
        f"  all offline at T{median['offline (read models)'] * 1e3:>9.2f} ms         "
        f"baseline fold            {median['offline (fold)'] * 1e3:>9.2f} ms       "
        f"{median['offline (fold)'] / median['offline (read models)']:.1f}x faster"
    )


if __name__ == "__main__":
    main()
