"""`veles engine`: run the Ray engine for every active tenant, with the report workers and the
report scheduler beside it, until interrupted."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext

import ray
import typer

from veles.billing.dunning import run_dunning
from veles.cli.reports import report_service
from veles.config import Settings, get_settings
from veles.services.engine import engine_status, start_connected, start_engine, status_line, stop_engine
from veles.services.preflight import enforce
from veles.services.ray_runtime import connect, gcs_address

STATUS_EVERY_S = 30


def run_engine(
    simulated_accounts: int = typer.Option(
        0, "--simulated-accounts", help="Feed every tenant from a simulated broker of this many accounts."
    ),
    report_workers: int = typer.Option(1, "--report-workers", min=0, help="Report worker actors (0: none)."),
) -> None:
    """Start one supervisor per tenant with a connection (local Ray, or the cluster at
    RAY_ADDRESS) and the report workers and scheduler, and keep them running."""
    settings = get_settings()
    enforce(settings, "veles engine")
    connect(settings)
    typer.echo(f"ray cluster: {gcs_address()}")
    try:
        for status in asyncio.run(start_engine(settings, simulated_accounts)):
            typer.echo(status_line(status))
        with report_service(settings, report_workers) if report_workers else nullcontext():
            typer.echo(f"engine running with {report_workers} report worker(s); status every "
                       f"{STATUS_EVERY_S} s; Ctrl-C stops it")
            asyncio.run(_report_forever(settings))
    except KeyboardInterrupt:
        typer.echo("stopping engine")
    finally:
        asyncio.run(stop_engine(settings))
        ray.shutdown()


async def _report_forever(settings: Settings) -> None:
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        for tenant_id in await start_connected(settings):  # a connection the engine was not told of
            typer.echo(f"tenant {tenant_id}: engine started for its first connection")
        for status in await engine_status(settings):
            typer.echo(status_line(status))
        for step in await run_dunning(settings):  # trials ended, grace periods over (veles.billing)
            typer.echo(f"tenant {step.tenant_id}: billing {step.to.value} ({step.why})")
