"""Opening the application on the store a database URL names."""

from __future__ import annotations

from adapters.config import store_env
from service.application import Deplatforming


def open_store(database_url: str) -> Deplatforming:
    """The application on that store; its tables are created on first use."""
    return Deplatforming(env=store_env(database_url))
