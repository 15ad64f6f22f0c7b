"""What every client command shares: output, secrets from stdin, the logged-in client, error handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from clients.api import ApiError, GatewayClient
from clients.keystore import KeyStoreError
from clients.profile import client_home, load_login

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (first line)."
)


def read_password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    return click.prompt(prompt, hide_input=True)


def emit(result: Any, as_json: bool, text: str | Callable[[Any], str]) -> None:
    """Print `result` as JSON, or as the human text."""
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text(result) if callable(text) else text)


def handles_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turn gateway problems and key-store errors into a one-line error and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except ApiError as error:
            raise click.ClickException(f"{error.detail} [{error.code}]") from None
        except KeyStoreError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def logged_in() -> GatewayClient:
    login = load_login(client_home())
    if login is None:
        raise click.ClickException("not logged in; run `dentgate login` first")
    return login.client(client_home())


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
