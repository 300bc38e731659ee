"""Settings, and the translation of a database URL into the eventsourcing library's settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

import psycopg
from psycopg import sql
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./deplatform.db"


class Settings(BaseSettings):
    """Read from `DEPLATFORM_*` environment variables; command-line options override them."""

    model_config = SettingsConfigDict(env_prefix="DEPLATFORM_")

    database_url: str = DEFAULT_DATABASE_URL
    log_level: str = "WARNING"


class BadDatabaseURL(ValueError):
    pass


def store_env(url: str) -> dict[str, str]:
    """`sqlite:///path.db`, `sqlite:///:memory:` or `postgresql://user:pass@host:port/db`.

    A PostgreSQL URL may name a schema with `?schema=NAME`; it is created if missing.
    """
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if parts.netloc or not path:
            raise BadDatabaseURL(f"{url!r}: expected sqlite:///relative/path.db or sqlite:////abs")
        if path == ":memory:":
            path = f"file:deplatform-{uuid4().hex}?mode=memory&cache=shared"
        else:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "adapters.persistence:SQLiteEventStore",
        }
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname or not parts.hostname:
            raise BadDatabaseURL(f"{url!r}: expected postgresql://user:password@host:port/dbname")
        schema = parse_qs(parts.query).get("schema", ["public"])[0]
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parts.hostname,
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_POOL_SIZE": "4",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "adapters.persistence:PostgresEventStore",
        }
        if schema != "public":
            create_schema(env)
        return env
    raise BadDatabaseURL(
        f"{url!r}: unsupported database URL; use sqlite:///path.db or "
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


def create_schema(env: dict[str, str]) -> None:
    with psycopg.connect(postgres_conninfo(env), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(env["POSTGRES_SCHEMA"]))
        )
