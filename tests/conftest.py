"""Fixtures: stores on SQLite and PostgreSQL, each test on an empty one.

PostgreSQL tests use a database created for the session (dropped at its end), with a
fresh schema per test. Without a server they are skipped, except under CI, where
they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from adapters.composition import Services, open_services

PG_SERVER = os.environ.get("DEPLATFORM_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this session's own, as a URL."""
    name = f"deplatform_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI and did not answer: {error}")
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_SERVER.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty store, once on each kind of database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    database = request.getfixturevalue("postgres_database")
    return f"{database}?schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tracker(database_url: str) -> Iterator[Services]:
    """The tracker on an empty store, embedded (writes bring the read models up to date)."""
    services = open_services(database_url)
    yield services
    services.close()


STORE_EXAMPLES = {"sqlite": 60, "postgres": 15}  # Hypothesis examples each kind affords


@pytest.fixture(params=list(STORE_EXAMPLES))
def new_store(request, tmp_path):
    """Opens empty stores of one kind, as many as a test asks for (the caller closes them)."""

    def make() -> Services:
        name = uuid.uuid4().hex[:12]
        if request.param == "sqlite":
            return open_services(f"sqlite:///{tmp_path}/{name}.db")
        return open_services(f"{request.getfixturevalue('postgres_database')}?schema=p_{name}")

    make.examples = STORE_EXAMPLES[request.param]
    return make
