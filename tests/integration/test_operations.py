"""Operations: moving a store to another database, and several service processes and
projection workers on one PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid

import httpx

from adapters.composition import open_services, rebuild
from adapters.interchange import parse_instant, to_new_fact
from domain.clock import now
from tests.helpers import AUTH, DEPLATFORM, EXAMPLE, EXAMPLE_EVENTS, exported, serving
from tests.integration.test_read_models import dump
from tests.reference import FoldQueries


def test_migrate_copies_a_store_with_its_recording_times_and_order(postgres_database, tmp_path):
    source = f"sqlite:///{tmp_path}/source.db"
    target = f"{postgres_database}?schema=m_{uuid.uuid4().hex[:8]}"
    subprocess.run([DEPLATFORM, "import", str(EXAMPLE), "--database-url", source], check=True)
    retract = [DEPLATFORM, "retract", "--database-url", source, "--reason", "wrong"]
    with open_services(source) as services:
        first_action = exported(services)[1]["event_id"]
    subprocess.run([*retract, first_action], check=True, capture_output=True)

    moved = subprocess.run(
        [DEPLATFORM, "migrate", "--database-url", source, "--to", target],
        capture_output=True,
        text=True,
    )
    assert moved.returncode == 0, moved.stderr
    assert "export matches" in moved.stdout

    with open_services(source) as original, open_services(target) as copy:
        mine, theirs = exported(original), exported(copy)
        for record in (*mine, *theirs):
            record.pop("position")
        assert mine == theirs and len(mine) == 13  # recorded_at values and order kept
        assert dump(original) == dump(copy)  # the copy's read models, projected
        assert [s.document for s in original.queries.statuses(known_at=now())] == [
            s.document for s in copy.queries.statuses(known_at=now())
        ]
        look_alike = {  # the copy knows its accounts' spellings: a look-alike is refused
            "type": "AccountBanned",
            "account": "twitter:rea1DonaldTrump",
            "occurred_at": "2021-02-01",
            "provider": "T",
        }
        refused = copy.record([to_new_fact(look_alike)])
        assert "could pass for 'twitter:realDonaldTrump'" in refused.rejected[0].error

    again = subprocess.run(
        [DEPLATFORM, "migrate", "--database-url", source, "--to", target],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "already holds events" in again.stderr


def test_two_servers_and_two_projection_workers_on_one_postgresql(postgres_database, tmp_path):
    url = f"{postgres_database}?schema=o_{uuid.uuid4().hex[:8]}"
    workers = [
        subprocess.Popen(
            [DEPLATFORM, "projections", "run", "--poll", "0.1", "--database-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    events = [line for line in EXAMPLE.read_text().splitlines() if line.startswith("{")]
    try:
        with (
            serving(url, no_projections=True) as first,
            serving(url, no_projections=True) as second,
        ):
            positions = []

            def post(address: str, lines: list[str]) -> None:
                for line in lines:
                    response = httpx.post(
                        f"{address}/events",
                        content=line,
                        headers=AUTH | {"Content-Type": "application/json"},
                    )
                    assert response.status_code in (201, 409), response.text
                    if response.status_code == 201:
                        positions.append(response.json()["position"])

            writers = [
                threading.Thread(target=post, args=(first, events[0::2])),
                threading.Thread(target=post, args=(second, events[1::2])),
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join()
            deadline = time.monotonic() + 30
            for address in (first, second):
                while httpx.get(f"{address}/healthz").json()["projection"]["lag"]:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            answers = [
                httpx.get(f"{address}/status", params={"as_of": "2021-01-12"}).json()
                for address in (first, second)
            ]
            for answer in answers:
                for status in answer:
                    status.pop("known_at")
            assert answers[0] == answers[1]
            with open_services(url, embedded=False) as services:  # the fold, as a reference
                folded = FoldQueries(services.app).statuses(parse_instant("2021-01-12"), now())
            assert [(a["subject"], a["status"]) for a in answers[0]] == [
                (s.subject.key, str(s.status)) for s in folded
            ]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(10)
    with open_services(url) as services:
        projected = dump(services)
        services.runner.catch_up()
        assert dump(services) == projected  # nothing left to apply, nothing applied twice
        rebuild(services)
        assert dump(services) == projected


def test_an_online_backup_of_a_sqlite_store_holds_what_the_store_holds(tmp_path):
    import sqlite3

    with open_services(f"sqlite:///{tmp_path}/live.db") as live:
        live.record([to_new_fact(line) for line in EXAMPLE_EVENTS])
        sqlite3.connect(tmp_path / "live.db").backup(sqlite3.connect(tmp_path / "copy.db"))
        with open_services(f"sqlite:///{tmp_path}/copy.db") as copy:
            assert exported(copy) == exported(live) and dump(copy) == dump(live)
