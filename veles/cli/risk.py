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

    Margin is converted into the deposit currency at each position's margin_rate, the rate MT5
    fixed when the position opened. A position given without one takes it from its open price
    when the symbol's own price converts its margin currency into the deposit currency (EURUSD on
    a USD account: margin_rate = price_open); hedged positions then follow MetaQuotes' rule, the
    covered volume at the weighted average open price of all positions of the symbol and the
    uncovered volume at the larger leg's. Other conversions (through other pairs) use the current
    quote: give margin_rate to get MT5's figure.

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
