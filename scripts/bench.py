"""Benchmark: every cost of the tracker beside a raw baseline measured in the same run.

    uv run python scripts/bench.py [--events 50000] [--subjects 2000]
        [--store sqlite|postgresql|both] [--seed 7] [--json FILE] [--repeat 3]

The history (`scripts/histories.py`) has Zipf-like subject sizes (a few hot subjects),
about 10% of facts recorded late and some retractions. It is imported in three parts
(10%, 40% and 50% of it) so that reads are measured as the history grows; the machine is
shared and noisy, so each row is a median and its ratio to a baseline taken in the same
run is the figure to compare. The reference run is `--events 1000000 --subjects 10000`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import queue
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.composition import Services, open_services
from adapters.interchange import to_new_fact
from adapters.runtime import tune_collector
from domain.clock import iso, now
from domain.platform import Platform
from domain.values import SubjectKey
from scripts import histories
from service.application import ConcurrentWrites

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CLI = str(Path(sys.executable).with_name("deplatform"))
PARTS = (0.1, 0.5, 1.0)  # the shares of the history imported before each read measurement
LATE_WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC))


@dataclass
class Row:
    name: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """The project's figure as a share of the baseline's (1.0: as fast as the baseline)."""
        if not self.baseline or not self.figure:
            return None
        return self.figure / self.baseline if self.higher_is_better else self.baseline / self.figure


def latency(name: str, seconds: float) -> Row:
    return Row(name, seconds * 1e3, "ms", higher_is_better=False)


@dataclass
class Store:
    kind: str
    url: str
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = f"{row.ratio:.3f}x" if row.ratio is not None else ""
        base = f"{row.baseline:,.1f} ({row.baseline_name})" if row.baseline else ""
        print(
            f"  {self.kind:<10} {row.name:<34} {row.figure:>12,.2f} {row.unit:<10} "
            f"{base:<38} {ratio:>8} {row.note}",
            flush=True,
        )


# Stores ------------------------------------------------------------------------------------


def fresh_store(kind: str, base: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/store.db"
    return f"{base}?schema=bench_{uuid.uuid4().hex[:10]}"


def drop(url: str) -> None:
    if url.startswith("sqlite"):
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)
        return
    base, schema = url.split("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def raw_connection(url: str) -> Iterator[tuple[object, str, str]]:
    """A plain DB-API connection to the store, its parameter mark and the scratch table."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        yield conn, "?", "bench_raw"
    else:
        base, schema = url.split("?schema=")
        conn = psycopg.connect(base)
        yield conn, "%s", f'"{schema}".bench_raw'
    conn.close()


def stored_rows(services: Services) -> list[tuple]:
    """The store's events as rows (id, version, topic, state): what a raw insert writes."""
    rows = []
    after = 0
    recorder = services.app.recorder
    while page := recorder.select_notifications(after, 10_000, inclusive_of_start=False):
        rows += [(str(n.originator_id), n.originator_version, n.topic, n.state) for n in page]
        after = page[-1].id
    return rows


def raw_insert(url: str, rows: list[tuple]) -> float:
    """Baseline: the same rows, one `executemany` in one transaction, into a scratch table."""
    with raw_connection(url) as (conn, mark, table):
        blob = "BLOB" if mark == "?" else "BYTEA"
        cursor = conn.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(
            f"CREATE TABLE {table} (originator_id TEXT, originator_version BIGINT, "
            f"topic TEXT, state {blob}, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.commit()  # type: ignore[attr-defined]
        started = time.perf_counter()
        cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join([mark] * 4)})", rows)
        conn.commit()  # type: ignore[attr-defined]
        seconds = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {table}")
        conn.commit()  # type: ignore[attr-defined]
    return seconds


