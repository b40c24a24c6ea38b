"""`veles bench`: performance measurements of the risk core (and, later, the engine)."""

from __future__ import annotations

from typing import Annotated

import typer

from veles.bench import risk as risk_bench

app = typer.Typer(help="Performance benchmarks.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Performance benchmarks."""


@app.command("risk")
def risk(
    sizes: Annotated[
        list[int] | None, typer.Option("--size", help="Book size in open positions (repeatable).")
    ] = None,
    seconds: Annotated[float, typer.Option(help="CPU seconds spent on each path per size.")] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic book and price stream.")] = 7,
) -> None:
    """Price updates per second: incremental AccountState + Book versus naive full recomputation."""
    results = risk_bench.run(
        sizes or risk_bench.DEFAULT_SIZES,
        seconds=seconds,
        seed=seed,
        progress=lambda line: typer.echo(line, err=True),
    )
    typer.echo(risk_bench.report(results))
