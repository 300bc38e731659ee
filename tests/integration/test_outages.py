"""When the store fails: the real server answers 503 problem details with `Retry-After` in
bounded time on every route, says in `/healthz` which part is down, and recovers by itself,
its projection runner resuming where it stopped."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid

import httpx
import pytest

from adapters.composition import open_services
from domain.clock import now
from tests.helpers import AUTH, EXAMPLE_EVENTS, TOKEN, serving
from tests.reference import FoldQueries
from tests.tcp_proxy import TcpProxy

BOUND = 10.0  # seconds within which every answer comes while the store is down
ROUTES = [
    ("GET", "/status"),
    ("GET", "/platforms"),
    ("GET", "/subjects/parler/status"),
    ("GET", "/subjects/parler/history"),
    ("GET", "/events"),
    ("GET", "/changes?from=2021-01-01"),
    ("GET", "/"),
    ("GET", "/subjects/parler"),
    ("GET", "/reports?from=2021-01-01&to=2021-02-01&format=json"),
    ("POST", "/events"),
    ("POST", "/events/parler-launch/retract"),
]


def new_platform() -> dict:
    slug = f"p{uuid.uuid4().hex[:8]}"
    return {
        "type": "PlatformRegistered",
        "platform": slug,
        "name": slug,
        "occurred_at": "2021-01-01",
    }


def call(address: str, method: str, path: str) -> tuple[httpx.Response, float]:
    body = {"reason": "test"} if path.endswith("/retract") else new_platform()
    started = time.monotonic()
    response = httpx.request(
        method, address + path, json=body if method == "POST" else None, headers=AUTH, timeout=60
    )
    return response, time.monotonic() - started


PAGES = {"/", "/subjects/parler"}  # answered as HTML pages; the rest as problem details


def assert_unavailable(response: httpx.Response, seconds: float, route: str) -> None:
    assert response.status_code == 503, (route, response.status_code, response.text)
    assert int(response.headers["retry-after"]) > 0, route
    assert "Traceback" not in response.text, route
    if route in PAGES:
        assert response.headers["content-type"].startswith("text/html"), route
    else:
        assert response.headers["content-type"] == "application/problem+json", route
        assert response.json()["status"] == 503, route
    assert seconds < BOUND, (route, seconds)


def wait_until(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not within {seconds} s"
        time.sleep(0.2)


def healthy(address: str) -> bool:
    return httpx.get(f"{address}/healthz", timeout=BOUND).status_code == 200


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_while_postgresql_is_unreachable_every_route_answers_503_and_all_recovers(
    postgres_database, tmp_path, mode
):
    proxy = TcpProxy("127.0.0.1", int(postgres_database.rsplit(":", 1)[1].split("/")[0]))
    name = postgres_database.rsplit("/", 1)[1]
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}?schema=o_{uuid.uuid4().hex[:8]}"
    try:
        with serving(url, log=tmp_path / "server.log") as address:
            loaded = httpx.post(f"{address}/events", json=EXAMPLE_EVENTS, headers=AUTH, timeout=30)
            assert loaded.status_code == 201, loaded.text

            proxy.cut(mode)
            for method, path in ROUTES:
                assert_unavailable(*call(address, method, path), route=path)
            health, seconds = call(address, "GET", "/healthz")
            assert_unavailable(health, seconds, "/healthz")
            assert health.json()["store"]["status"] == "unreachable"
            wait_until(
                lambda: (
                    httpx.get(f"{address}/healthz", timeout=BOUND).json()["projection"]["status"]
                    == "failing"
                )
            )

            proxy.restore()
            wait_until(lambda: healthy(address))
            written = httpx.post(f"{address}/events", json=new_platform(), headers=AUTH)
            assert written.status_code == 201, written.text
            position = written.json()["position"]
            wait_until(
                lambda: httpx.get(f"{address}/healthz").json()["projection"]["position"] >= position
            )
        log = (tmp_path / "server.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        proxy.close()
    with open_services(url.replace(f":{proxy.port}/", ":5432/")) as services:
        # What the runner applied across the outage is what a fresh fold gives.
        facts = {s.subject: s for s in services.queries.statuses()}
        folded = {s.subject: s for s in FoldQueries(services.app).statuses(now(), now())}
        assert {k: v.document for k, v in facts.items()} == {
            k: v.document for k, v in folded.items()
        }


def test_a_held_sqlite_write_lock_makes_writes_503_in_bounded_time_and_reads_go_on(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with serving(url) as address:
        loaded = httpx.post(f"{address}/events", json=EXAMPLE_EVENTS, headers=AUTH)
        assert loaded.status_code == 201
        wait_until(lambda: healthy(address))  # projected: the runner needs the lock too
        holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, for as long as it likes
        try:
            response, seconds = call(address, "POST", "/events")
            assert_unavailable(response, seconds, "/events")
            assert "lock" in response.json()["detail"] or "busy" in response.json()["detail"]
            assert httpx.get(f"{address}/subjects/parler/status").status_code == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert httpx.post(f"{address}/events", json=new_platform(), headers=AUTH).status_code == 201


def test_a_read_past_its_deadline_is_stopped_and_answered_503(database_url, monkeypatch):
    """On SQLite the engine's progress handler stops it (here after a few steps: the deadline
    is tiny); on PostgreSQL, held up by another session's lock on a read-model table, the
    server's lock timeout does, in about the deadline."""
    from fastapi.testclient import TestClient

    from adapters.http.app import create_app
    from adapters.read_models import schema

    postgres = database_url.startswith("postgresql")
    deadline = 1.0 if postgres else 1e-9
    monkeypatch.setattr(schema, "PROGRESS_STEPS", 1)
    app = create_app(database_url, api_token=TOKEN, read_deadline=deadline, read_wait=0.01)
    with TestClient(app) as client:
        assert client.post("/events", json=EXAMPLE_EVENTS, headers=AUTH).status_code == 201
        holder = None
        if postgres:
            import psycopg

            table = app.state.services.view.tables()["periods"]
            holder = psycopg.connect(database_url.split("?")[0], autocommit=False)
            holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            started = time.monotonic()
            answer = client.get("/status", params={"as_of": "2021-01-12"})
            took = time.monotonic() - started
        finally:
            if holder is not None:
                holder.close()
        assert answer.status_code == 503, answer.text
        assert answer.json()["title"] == "Read too long" and "deadline" in answer.json()["detail"]
        assert took < deadline + BOUND
        if postgres:  # health says so, within the same bound, while the lock is held
            holder = psycopg.connect(database_url.split("?")[0], autocommit=False)
            holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            try:
                health = client.get("/healthz")
            finally:
                holder.close()
            assert health.status_code == 503 and "reads: unavailable" in health.json()["detail"]
        if postgres:  # the lock gone, reads are answered again
            assert client.get("/status", params={"as_of": "2021-01-12"}).status_code == 200


