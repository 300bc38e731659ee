"""API tokens: make one for a writer and add its hash to the tokens file the server reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from adapters.access import NAME, TokenFileError, hash_token, new_token, read_tokens_file
from adapters.cli.common import AsJSON, cli, err, fail, out, print_json

tokens_cli = typer.Typer(
    help="API tokens: who may write through the HTTP API (DEPLATFORM_API_TOKENS).",
    no_args_is_help=True,
)
cli.add_typer(tokens_cli, name="token", rich_help_panel="Operations")


@tokens_cli.command("add")
def token_add(
    name: Annotated[str, typer.Argument(help="Who writes with it; recorded with each write.")],
    file: Annotated[Path, typer.Option("--file", help="The tokens file (made if missing).")],
    as_json: AsJSON = False,
) -> None:
    """Make a token named NAME, add its hash to the file, and print the token (once: only its
    hash is kept)."""
    if not NAME.fullmatch(name):
        fail(f"{name!r}: a name is 1 to 64 letters, digits, '_', '.', '@' or '-'", 2)
    try:
        taken = {c.name for c in read_tokens_file(file)} if file.exists() else set()
    except TokenFileError as error:
        fail(str(error), 2)
    if name in taken:
        fail(f"{file} already has a token named {name!r}", 2)
    token = new_token()
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as tokens:
        tokens.write(f"{name}:{hash_token(token)}\n")
    if as_json:
        print_json({"name": name, "file": str(file), "token": token})
        return
    err.print(f"added {name!r} to {file}; the token (shown once):", highlight=False)
    out.print(token, highlight=False, soft_wrap=True)
