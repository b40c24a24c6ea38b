"""`veles engine`: run the Ray engine for every active tenant until interrupted."""

from __future__ import annotations

import asyncio

import ray
import typer

from veles.config import Settings, get_settings
from veles.services.engine import engine_status, start_engine, status_line, stop_engine
from veles.services.ray_runtime import connect, gcs_address

STATUS_EVERY_S = 30


def run_engine(
    simulated_accounts: int = typer.Option(
        0, "--simulated-accounts", help="Feed every tenant from a simulated broker of this many accounts."
    ),
) -> None:
    """Start one supervisor per tenant (local Ray, or the cluster at RAY_ADDRESS) and keep them running."""
    settings = get_settings()
    connect(settings)
    typer.echo(f"ray cluster: {gcs_address()}")
    for status in asyncio.run(start_engine(settings, simulated_accounts)):
        typer.echo(status_line(status))
    typer.echo(f"engine running; status every {STATUS_EVERY_S} s; Ctrl-C stops it")
    try:
        asyncio.run(_report_forever(settings))
    except KeyboardInterrupt:
        typer.echo("stopping engine")
    finally:
        asyncio.run(stop_engine(settings))
        ray.shutdown()


async def _report_forever(settings: Settings) -> None:
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        for status in await engine_status(settings):
            typer.echo(status_line(status))
