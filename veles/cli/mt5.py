"""`veles mt5 ...`: talk to real MT5 servers through the Web API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from veles.mt5.webapi.check import FAILED, check_blocking
from veles.mt5.webapi.client import WebApiSettings

app = typer.Typer(help="Real MT5 servers through the MT5 Web API.", no_args_is_help=True)

PASSWORD_ENV = "VELES_MT5_PASSWORD"  # noqa: S105 - the variable's name, not a password


@app.command("check")
def run_check(
    url: Annotated[str, typer.Argument(help="The server's Web API address, https://host:port.")],
    login: Annotated[int, typer.Option(help="Manager login (an account with Web API rights).")],
    group: Annotated[str, typer.Option(help="Group mask of the accounts to read: 'real*,!demo*'.")] = "*",
    ca_bundle: Annotated[
        str | None, typer.Option(help="PEM file of the broker's private CA (default: system trust store).")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for each answer.")] = 10.0,
) -> None:
    """Authenticate as the manager (password from VELES_MT5_PASSWORD), read symbols, groups, users
    and positions, and print their counts as JSON; exit 2 with one line naming the failing step
    and the server's retcode."""
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        typer.echo(f"{FAILED} password: {PASSWORD_ENV} is not set", err=True)
        raise typer.Exit(2)
    settings = WebApiSettings(url=url, login=login, password=password, ca_bundle=ca_bundle, timeout_s=timeout)
    outcome = check_blocking(settings, group)
    if not outcome.ok:
        typer.echo(outcome.line, err=True)
        raise typer.Exit(2)
    typer.echo(outcome.line)
