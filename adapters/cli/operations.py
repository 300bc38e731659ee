"""Operations: move a store to another database."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.cli.common import AsJSON, DatabaseURL, cli, fail, out, print_json, store


@cli.command(
    "migrate",
    rich_help_panel="Operations",
    short_help="Copy the store into an empty one.",
    epilog="Example: deplatform migrate --to postgresql://user@host/db",
)
def migrate_(
    to: Annotated[str, typer.Option("--to", help="The empty store to copy into (a database URL).")],
    as_json: AsJSON = False,
    database_url: DatabaseURL = None,
) -> None:
    """Copy this store into an empty one (SQLite to PostgreSQL, say), recording times and order
    kept, then check that both export the same facts and project the copy."""
    from adapters.cli.render import progress_bar
    from adapters.composition import MigrationMismatch, migrate
    from adapters.config import redacted
    from service.application import StoreNotEmpty

    with store(database_url) as source, store(to) as target:
        total = source.app.head()
        try:
            with progress_bar("copying", total, visible=not as_json) as advance:
                migrated = migrate(source, target, advance)
        except (StoreNotEmpty, MigrationMismatch) as error:
            fail(f"{redacted(to)}: {error}")
    if as_json:
        print_json({"to": redacted(to), "events": migrated.events, "facts": migrated.facts})
        return
    out.print(
        f"copied {migrated.events} stored events into {redacted(to)}; its export matches this "
        f"store's, fact by fact ({migrated.facts} facts)",
        highlight=False,
    )
