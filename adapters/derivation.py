"""Deriving a large window's read-model rows in worker processes, while this process writes.

A rebuild, or a runner far behind, reads, folds and derives every subject of a window and
writes their rows in one transaction. Deriving is pure Python and takes most of the time;
writing is the database's. So worker processes (one per core, spawned for the window) take
batches of subjects from a queue, read their histories on their own connections (what was
committed up to the window's end: the window's transaction writes only read models), derive
and encode their rows (for PostgreSQL, in `COPY`'s format already), and send them back; this
process writes them as they come, all in the window's transaction. The queue of results is
bounded, so memory follows a few pieces of rows, not the window. A worker that fails or
dies fails the window (nothing is written).
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
from collections.abc import Generator, Iterable
from multiprocessing import get_context, parent_process
from typing import Any
from uuid import UUID

from adapters.read_models.backends import bulk_format
from adapters.read_models.writer import encode
from adapters.runtime import tune_collector
from projections.ports import BatchDone, Rows
from projections.status_projection import window_batch
from service.application import Deplatforming

WORKERS = min(os.cpu_count() or 1, 2)
SMALLEST = 20_000  # events: a smaller window is derived here (starting workers takes a second)
AHEAD = 4  # pieces of rows a worker may send before this process has written them
POLL = 1.0  # seconds between checks that the workers (or the process that started them) live
PR_SET_PDEATHSIG = 1  # Linux's prctl option: the signal a process gets when its parent dies


class DerivationFailed(RuntimeError):
    """A worker process failed or died while deriving a window's rows."""


def workers_for(env: dict[str, str]) -> Workers | None:
    """Workers for a store they can open too (not one in this process's memory)."""
    return None if "mode=memory" in env.get("SQLITE_DBNAME", "") else Workers(env)


class Workers:
    """A `Derivation` by worker processes on the store a `store_env` names (a file or a
    server: not a store in this process's memory)."""

    def __init__(self, env: dict[str, str], workers: int = WORKERS) -> None:
        self.env = {**env, "CREATE_TABLE": "false"}  # the store's tables exist by then
        self.workers = workers

    def wanted(self, events: int) -> bool:
        return self.workers > 1 and events >= SMALLEST

    def __call__(
        self, batches: Iterable[list[UUID]], upto: int, after: int
    ) -> Generator[Rows | BatchDone, None, None]:
        context = get_context("spawn")
        tasks: Any = context.Queue()
        results: Any = context.Queue(maxsize=AHEAD * self.workers)
        for batch in batches:
            tasks.put([subject_id.hex for subject_id in batch])
        for _ in range(self.workers):
            tasks.put(None)
        processes = [
            context.Process(target=work, args=(self.env, tasks, results, upto, after), daemon=True)
            for _ in range(self.workers)
        ]
        for process in processes:
            process.start()
        try:
            finished = 0
            while finished < len(processes):
                try:
                    kind, payload = results.get(timeout=POLL)
                except queue.Empty:
                    dead = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                    if dead:
                        raise DerivationFailed(self._last_words(results, dead[0])) from None
                    continue
                if kind == "error":
                    raise DerivationFailed(f"a worker deriving read models failed: {payload}")
                if kind == "done":
                    finished += 1
                else:
                    yield payload
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
            tasks.cancel_join_thread()  # batches nobody took are dropped, not flushed at exit
            tasks.close()
            results.close()

    def _last_words(self, results: Any, exitcode: int) -> str:
        """Why a worker that died did: the error it sent, if any (it is among what the queue
        holds; the other workers' rows are not read past that)."""
        try:
            for _ in range(AHEAD * self.workers + 1):
                kind, payload = results.get(timeout=POLL)
                if kind == "error":
                    return f"a worker deriving read models failed: {payload}"
        except queue.Empty:
            pass
        return f"a worker deriving read models stopped (exit code {exitcode})"


def work(env: dict[str, str], tasks: Any, results: Any, upto: int, after: int) -> None:
    """A worker: derives batches until told to stop (None), sending each piece of rows, then
    each batch's `BatchDone`; says "done" at the end, or the error it met. It stops as well
    when the process that started it has gone (killed, say): nobody is left to read."""
    tune_collector()
    try:
        _die_with_parent()
        try:
            derive(env, tasks, results, upto, after)
        except Orphaned:
            raise
        except Exception as error:  # said to the window, which fails with it
            _sent(results, ("error", f"{type(error).__name__}: {error}"))
            return
        _sent(results, ("done", None))
    except Orphaned:
        results.cancel_join_thread()  # what is still buffered for nobody is dropped


def derive(env: dict[str, str], tasks: Any, results: Any, upto: int, after: int) -> None:
    app = Deplatforming(env=env)
    formatted = bulk_format(app.factory.datastore)  # type: ignore[attr-defined]  # a SQL store's factory has one
    try:
        while (batch := _taken(tasks)) is not None:
            tails: dict[UUID, Any] = {}
            subject_ids = [UUID(hex=subject_id) for subject_id in batch]
            events, pieces = window_batch(app, subject_ids, upto, after, tails)
            for piece in pieces:
                _sent(results, ("rows", formatted(encode(piece))))
            _sent(results, ("batch", BatchDone(events, tails)))
    finally:
        app.close()


def _die_with_parent() -> None:
    """On Linux, the kernel kills this worker when the process that started it dies: a
    worker blocked anywhere (in a query, or flushing rows into a pipe nobody reads at exit)
    never outlives it. Elsewhere the worker notices between batches and pieces."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _check_parent()  # it may have died before


class Orphaned(Exception):
    """The process that started this worker has gone."""


def _taken(tasks: Any) -> Any:
    while True:
        try:
            return tasks.get(timeout=POLL)
        except queue.Empty:
            _check_parent()


def _sent(results: Any, item: Any) -> None:
    while True:
        try:
            results.put(item, timeout=POLL)
            return
        except queue.Full:
            _check_parent()


def _check_parent() -> None:
    parent = parent_process()
    if parent is not None and not parent.is_alive():
        raise Orphaned
