"""Scenario: every public route of a server on a large store answers within its deadline, and
the server is idle again soon after a client leaves a long request.

    uv run python scripts/public_routes.py [--events 100000] [--subjects 10000]
        [--database-url URL] [--deadline 30] [--json FILE]

It writes a synthetic history (`scripts/histories.py`: Zipf-like subjects, late facts,
retractions), imports it, starts `deplatform serve`, and times each public route (the median of
three, with `/livez` measured in the same run as the baseline), printing each answer's status:
a 413 or 422 is an answer (a question too large, said so), a 503 or a time past the deadline is
not. Then it starts the slowest route and leaves after 0.3 s, and measures the CPU time the
server spends in the next second. Exits 1 if a route failed or passed its deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from histories import HOTTEST, history  # a script beside this one

DEPLATFORM = shutil.which("deplatform", path=str(Path(sys.executable).parent)) or "deplatform"
ROUTES = [
    "/livez",
    "/healthz",
    "/status?as_of=2015-01-01",
    "/status?as_of=2015-01-01&known_at=2030-01-01",
    "/platforms?status=offline",
    "/accounts",
    f"/subjects/{HOTTEST}/status?as_of=2015-01-01",
    f"/subjects/{HOTTEST}/history?limit=1000",
    f"/subjects/{HOTTEST}/intervals",
    f"/subjects/{HOTTEST}/intervals?region=BR",
    "/changes?from=2005-01-01&to=2025-01-01",
    "/events?after=0&limit=1000",
    "/",
    f"/subjects/{HOTTEST}",
    "/regions",
    "/regions/BR",
    "/providers",
    "/providers/host-0",
    "/feed.atom",
    "/reports?from=2005-01-01&to=2025-01-01&format=html",
    f"/reports?from=2005-01-01&to=2025-01-01&format=json&subject={HOTTEST}",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """The process's user and system time so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="public-routes-"))
    url = args.database_url or f"sqlite:///{workdir}/store.db"
    env = dict(os.environ, DEPLATFORM_DATABASE_URL=url)
    env["DEPLATFORM_REQUEST_DEADLINE"] = str(args.deadline)
    source = workdir / "history.jsonl"
    with source.open("w") as out:
        for fact in history(args.events, args.subjects, args.seed):
            out.write(json.dumps(fact) + "\n")
    subprocess.run([DEPLATFORM, "import", str(source)], env=env, check=True, timeout=7200)
    port = free_port()
    server = subprocess.Popen(
        [DEPLATFORM, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while not port_open(port):
            if time.monotonic() - started > 120:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        rows = []
        for route in ROUTES:
            answers = [fetch(base + route, args.deadline + 30) for _ in range(3)]
            seconds = statistics.median(t for _, t in answers)
            rows.append({"route": route, "status": answers[-1][0], "seconds": round(seconds, 3)})
        slowest = max(rows, key=lambda row: row["seconds"])
        before = cpu_seconds(server.pid)
        with contextlib.suppress(TimeoutError, urllib.error.URLError):  # the client leaves
            fetch(base + str(slowest["route"]), 0.3)
        left = cpu_seconds(server.pid)
        time.sleep(1)
        after_leaving = cpu_seconds(server.pid) - left
        return {
            "events": args.events,
            "subjects": args.subjects,
            "store": url.split(":")[0],
            "deadline": args.deadline,
            "routes": rows,
            "left": {
                "route": slowest["route"],
                "cpu_while_asked": round(left - before, 3),
                "cpu_in_the_second_after": round(after_leaving, 3),
            },
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--database-url", help="An empty PostgreSQL database (default SQLite).")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON here.")
    args = parser.parse_args()
    found = run(args)
    baseline = next(r["seconds"] for r in found["routes"] if r["route"] == "/livez")
    failed = False
    print(f"{found['subjects']:,} subjects, {found['events']:,} events, {found['store']}")
    print(f"{'route':70} {'status':>6} {'median s':>9} {'x /livez':>9}")
    for row in found["routes"]:
        bad = row["status"] >= 500 or row["seconds"] > args.deadline
        failed = failed or bad
        ratio = row["seconds"] / baseline if baseline else 0
        flag = "  FAILED" if bad else ""
        print(f"{row['route']:70} {row['status']:>6} {row['seconds']:>9.3f} {ratio:>9.0f}{flag}")
    left = found["left"]
    print(
        f"left {left['route']} after 0.3 s: the server then used "
        f"{left['cpu_in_the_second_after']:.2f} s of CPU in the next second"
    )
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
