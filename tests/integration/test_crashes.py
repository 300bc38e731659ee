"""Processes killed with SIGKILL at moments of their work: an import, the projection runner
and a rebuild. The store is left exactly before or after, the read models resume to what a
rebuild gives, and a killed rebuild leaves nothing once the next one has run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from adapters.composition import open_services, rebuild
from scripts.bench import descendants
from tests.helpers import DEPLATFORM, example_facts, exported
from tests.integration.test_read_models import dump

HISTORIES = Path(__file__).resolve().parents[2] / "scripts" / "histories.py"
KILL_AFTER = (1.2, 2.5)  # seconds after start: while the command is at work


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A valid history of 20,000 events (hot subjects, late facts, retractions)."""
    path = tmp_path_factory.mktemp("history") / "history.jsonl"
    with path.open("w") as out:
        subprocess.run(
            [sys.executable, HISTORIES, "--events", "20000", "--subjects", "400"],
            stdout=out,
            check=True,
        )
    return path


def killed(command: list[str], after: float, begun: Callable[[], bool] = lambda: True) -> bool:
    """Runs a command and kills it `after` seconds after `begun()` says it has begun its work
    (or after a minute); says whether it was still running."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    give_up = time.monotonic() + 60
    while not begun() and process.poll() is None and time.monotonic() < give_up:
        time.sleep(0.05)
    time.sleep(after)
    running = process.poll() is None
    workers = descendants(process.pid)[1:]  # a parsing worker, deriving workers
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in workers if runs(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, "a worker outlived the process that started it"
    return running


def runs(pid: int) -> bool:
    """Whether a process is there and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def deplatform(*args: str, database_url: str) -> list[str]:
    return [DEPLATFORM, *args, "--database-url", database_url]


def stored_ids(database_url: str) -> Counter[str]:
    with open_services(database_url, embedded=False) as services:
        return Counter(record["event_id"] for record in exported(services))


@pytest.mark.parametrize("skip_invalid", [False, True], ids=["atomic", "skip-invalid"])
def test_an_import_killed_at_work_leaves_the_store_before_or_complete_and_a_rerun_completes(
    database_url, history, tmp_path, skip_invalid
):
    with open_services(database_url) as services:
        services.record(example_facts())
    before = stored_ids(database_url)
    lines = history.read_text().splitlines()
    if skip_invalid:  # some lines a skipping import leaves out
        lines[100:100] = ['{"type": "Nope"}', "not json"]
    source = tmp_path / "import.jsonl"
    source.write_text("\n".join(lines) + "\n")
    complete = len(before) + 20_000
    options = ["--skip-invalid"] if skip_invalid else []
    command = deplatform(
        "import", str(source), "--no-projections", *options, database_url=database_url
    )
    interrupted = 0
    for after in KILL_AFTER:
        interrupted += killed(command, after)
        now = stored_ids(database_url)
        assert now == before or (sum(now.values()) == complete and max(now.values()) == 1)
    assert interrupted, "the import ended before any kill: make the history longer"
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True)
    summary = json.loads(rerun.stdout)
    assert rerun.returncode == (1 if summary["rejected"] else 0), rerun.stderr
    after = stored_ids(database_url)
    assert sum(after.values()) == complete and all(n == 1 for n in after.values())
    # Facts already stored and since retracted are refused, naming their retraction.
    refused = [r for r in summary["rejected"] if "was retracted by event" in r["error"]]
    assert summary["recorded"] + summary["duplicates"] + len(refused) == 20_000


def test_a_runner_killed_at_work_resumes_to_the_read_models_of_a_rebuild(database_url, history):
    imported = subprocess.run(
        deplatform("import", str(history), "--no-projections", database_url=database_url),
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    killed(deplatform("projections", "run", database_url=database_url), 1.0)
    with open_services(database_url) as services:
        assert services.runner.position < services.app.head(), "the runner ended before a kill"
        services.runner.catch_up()  # resumes from its tracking record
        resumed = dump(services)
        rebuild(services)
        assert dump(services) == resumed


def test_a_killed_rebuild_leaves_nothing_once_the_next_one_has_run(database_url, history):
    imported = subprocess.run(
        deplatform("import", str(history), database_url=database_url),
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    with open_services(database_url) as services:
        projected = dump(services)
        generation = services.view.generation
        # Killed once it has begun its generation (however slow the machine is to start it).
        rebuilding = deplatform("projections", "rebuild", database_url=database_url)
        assert killed(rebuilding, 0.5, lambda: generation + 1 in generations(services))
    with open_services(database_url) as services:
        assert services.view.generation == generation  # readers kept theirs
        assert dump(services) == projected
        assert generations(services) == {generation, generation + 1}  # the half-built one
        rebuild(services)
        assert dump(services) == projected
        assert generations(services) == {generation + 1}
        assert tracking_names(services) == {f"status-{generation + 1}"}


def generations(services) -> set[int]:
    """The generations whose tables the store holds."""
    view, datastore = services.view, services.app.factory.datastore
    with view.cursor(commit=False) as c:
        if isinstance(datastore, SQLiteDatastore):
            view.execute(c, "SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            view.execute(
                c,
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = %s",
                [datastore.schema],
            )
        names = [dict(row)["name"] for row in c.fetchall()]
    return {int(name[2:].split("_")[0]) for name in names if name.startswith("rm") and "_" in name}


def tracking_names(services) -> set[str]:
    """The generations' tracking records the store holds."""
    view = services.view
    with view.cursor(commit=False) as c:
        view.execute(c, f"SELECT application_name FROM {view.tracking_table}")
        names = {dict(row)["application_name"] for row in c.fetchall()}
    return {name for name in names if name.startswith("status-")}  # the generations' records
