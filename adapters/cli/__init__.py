"""The `deplatform` command: import, record, retract, query and export the event store,
run the read models, and serve the API and pages. One module per group of commands."""

from adapters.cli import operations, projections, queries, reports, server, tokens, writes
from adapters.cli.common import cli
from adapters.runtime import tune_collector

__all__ = [
    "cli",
    "main",
    "operations",
    "projections",
    "queries",
    "reports",
    "server",
    "tokens",
    "writes",
]


def main() -> None:
    tune_collector()
    cli()
