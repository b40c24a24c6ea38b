"""`veles chaos`: the demo engine under fire (bad messages on every Redis channel and key, Redis
restarted, an account host killed), then every alert checked against the in-process reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/veles_chaos"


def run_chaos(
    seconds: Annotated[float, typer.Option(min=10.0, help="How long the engine runs under fire.")] = 300.0,
    accounts: Annotated[int, typer.Option(min=1, help="Simulated accounts.")] = 50,
    rate: Annotated[float, typer.Option(min=0.5, help="Gateway polls per second.")] = 4.0,
    seed: Annotated[int, typer.Option(help="The simulated broker's seed (2: margin calls, drawdowns and "
                                           "large deals within the first minute).")] = 2,
    cooldown: Annotated[float, typer.Option(
        min=0.0, help="ALERT_COOLDOWN_SECONDS of the run (repeats folded within it).")] = 30.0,
    database_url: Annotated[str, typer.Option(
        help="A PostgreSQL database this run drops and creates (its name must contain 'chaos').")
    ] = DEFAULT_DATABASE,
    output: Annotated[Path | None, typer.Option(
        help="Also write the JSON summary to this file (stdout may carry Ray's own messages).")] = None,
) -> None:
    """Run the demo engine on PostgreSQL and a private Redis for SECONDS while malformed messages go
    on every channel and key, Redis is killed and restarted and an account host is killed; then
    print a JSON summary (alerts expected, stored, delivered, duplicated, missing; what was injected;
    the restart, the kill and the recovery). Exit 1 when an alert is missing, doubled or undelivered
    or a reader stopped working."""
    from veles.bench import chaos  # Ray and the engine load only when the command runs

    summary = chaos.run(seconds, database_url, accounts=accounts, rate=rate, seed=seed, cooldown_s=cooldown,
                        progress=lambda line: typer.echo(line, err=True))
    text = json.dumps(summary, indent=2, default=str)
    typer.echo(text)
    if output is not None:
        output.write_text(text + "\n")
    if not summary["ok"]:
        raise typer.Exit(1)
