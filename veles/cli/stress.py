"""`veles stress`: shock the simulated broker's book and apply MT5's stop-out cascade."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from veles.bench import stress as stress_bench
from veles.risk.stress import ScenarioError, run_stress


def run_stress_command(
    scenarios: Annotated[
        list[str],
        typer.Option(
            "--scenario", help='A shock such as "XAUUSD -3%" or "USD +2% against all" (repeatable).'
        ),
    ],
    accounts: Annotated[int, typer.Option(help="Accounts of the simulated broker.")] = 1_000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker.")] = 7,
) -> None:
    """Stress the simulated broker's book: a table for the dealer, then the result as JSON."""
    if accounts < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--accounts")
    try:
        shocks = stress_bench.shocks_of(scenarios, stress_bench.catalog_symbols())
    except ScenarioError as error:
        typer.echo(f"error: --scenario {error}", err=True)
        raise typer.Exit(2) from None
    snapshots, symbols, quotes = stress_bench.simulated_book(accounts, seed)
    result = run_stress(snapshots, symbols, quotes, shocks)
    typer.echo(stress_bench.table(result))
    typer.echo(json.dumps(result.to_json()))
