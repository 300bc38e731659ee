"""Scenario: a server started on a store whose read models were never built answers at
once, says how far behind it is, and stops promptly on SIGTERM keeping what it applied.

    uv run python scripts/unprojected_server.py [--events 200000] [--subjects 10000]
        [--database-url URL] [--json]

It writes a synthetic history (a few hot platforms, many small ones; every fact valid)
with `deplatform import --no-projections`, starts `deplatform serve`, and measures:
the time from the port opening to the first `/healthz` answer, the lag it reports, the
time a status read takes, and the time from SIGTERM to exit. Exits 1 if `/healthz` took
more than 1 s, a read more than 5 s, or stopping more than 5 s (or nothing was applied).
The test suite runs it with 20,000 events; the README quotes a 200,000-event run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEPLATFORM = shutil.which("deplatform", path=str(Path(sys.executable).parent)) or "deplatform"
START = datetime(2010, 1, 1, tzinfo=UTC)


def history(events: int, subjects: int, seed: int = 7) -> list[dict]:
    """Platforms losing and regaining their host, with Zipf-like sizes (a few hot ones)."""
    rnd = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(subjects)]
    counts = [0] * subjects
    for subject in rnd.choices(range(subjects), weights, k=events - subjects):
        counts[subject] += 1
    lines = []
    for subject, count in enumerate(counts):
        slug = f"site-{subject}"
        moment = START + timedelta(minutes=rnd.randrange(1000))
        lines.append(
            {
                "type": "PlatformRegistered",
                "platform": slug,
                "name": slug,
                "occurred_at": moment.isoformat(),
                "hosting_provider": "H",
            }
        )
        for n in range(count):
            moment += timedelta(minutes=1 + rnd.randrange(600))
            kind = "HostingTerminated" if n % 2 == 0 else "HostingRestored"
            lines.append(
                {"type": kind, "platform": slug, "occurred_at": moment.isoformat(), "provider": "H"}
            )
    return lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 30) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def run(events: int, subjects: int, database_url: str | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="unprojected-"))
    url = database_url or f"sqlite:///{workdir}/store.db"
    env = dict(os.environ, DEPLATFORM_DATABASE_URL=url)
    source = workdir / "history.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in history(events, subjects)))
    started = time.perf_counter()
    subprocess.run(
        [DEPLATFORM, "import", str(source), "--no-projections"],
        env=env,
        check=True,
        timeout=3600,
        stdout=subprocess.DEVNULL,
    )
    imported = time.perf_counter() - started

    port = free_port()
    server = subprocess.Popen(
        [DEPLATFORM, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        opened = time.perf_counter()
        _, _, health = get(f"http://127.0.0.1:{port}/healthz")
        healthz = time.perf_counter() - opened
        asked = time.perf_counter()
        status, headers, _ = get(f"http://127.0.0.1:{port}/subjects/site-0/status")
        read = time.perf_counter() - asked
        time.sleep(1)  # let the runner apply a page or more
        stopping = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        stopped = time.perf_counter() - stopping
    finally:
        if server.poll() is None:
            server.kill()
    after = subprocess.run(
        [DEPLATFORM, "projections", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    kept = json.loads(after.stdout)
    return {
        "events": events,
        "subjects": subjects,
        "store": url.split("://")[0],
        "import_seconds": round(imported, 2),
        "healthz_seconds": round(healthz, 3),
        "lag_reported": health["projection"]["lag"],
        "status_read_seconds": round(read, 3),
        "status_read_answer": status,
        "status_read_lag_header": headers.get("x-read-models-lag"),
        "stop_seconds": round(stopped, 2),
        "exit_code": server.returncode,
        "position_kept": kept["position"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--database-url")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.events, min(args.subjects, args.events), args.database_url)
    print(json.dumps(figures) if args.json else "\n".join(f"{k}: {v}" for k, v in figures.items()))
    ok = (
        figures["healthz_seconds"] < 1
        and figures["lag_reported"] > 0
        and figures["status_read_seconds"] < 5
        and figures["stop_seconds"] < 5
        and figures["exit_code"] in (0, -signal.SIGTERM)  # uvicorn re-raises it once stopped
        and figures["position_kept"] > 0
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
