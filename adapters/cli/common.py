"""What every command shares: the Typer app, options, consoles, the store it opens, and how
failures become messages and exit codes (0 done, 1 rejected or not found or the store
failed, 2 usage errors)."""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:  # the store, the HTTP stack and the domain load only where a command runs
    from structlog.typing import FilteringBoundLogger

    from adapters.composition import Services
    from domain.values import SubjectKey

cli = typer.Typer(
    help="Track deplatforming: who cut which platform or account off, when, and how.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        out.print(f"deplatform {version('deplatforming')}", highlight=False)
        raise typer.Exit


@cli.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=print_version, metavar=""
        ),
    ] = False,
) -> None:
    """Track deplatforming: who cut which platform or account off, when, and how."""


out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def log() -> FilteringBoundLogger:
    import structlog

    return structlog.get_logger("deplatform")  # type: ignore[no-any-return]


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    from adapters.interchange import parse_instant

    try:
        return parse_instant(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///path.db or postgresql://user:pass@host:port/db "
        "[env DEPLATFORM_DATABASE_URL; default sqlite:///./deplatform.db]",
        show_default=False,
    ),
]
AsOf = Annotated[
    datetime | None,
    typer.Option("--as-of", parser=parse_time, metavar="T", help="Valid time (default now)."),
]
KnownAt = Annotated[
    datetime | None,
    typer.Option(
        "--known-at", parser=parse_time, metavar="T", help="Transaction time (default now)."
    ),
]


def parse_region(value: str | None) -> str | None:
    if value is None:
        return None
    from adapters.countries import country_code

    try:
        return country_code(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        parser=parse_region,
        metavar="CC",
        help="The answer in a country (ISO 3166-1 alpha-2 code: US, BR, ...); default: "
        "worldwide, with the countries whose answer differs.",
    ),
]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.", metavar="")]
NoProjections = Annotated[
    bool,
    typer.Option(
        "--no-projections",
        help="Leave the read models to a runner (`projections run`, or a server) instead of "
        "bringing them up to date after the write.",
        metavar="",
    ),
]


# Control characters (C0 but tab and newline, DEL, C1): an escape sequence in stored text
# could clear the screen, recolour it or hide a link.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def markup_free(value: str) -> str:
    """Text from input or the store inside a line of Rich markup: its own brackets and
    control characters kept from the terminal."""
    return escape(CONTROL.sub("", value))


def fail(message: str, code: int = 1, *, as_json: bool = False) -> NoReturn:
    """Says what went wrong on stderr and exits; with `as_json` (a write asked for --json),
    also prints the write's summary object, nothing recorded, with the error in it."""
    err.print(f"[bold red]error:[/] {markup_free(message)}", highlight=False)
    if as_json:
        print_json({"recorded": 0, "duplicates": 0, "rejected": [], "error": message})
    raise typer.Exit(code)


def cli_writer() -> str:
    """Who a CLI write is recorded as made by: the user running it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid
        return "cli"


def check_url(database_url: str) -> None:
    """A bad URL is a usage error (2); a store that refuses us, a failure (1)."""
    from adapters.config import BadDatabaseURL, StoreUnavailable, store_env

    try:
        store_env(database_url)
    except BadDatabaseURL as error:
        fail(str(error), 2)
    except StoreUnavailable as error:
        fail(str(error))


@contextmanager
def store(
    database_url: str | None,
    *,
    embedded: bool = True,
    as_json: bool = False,
    create: bool = True,
) -> Iterator[Services]:
    """The tracker on the store the option or the environment names, with failures reported
    as messages and exit codes (and, for a write asked for `--json`, as its JSON summary).
    Embedded, its writes bring the read models up to date. Without `create` (a read), a
    store that does not exist is said so, and none is made."""
    from eventsourcing.persistence import PersistenceError

    from adapters.composition import open_services
    from adapters.config import BadDatabaseURL, NoStore, Settings, StoreUnavailable, redacted
    from adapters.logging import configure
    from domain.errors import UnknownSubject
    from service.application import ConcurrentWrites

    settings = Settings()
    configure(settings.log_level)
    url = database_url or settings.database_url
    try:
        services = open_services(url, embedded=embedded, create=create)
    except NoStore as error:
        fail(str(error), as_json=as_json)
    except BadDatabaseURL as error:
        fail(str(error), 2, as_json=as_json)
    except StoreUnavailable as error:
        fail(str(error), as_json=as_json)
    except (PersistenceError, OSError) as error:
        fail(f"cannot open the store {redacted(url)}: {error}", as_json=as_json)
    try:
        yield services
    except UnknownSubject as error:
        fail(f"{error} (in the store {redacted(url)})")
    except ConcurrentWrites as error:
        fail(f"{error}; nothing was recorded: try again", as_json=as_json)
    except OverflowError:
        fail("a time reached the edge of the calendar (years 1 to 9999): choose another")
    except PersistenceError as error:
        busy = "lock" in str(error).lower() or "busy" in str(error).lower()
        reason = "another writer held the store's lock too long" if busy else "store error"
        fail(f"{reason}: {error}; nothing was recorded by this command", as_json=as_json)
    finally:
        services.close()


def subject_key(text: str) -> SubjectKey:
    from domain.values import InvalidSubject, SubjectKey

    try:
        return SubjectKey.parse(text)
    except InvalidSubject as error:
        fail(str(error), 2)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def warn_if_behind(services: Services) -> None:
    """Reads answer from the read models as they are; say so when they lag the store."""
    progress = services.queries.settle()
    if progress.lag:
        err.print(
            f"note: the read models are {progress.lag} event(s) behind the store (position "
            f"{progress.position} of {progress.head}); `deplatform projections run` catches "
            "them up",
            highlight=False,
        )
