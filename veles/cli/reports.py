"""`veles reports serve`: the report worker pool on Ray and the scheduler, until Ctrl-C; and the
same pair for `veles demo` and `veles engine`, which run them beside the engine."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from veles.config import Settings, get_settings
from veles.reports.settings import ReportSettings, get_report_settings
from veles.services import reports as service
from veles.services.preflight import enforce

app = typer.Typer(help="Report workers and scheduled reports.", no_args_is_help=True)
SCHEDULER_STOP_S = 30.0  # a scheduler round in progress (an e-mail being sent) may take this long


@app.callback()
def main() -> None:
    """Report workers and scheduled reports."""


def shared_report_settings() -> ReportSettings:
    """The report settings with the storage directory made absolute and exported, so the worker
    actors (whose working directory is Ray's) and the portal (a child process) store and read
    files in the same place as this process."""
    rsettings = get_report_settings()
    storage = rsettings.storage_dir.resolve()
    os.environ["REPORTS_STORAGE_DIR"] = str(storage)
    get_report_settings.cache_clear()
    return rsettings.model_copy(update={"storage_dir": storage})


@contextmanager
def report_service(settings: Settings, workers: int = 1, every: float = 30.0) -> Iterator[None]:
    """The worker pool (detached Ray actors) and the scheduler (a thread of this process) for as
    long as the block runs; both are stopped when it ends, however it ends."""
    rsettings = shared_report_settings()
    service.start_workers(settings, rsettings, workers)
    stop = threading.Event()
    scheduler = threading.Thread(
        target=service.run_scheduler,
        args=(settings, rsettings, stop, every),
        name="report-scheduler",
        daemon=True,
    )
    scheduler.start()
    try:
        yield
    finally:
        stop.set()
        scheduler.join(SCHEDULER_STOP_S)
        service.stop_workers(settings, workers)


@app.command("serve")
def serve(
    workers: Annotated[int, typer.Option(help="Report worker actors in the pool.")] = 1,
    every: Annotated[float, typer.Option(help="Seconds between scheduler rounds.")] = 30.0,
) -> None:
    """Start the worker pool (detached Ray actors) and run the scheduler in this process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    enforce(settings, "veles reports serve")
    rsettings = shared_report_settings()
    service.start_workers(settings, rsettings, workers)
    typer.echo(f"{workers} report worker(s) running; scheduler every {every:g} s. Ctrl-C stops.", err=True)
    stop = threading.Event()
    try:
        service.run_scheduler(settings, rsettings, stop, every)
    except KeyboardInterrupt:
        stop.set()
    finally:
        service.stop_workers(settings, workers)
