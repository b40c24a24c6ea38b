"""`veles engine`: run the Ray engine for every active tenant until interrupted."""

from __future__ import annotations

import asyncio
import json

import ray
import typer

from veles.config import get_settings
from veles.services.engine import start_engine, stop_engine
from veles.services.ray_runtime import connect, gcs_address


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
        typer.echo(json.dumps(status))
    typer.echo("engine running; Ctrl-C stops it")
    try:
        asyncio.run(_forever())
    except KeyboardInterrupt:
        typer.echo("stopping engine")
    finally:
        asyncio.run(stop_engine(settings))
        ray.shutdown()


async def _forever() -> None:
    await asyncio.Event().wait()