SLOW = {  # a read that would run for many seconds
    "sqlite": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
    "WHERE n < 1000000000) SELECT count(*) FROM r",
    "postgresql": "SELECT pg_sleep(20)",
}


def test_a_read_whose_client_went_away_stops_at_once(tracker, database_url, monkeypatch):
    from eventsourcing.persistence import PersistenceError

    from adapters.bounds import ABANDONED, DEADLINE
    from adapters.read_models import schema

    monkeypatch.setattr(schema, "PROGRESS_STEPS", 1000)
    abandoned = threading.Event()
    token, bound = ABANDONED.set(abandoned), DEADLINE.set(time.monotonic() + 60)
    threading.Timer(0.3, abandoned.set).start()  # the client leaves while the read runs
    started = time.monotonic()
    try:
        with pytest.raises(PersistenceError), tracker.view.reading(deadline=60) as cursor:
            tracker.view.execute(cursor, SLOW[database_url.split(":")[0]])
            cursor.fetchall()
    finally:
        ABANDONED.reset(token)
        DEADLINE.reset(bound)
    assert time.monotonic() - started < 2


def test_one_thread_watches_every_request_s_connection_and_stops_what_overstays(monkeypatch):
    """Connections serving requests are watched by one thread, not one each: a connection
    past its request's deadline is cancelled, then hung up if the cancel changed nothing; one
    given back is never touched; one closed meanwhile stops nothing."""
    from adapters import bounds

    monkeypatch.setattr(bounds, "GRACE", 0.2)

    class Connection:
        def __init__(self, closed: bool = False) -> None:
            self.cancelled = 0
            self.closed = closed

        def cancel_safe(self, timeout: float) -> None:
            self.cancelled += 1

        def fileno(self) -> int:
            if self.closed:
                raise OSError("the connection is closed")
            return -1

    hung: list[int] = []
    monkeypatch.setattr(bounds, "hang_up", hung.append)
    token = bounds.DEADLINE.set(time.monotonic())  # due now
    try:
        returned = Connection()
        with bounds.watched(returned):
            pass
        overstaying = [Connection(closed=n == 0) for n in range(20)]
        with contextlib.ExitStack() as held:
            for connection in overstaying:
                held.enter_context(bounds.watched(connection))
            watchers = [t for t in threading.enumerate() if t.name == "request-bounds"]
            time.sleep(0.2 + 0.2 + 3 * bounds.WATCH_STEP)
            assert all(c.cancelled == 1 for c in overstaying)
            time.sleep(0.2 + 2 * bounds.WATCH_STEP)
            assert hung == [-1] * 19
    finally:
        bounds.DEADLINE.reset(token)
    assert len(watchers) == 1 and returned.cancelled == 0


