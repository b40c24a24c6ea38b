"""`veles risk`: the risk core from the command line (what-if calculations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from veles.risk.calculator import CalcError, calculate

app = typer.Typer(help="MT5 margin, profit and account-state calculations.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """MT5 margin, profit and account-state calculations."""


@app.command()
def calc(
    file: Annotated[Path, typer.Argument(help="Account snapshot as JSON ('-' reads standard input).")],
) -> None:
    """Print the margin, profit, equity and state of one account snapshot as JSON.

    Invalid input exits with code 2 and one line `error: <field>: <reason>`.
    """
    try:
        text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{file}: {exc.strerror or exc}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{file}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    try:
        result = calculate(data)
    except CalcError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result, indent=2))


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
