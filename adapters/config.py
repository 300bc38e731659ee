"""Settings, and the translation of a database URL into the eventsourcing library's settings."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

import psycopg
from psycopg import sql
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./deplatform.db"
# Seconds a use of the store waits for a lock another writer holds before giving up; the
# server answers 503 then (and sooner when the store cannot be reached: CONNECT_TIMEOUT).
COMMAND_TIMEOUT = 60.0  # the CLI: scripts would rather wait for another import to finish
REQUEST_TIMEOUT = 3.0  # the HTTP service: a client is told to retry instead
REQUEST_DEADLINE = 30.0  # the HTTP service: what one read may cost the store, at most
CONNECT_TIMEOUT = 5.0  # at most, to get a connection (a pooled one, or a new one)


class Settings(BaseSettings):
    """Read from `DEPLATFORM_*` environment variables; command-line options override them."""

    model_config = SettingsConfigDict(env_prefix="DEPLATFORM_")

    database_url: str = DEFAULT_DATABASE_URL
    log_level: str = "WARNING"
    api_token: str | None = None  # DEPLATFORM_API_TOKEN: the token named "default"
    api_tokens: Path | None = None  # DEPLATFORM_API_TOKENS: a file of name:hash lines
    write_rate: float | None = None  # DEPLATFORM_WRITE_RATE: events a minute per token
    # Without a token the service is read-only.
    # Links (permalinks, `Link` headers, feeds, citations) are built from DEPLATFORM_PUBLIC_URL
    # if set, else from the request's Host, which must be one of DEPLATFORM_ALLOWED_HOSTS
    # (comma-separated; by default the address served and localhost).
    public_url: str | None = None
    allowed_hosts: str | None = None
    request_deadline: float = REQUEST_DEADLINE  # DEPLATFORM_REQUEST_DEADLINE: seconds


class BadDatabaseURL(ValueError):
    pass


PASSWORD = re.compile(r"(://[^/@:]*:)[^/]*@")  # user:password@ -> user:***@


def redacted(url: str) -> str:
    """The URL without its password, for messages (even a URL too malformed to parse)."""
    return PASSWORD.sub(r"\1***@", url)


TRANSCODER_TOPIC = "adapters.mapping:FastTranscoder"  # the library's JSON, by orjson
MAPPER_TOPIC = "adapters.mapping:AheadMapper"  # which also completes states encoded ahead


def store_env(url: str, timeout: float = COMMAND_TIMEOUT, *, create: bool = True) -> dict[str, str]:
    """`sqlite:///path.db`, `sqlite:///:memory:` or `postgresql://user:pass@host:port/db`,
    waiting at most `timeout` seconds for a lock (and less to connect).

    A PostgreSQL URL may name a schema with `?schema=NAME`; it is created if missing. Without
    `create` (a read), a store that does not exist is `NoStore`, and nothing is created.
    """
    wait = str(max(1, round(timeout)))
    connect = str(max(1, round(min(timeout, CONNECT_TIMEOUT))))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # a port that is not a number, an unclosed IPv6 bracket
        raise BadDatabaseURL(f"{redacted(url)!r}: {error}") from None
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc or not path:
            raise BadDatabaseURL(
                f"{redacted(url)!r}: expected sqlite:///relative/path.db or sqlite:////abs"
            )
        if path == ":memory:":
            path = f"file:deplatform-{uuid4().hex}?mode=memory&cache=shared"
        elif not create and not Path(path).expanduser().exists():
            raise NoStore(f"no store at {path}: a write (import, record) makes one")
        else:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": wait,
            "APPLICATION_RECORDER_TOPIC": "adapters.persistence:SQLiteEventStore",
            "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
            "MAPPER_TOPIC": MAPPER_TOPIC,
        }
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname or not parts.hostname:
            raise BadDatabaseURL(
                f"{redacted(url)!r}: expected postgresql://user:password@host:port/dbname"
            )
        schema = parse_qs(parts.query).get("schema", ["public"])[0]
        env = {
            "PERSISTENCE_MODULE": "adapters.persistence:PostgresStore",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_CONNECT_TIMEOUT": connect,
            "POSTGRES_PRE_PING": "y",  # a connection broken by an outage is replaced, not used
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_LOCK_TIMEOUT": wait,
            # An atomic import of hundreds of thousands of facts prepares its rows between
            # statements of its one transaction; the library's 5 s killed it (and its retries).
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "120",
            "APPLICATION_RECORDER_TOPIC": "adapters.persistence:PostgresEventStore",
            "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
            "MAPPER_TOPIC": MAPPER_TOPIC,
        }
        prepare_database(env, create)
        return env
    raise BadDatabaseURL(
        f"{redacted(url)!r}: unsupported database URL; use sqlite:///path.db or "
        "postgresql://user:password@host:port/dbname"
    )


def postgres_conninfo(env: dict[str, str]) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=env["POSTGRES_CONNECT_TIMEOUT"],
    )


class StoreUnavailable(ConnectionError):
    """The database cannot be reached or refuses us (its own reason is in the message)."""


class NoStore(LookupError):
    """A read named a store that does not exist (reads create none)."""


def prepare_database(env: dict[str, str], create: bool = True) -> None:
    """Connects once, so that a wrong password or database name is reported at once and in
    the server's words (the library's pool would retry for its whole timeout), and creates
    the schema if it is missing (without `create`: says `NoStore` if the store's events
    table is missing)."""
    try:
        with psycopg.connect(postgres_conninfo(env), autocommit=True) as conn:
            if not create:
                from service.application import Deplatforming  # its name names its tables

                events = f'"{env["POSTGRES_SCHEMA"]}".{Deplatforming.name}_events'
                found = conn.execute("SELECT to_regclass(%s)", [events]).fetchone()
                if found is None or found[0] is None:
                    raise NoStore(
                        f"no store in database {env['POSTGRES_DBNAME']!r}, schema "
                        f"{env['POSTGRES_SCHEMA']!r}: a write (import, record) makes one"
                    )
            elif env["POSTGRES_SCHEMA"] != "public":
                schema = sql.Identifier(env["POSTGRES_SCHEMA"])
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    except psycopg.OperationalError as error:
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL database {env['POSTGRES_DBNAME']!r} at "
            f"{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']} as {env['POSTGRES_USER']!r}: {reason}"
        ) from None