def raw_copy(url: str, rows: list[tuple]) -> float:
    """Baseline (PostgreSQL): the same rows through `COPY`, in one transaction."""
    with raw_connection(url) as (conn, _, table):
        assert isinstance(conn, psycopg.Connection)
        conn.execute(
            f"CREATE TABLE {table} (originator_id TEXT, originator_version BIGINT, "
            "topic TEXT, state BYTEA, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    return seconds


def raw_commits(url: str, rows: list[tuple]) -> list[float]:
    """Baseline: one INSERT and COMMIT per row; the latency of each."""
    times = []
    with raw_connection(url) as (conn, mark, table):
        blob = "BLOB" if mark == "?" else "BYTEA"
        cursor = conn.cursor()  # type: ignore[attr-defined]
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"CREATE TABLE {table} (id TEXT, v BIGINT, topic TEXT, state {blob})")
        conn.commit()  # type: ignore[attr-defined]
        for row in rows:
            started = time.perf_counter()
            cursor.execute(f"INSERT INTO {table} VALUES ({', '.join([mark] * 4)})", row)
            conn.commit()  # type: ignore[attr-defined]
            times.append(time.perf_counter() - started)
        cursor.execute(f"DROP TABLE {table}")
        conn.commit()  # type: ignore[attr-defined]
    return times


# Measuring ---------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[float, float, float]:
    """Runs the CLI; its wall time, the largest peak RSS of its processes (MB) and the sum of
    their peaks (MB: the most they can have held at once; an import's parsing worker and a
    rebuild's deriving workers run beside the CLI's own process). Each peak is the process's
    own high-water mark, read while it runs: what `wait4` reports would include this
    process's memory, which Linux carries into a child's maximum across fork and exec."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=errors)
        peaks: dict[int, int] = {}
        while process.poll() is None:
            for pid in descendants(process.pid):
                peaks[pid] = max(peaks.get(pid, 0), high_water_kb(pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"deplatform {args[0]} failed: {errors.read().decode()[-2000:]}")
    return seconds, max(peaks.values(), default=0) / 1024, sum(peaks.values()) / 1024


def descendants(pid: int) -> list[int]:
    """The process and every process under it, while they run."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return found


def high_water_kb(pid: int) -> int:
    """A running process's peak resident set (VmHWM), in kB; 0 once it has gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def read_and_decode(services: Services) -> float:
    """Baseline for a rebuild: every stored event read and decoded by the library's mapper."""

    def read() -> None:
        after = 0
        recorder, mapper = services.app.recorder, services.app.mapper
        while page := recorder.select_notifications(after, 500, inclusive_of_start=False):
            [mapper.to_domain_event(n) for n in page]
            after = page[-1].id

    return timed(read)


def subjects_of(lines: list[str]) -> list[SubjectKey]:
    """The subjects these lines name (retractions name none)."""
    keys = set()
    for line in lines:
        fact = json.loads(line)
        if fact["type"] != "EventRetracted":
            keys.add(SubjectKey.parse(fact.get("platform") or fact["account"]))
    return sorted(keys, key=str)


def as_of_reads(services: Services, keys: list[SubjectKey], rnd: random.Random) -> list[float]:
    """Latencies of a status at a random moment for a random subject (in process)."""
    times = []
    for _ in range(400):
        key = rnd.choice(keys)
        moment = histories.START + (histories.END - histories.START) * rnd.random()
        started = time.perf_counter()
        with contextlib.suppress(LookupError):  # before a platform's registration
            services.queries.status(key, moment)
        times.append(time.perf_counter() - started)
    return times


def every_subject(services: Services) -> list[float]:
    moments = [histories.END - timedelta(days=400 * i) for i in range(5)]
    return [timed(lambda m=m: services.queries.statuses(m)) for m in moments]