def test_a_request_is_marked_abandoned_when_its_client_leaves():
    import asyncio

    from starlette.concurrency import run_in_threadpool

    from adapters.bounds import ABANDONED
    from adapters.http.app import Bounds

    seen = []

    async def app(scope, receive, send):  # a read, in a worker thread, that waits for it
        await receive()  # the (empty) body
        seen.append(await run_in_threadpool(lambda: ABANDONED.get().wait(10)))

    async def client():
        yield {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.2)
        yield {"type": "http.disconnect"}

    async def main():
        messages = client()
        started = time.monotonic()
        await Bounds(app, 30)({"type": "http"}, messages.__anext__, None)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1 and seen == [True]


def test_a_failure_the_store_cannot_keep_is_still_reported(tracker, monkeypatch):
    """A full disk fails the projection and the recording of its error alike: the runner
    still says what fails it."""
    from eventsourcing.persistence import OperationalError

    runner, stop = tracker.runner, threading.Event()

    def full(*args, **kwargs):
        stop.set()
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(runner, "catch_up", full)
    monkeypatch.setattr(runner.view, "record_error", full)
    runner.follow(stop)
    found = runner.report()
    assert found.last_error is not None and "disk is full" in found.last_error
    assert found.last_error_at is not None and found.failing_since is not None


def test_a_read_on_a_connection_that_stops_answering_is_answered_503_in_bounded_time(
    postgres_database,
):
    """PostgreSQL (or the network) holds the connection open and says nothing: neither its
    statement timeout nor a cancel gets through, so the server hangs up under the read."""
    from fastapi.testclient import TestClient

    from adapters.http.app import create_app

    proxy = TcpProxy("127.0.0.1", int(postgres_database.rsplit(":", 1)[1].split("/")[0]))
    name = postgres_database.rsplit("/", 1)[1]
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}?schema=h_{uuid.uuid4().hex[:8]}"
    app = create_app(url, api_token=TOKEN, read_deadline=1.0, read_wait=0.01)
    try:
        with TestClient(app) as client:
            assert client.post("/events", json=EXAMPLE_EVENTS, headers=AUTH).status_code == 201
            proxy.hold()
            started = time.monotonic()
            answer = client.get("/status", params={"as_of": "2021-01-12"})
            took = time.monotonic() - started
            proxy.restore()
            assert answer.status_code == 503, answer.text
            assert took < 1.0 + BOUND
    finally:
        proxy.restore()
        proxy.close()
