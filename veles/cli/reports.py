"""`veles reports serve`: the report worker pool on Ray and the scheduler, until Ctrl-C."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

import typer

from veles.config import get_settings
from veles.reports.settings import get_report_settings
from veles.services import reports as service

app = typer.Typer(help="Report workers and scheduled reports.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Report workers and scheduled reports."""


@app.command("serve")
def serve(
    workers: Annotated[int, typer.Option(help="Report worker actors in the pool.")] = 1,
    every: Annotated[float, typer.Option(help="Seconds between scheduler rounds.")] = 30.0,
) -> None:
    """Start the worker pool (detached Ray actors) and run the scheduler in this process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, rsettings = get_settings(), get_report_settings()
    service.start_workers(settings, rsettings, workers)
    typer.echo(f"{workers} report worker(s) running; scheduler every {every:g} s. Ctrl-C stops.", err=True)
    stop = threading.Event()
    try:
        service.run_scheduler(settings, rsettings, stop, every)
    except KeyboardInterrupt:
        stop.set()
    finally:
        service.stop_workers(settings, workers)