def known_at_rows(services: Services, url: str) -> list[Row]:
    """The CLI's answers as the store knew them halfway through the history (`--known-at`)
    against the same answers about now, in the same run; and the rows the read models hold
    for each event (a late fact supersedes rows, which stay for earlier `known_at`s)."""
    head = services.app.head()
    known = services.app.recorded_at(head // 2)
    assert known is not None
    moment = iso(histories.END)
    questions = {
        "every subject at T (CLI)": ["status", "--all", "--as-of", moment, "--json"],
        "hottest status at T (CLI)": ["status", histories.HOTTEST, "--as-of", moment, "--json"],
    }
    rows = []
    for name, question in questions.items():
        now_times, known_times = [], []
        for _ in range(3):  # alternated, so that the machine's noise falls on both
            now_times.append(run_cli(*question, "--database-url", url)[0])
            known_times.append(
                run_cli(*question, "--known-at", iso(known), "--database-url", url)[0]
            )
        rows.append(
            Row(
                f"{name}, --known-at",
                statistics.median(known_times) * 1e3,
                "ms",
                statistics.median(now_times) * 1e3,
                "without --known-at",
                higher_is_better=False,
            )
        )
    tables = services.view.tables()
    with services.view.reading() as c:
        stored = 0
        for name in ("periods", "intervals"):
            services.view.execute(c, f"SELECT COUNT(*) AS n FROM {tables[name]}")
            stored += int(dict(c.fetchone())["n"])
    rows.append(Row("read-model rows per event", stored / head, "rows", higher_is_better=False))
    return rows


# Validation, in the domain alone ------------------------------------------------------------


def late_fact_seconds(size: int, late: int = 1000, seed: int = 7) -> float:
    """Median time to validate and add one late fact (a service cut or restored at a random
    moment of the past) to a platform that already has `size` facts."""
    rnd = random.Random(seed)
    subject = Platform.track(SubjectKey.platform("bench"), now())
    start = moment = datetime(2000, 1, 1, tzinfo=UTC)
    record = partial(subject.record, now=datetime.now(UTC), reason=None, sources=[], note=None)
    registration = {"name": "Bench", "hosting_provider": "host-0", "registrar": None}
    record(
        "PlatformRegistered",
        event_id="r",
        occurred_at=moment,
        app_stores=["google_play"],
        **registration,
    )
    steps = ["AppStoreRemoved", "AppStoreReinstated"]
    for n in range(size - 1):
        moment += timedelta(hours=1)
        record(
            steps[n % 2], event_id=f"s{n}", occurred_at=moment, provider="G", store="google_play"
        )
    times = []
    for n in range(late):
        at = start + (moment - start) * rnd.random()
        kind = ("ServiceTerminated", "ServiceRestored")[n % 2]
        started = time.perf_counter()
        record(kind, event_id=f"late{n}", occurred_at=at, provider="Stripe", service="payments")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# Record, alone and concurrently ------------------------------------------------------------


def record_facts(platforms: list[str], count: int, seed: int, tag: str) -> list[dict]:
    """Facts that are always valid, landing late in their platform's timeline: a service
    restored at a random moment of 2024-2025 (a fifth of them on the hottest platform)."""
    rnd = random.Random(seed)
    start, end = LATE_WINDOW
    facts = []
    for i in range(count):
        slug = platforms[0] if rnd.random() < 0.2 else rnd.choice(platforms)
        moment = start + (end - start) * rnd.random()
        facts.append(
            {
                "type": "ServiceRestored",
                "platform": slug,
                "event_id": f"bench-{tag}-{i}",
                "occurred_at": moment.isoformat(),
                "provider": "Stripe",
                "service": "payments",
            }
        )
    return facts


def writer(url: str, facts: list[dict], start: threading.Event | None, out: object) -> None:
    """One writer process: records its facts one per call; sends back each call's latency."""
    services = open_services(url, embedded=False)
    new = [to_new_fact(f) for f in facts]
    if start is not None:
        start.wait()  # type: ignore[attr-defined]
    times, gave_up = [], 0
    for fact in new:
        started = time.perf_counter()
        try:
            outcome = services.app.record([fact])
        except ConcurrentWrites:
            gave_up += 1
            continue
        times.append(time.perf_counter() - started)
        if not outcome.committed:
            raise SystemExit(f"a bench record was refused: {outcome.rejected}")
    services.close()
    out.put((times, gave_up))  # type: ignore[attr-defined]


def concurrent_record(url: str, platforms: list[str], writers: int, each: int, seed: int):
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [
        context.Process(
            target=writer,
            args=(url, record_facts(platforms, each, seed + n, f"w{writers}-{n}"), start, out),
        )
        for n in range(writers)
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # every writer has opened the store
    began = time.perf_counter()
    start.set()
    latencies, gave_up = [], 0
    for _ in processes:
        while True:
            try:
                times, failed = out.get(timeout=1)
                latencies, gave_up = latencies + times, gave_up + failed
                break
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise SystemExit("a writer process failed (its error is above)") from None
    seconds = time.perf_counter() - began
    for process in processes:
        process.join()
    return len(latencies) / seconds, latencies, gave_up


def fresh_process_records(url: str, lines: list[str], rounds: int, seed: int) -> list[Row]:
    """One fact recorded by the CLI (a fresh process, its start included) into the hottest
    platform, against the same into a platform of about 10 facts, alternated; with the read
    models brought up to date by the same process (as by default), and without."""
    sizes: dict[str, int] = {}
    for line in lines:
        slug = json.loads(line).get("platform")
        if slug is not None:
            sizes[slug] = sizes.get(slug, 0) + 1
    small = min(sizes, key=lambda slug: (abs(sizes[slug] - 10), slug))
    facts = iter(record_facts([histories.HOTTEST], 4 * rounds, seed, "fresh"))
    rows = []
    for flags in ((), ("--no-projections",)):
        times: dict[str, list[float]] = {histories.HOTTEST: [], small: []}
        for _ in range(rounds):
            for slug in times:
                event = next(facts) | {"platform": slug}
                event = json.dumps(event)
                times[slug].append(
                    run_cli("record", "--json-event", event, *flags, "--database-url", url)[0]
                )
        hot, base = (statistics.median(times[slug]) for slug in times)
        rows.append(
            Row(
                f"record, fresh process{', no projections' if flags else ''}",
                hot * 1e3,
                "ms",
                base * 1e3,
                f"a {sizes[small]}-fact platform",
                higher_is_better=False,
                note=f"hottest ({sizes[histories.HOTTEST]:,} facts)",
            )
        )
    return rows


# HTTP --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_rates(url: str, keys: list[SubjectKey], clients: int, seconds: float) -> dict:
    """Requests/s and p99 of a status at T over HTTP, and of a trivial endpoint, with several
    clients against the real server (read-only, following no stream)."""
    port = free_port()
    server = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--no-projections", "--database-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/livez").status_code == 200:
                    break
            time.sleep(0.2)
        figures = {}
        for name, path in (
            ("trivial", lambda rnd: "/livez"),
            (
                "status",
                lambda rnd: (
                    f"/subjects/{rnd.choice(keys).key}/status?as_of="
                    + (histories.START + (histories.END - histories.START) * rnd.random())
                    .isoformat()
                    .replace("+00:00", "Z")
                ),
            ),
        ):
            latencies: list[float] = []
            stop = time.monotonic() + seconds

            def client(n: int, path=path, stop=stop, latencies=latencies) -> None:
                rnd = random.Random(n)
                with httpx.Client(base_url=base) as http:
                    while time.monotonic() < stop:
                        started = time.perf_counter()
                        http.get(path(rnd))
                        latencies.append(time.perf_counter() - started)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            figures[name] = (len(latencies) / seconds, percentile(latencies, 0.99))
        return figures
    finally:
        server.terminate()
        server.wait(10)


# The run -----------------------------------------------------------------------------------


def bench_store(kind: str, args: argparse.Namespace, history: Path, lines: list[str]) -> Store:
    url = fresh_store(kind, args.database_url)
    store = Store(kind, url)
    total = len(lines)
    try:
        imported = 0
        import_seconds, import_rss, import_all = 0.0, 0.0, 0.0
        reads: dict[float, tuple[float, float, float]] = {}
        services = open_services(url, embedded=False)
        keys: list[SubjectKey] = []
        for share in PARTS:
            upto = int(total * share)
            part = history.with_name(f"{history.stem}-{kind}-{share}.jsonl")
            part.write_text("".join(lines[imported:upto]))
            seconds, rss, every = run_cli(
                "import", str(part), "--no-projections", "--database-url", url
            )
            part.unlink()
            import_seconds += seconds
            import_rss, import_all = max(import_rss, rss), max(import_all, every)
            imported = upto
            backlog = timed(services.runner.catch_up)
            if share == PARTS[-1]:
                store.add(Row("project a backlog (runner)", total / backlog, "events/s"))
            keys = subjects_of(lines[: min(upto, 20_000)])
            rnd = random.Random(args.seed)
            single = as_of_reads(services, keys, rnd)
            everyone = every_subject(services)
            reads[share] = (
                percentile(single, 0.5),
                percentile(single, 0.99),
                statistics.median(everyone),
            )
        rows = stored_rows(services)
        executemany = statistics.median(raw_insert(url, rows) for _ in range(args.repeat))
        store.add(
            Row(
                "import (CLI, 3 files)",
                total / import_seconds,
                "events/s",
                total / executemany,
                "executemany",
                note=f"peak RSS {import_rss:,.0f} MB ({import_all:,.0f} MB in all)",
            )
        )
        if kind == "postgresql":
            copy = statistics.median(raw_copy(url, rows) for _ in range(args.repeat))
            store.add(
                Row("import vs COPY", total / import_seconds, "events/s", total / copy, "COPY")
            )
        decode = statistics.median(read_and_decode(services) for _ in range(args.repeat))
        rebuild_seconds, rebuild_rss, rebuild_all = run_cli(
            "projections", "rebuild", "--database-url", url
        )
        store.add(
            Row(
                "rebuild (CLI)",
                len(rows) / rebuild_seconds,
                "events/s",
                len(rows) / decode,
                "read+decode",
                note=f"peak RSS {rebuild_rss:,.0f} MB ({rebuild_all:,.0f} MB in all)",
            )
        )
        services.view.follow_active()
        for row in known_at_rows(services, url):
            store.add(row)
        for share, (p50, p99, everyone) in reads.items():
            store.add(
                Row(f"status at T, {share:.0%} (p50)", p50 * 1e3, "ms", higher_is_better=False)
            )
            store.add(
                Row(f"status at T, {share:.0%} (p99)", p99 * 1e3, "ms", higher_is_better=False)
            )
            store.add(
                Row(
                    f"every subject at T, {share:.0%}", everyone * 1e3, "ms", higher_is_better=False
                )
            )
        half, whole = reads[0.5][0], reads[1.0][0]
        store.add(
            Row("status p50: 100% / 50% of history", whole / half, "x", higher_is_better=False)
        )

        platforms = sorted({k.key for k in keys if k.kind == "platform"})
        platforms = [histories.HOTTEST, *platforms]
        facts = [to_new_fact(f) for f in record_facts(platforms, args.records, args.seed, "one")]
        latencies = []
        follow: dict[bool, list[float]] = {True: [], False: []}  # on the hottest platform?
        services.runner.catch_up()
        for fact in facts:
            started = time.perf_counter()
            services.app.record([fact])
            latencies.append(time.perf_counter() - started)
            hot = fact.subject is not None and fact.subject.key == histories.HOTTEST
            follow[hot].append(timed(services.runner.catch_up))
        baseline = raw_commits(url, [r for r in rows[: len(facts)]])
        store.add(
            Row(
                "record one per call (p50)",
                1 / percentile(latencies, 0.5),
                "events/s",
                1 / percentile(baseline, 0.5),
                "INSERT+COMMIT",
                note=f"p99 {percentile(latencies, 0.99) * 1e3:.1f} ms",
            )
        )
        hot_facts = services.app.index.select_subject_ids(services.app.head()).get(
            SubjectKey.platform(histories.HOTTEST).id, 0
        )
        store.add(
            Row(
                f"runner: a late fact, hottest ({hot_facts:,} facts) (p50)",
                1 / percentile(follow[True], 0.5),
                "pages/s",
                1 / percentile(follow[False], 0.5),
                "on a small platform",
                note=f"p99 {percentile(follow[True], 0.99) * 1e3:.1f} ms",
            )
        )
        # From fresh processes while the read models are up to date (after the writers, each
        # CLI write would first project their backlog).
        for row in fresh_process_records(url, lines, 5, args.seed):
            store.add(row)
        for writers in (1, 2, 4, 8):
            rate, times, gave_up = concurrent_record(
                url, platforms, writers, args.records // 2, args.seed
            )
            store.add(
                Row(
                    f"record, {writers} writer processes",
                    rate,
                    "events/s",
                    note=f"p50 {percentile(times, 0.5) * 1e3:.1f} p99 "
                    f"{percentile(times, 0.99) * 1e3:.1f} p99.9 "
                    f"{percentile(times, 0.999) * 1e3:.1f} ms; {gave_up} gave up",
                )
            )
        services.close()
        http = http_rates(url, keys, clients=4, seconds=args.http_seconds)
        store.add(
            Row(
                "HTTP status at T",
                http["status"][0],
                "req/s",
                http["trivial"][0],
                "/livez",
                note=f"p99 {http['status'][1] * 1e3:.1f} ms "
                f"(trivial {http['trivial'][1] * 1e3:.1f})",
            )
        )
    finally:
        drop(url)
    return store


def machine() -> dict:
    packages = ["eventsourcing", "psycopg", "pydantic", "fastapi", "uvicorn"]
    with contextlib.suppress(Exception), psycopg.connect(POSTGRES) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": locals().get("server"),
        "packages": {name: version(name) for name in packages},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--subjects", type=int, default=2_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each baseline.")
    parser.add_argument("--records", type=int, default=200, help="Events for the record rows.")
    parser.add_argument("--http-seconds", type=float, default=5.0)
    parser.add_argument("--database-url", default=POSTGRES, help="PostgreSQL for its runs.")
    args = parser.parse_args()
    tune_collector()  # the in-process rows run as the CLI and the server do
    folder = Path(tempfile.mkdtemp(prefix="bench-history-"))
    history = histories.write(folder / "history.jsonl", args.events, args.subjects, args.seed)
    lines = history.read_text().splitlines(keepends=True)
    print(
        f"{len(lines):,} events over {args.subjects:,} subjects (seed {args.seed}); "
        f"ratio = the project's figure over the baseline's (higher is better)",
        flush=True,
    )
    small = late_fact_seconds(10)
    for size in (1_000, 100_000):
        print(
            f"  {'domain':<10} {f'late service fact, {size:,} facts':<34} "
            f"{late_fact_seconds(size) * 1e6:>12,.1f} us         "
            f"{small * 1e6:,.1f} (platform of 10 facts)   "
            f"{small / late_fact_seconds(size):.3f}x",
            flush=True,
        )
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    stores = [bench_store(kind, args, history, lines) for kind in kinds]
    shutil.rmtree(folder)
    if args.json:
        report = {
            "machine": machine(),
            "settings": {k: str(v) for k, v in vars(args).items()},
            "stores": {s.kind: [asdict(r) | {"ratio": r.ratio} for r in s.rows] for s in stores},
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
