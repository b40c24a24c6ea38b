"""One report from claim to file: what a report worker does each time it finds work.

Free of Ray so it runs the same in the worker actor, in tests and in one process: the caller
passes the `LiveSource` (the engine) and an `announce` callback (the bus).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from models.db import tenant_session
from veles.reports import jobs
from veles.reports.builders import build
from veles.reports.errors import ReportError
from veles.reports.gather import LiveSource, gather
from veles.reports.render import render
from veles.reports.request import check_period
from veles.reports.settings import ReportSettings
from veles.reports.storage import Storage, report_key

log = logging.getLogger(__name__)

INTERNAL_ERROR = ("The report could not be produced because of an internal error; it has been logged "
                  "for the operators. Try again later.")

Announce = Callable[[int, dict[str, Any]], None]


def report_topic(tenant_id: int) -> str:
    """The bus topic a tenant's report status changes go out on."""
    return f"reports:{tenant_id}"


class _Lease:
    """Renews a claim in the background while the report renders; stops with the `with` block."""

    def __init__(self, url: str, claim: jobs.Claim, seconds: float) -> None:
        self._url, self._claim, self._seconds = url, claim, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{claim.report_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds / 3):
            if not jobs.renew(self._url, self._claim, self._seconds):
                return

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def produce(url: str, settings: ReportSettings, claim: jobs.Claim, live: LiveSource, storage: Storage) -> str:
    """Gather, build, render and store one claimed report; returns where the file went.

    The request is checked again: a report that waited in the queue may have aged out of the
    retention window."""
    check_period(claim.request.period, datetime.now(UTC), settings.retention_days, settings.max_range_days)
    with tenant_session(url, claim.tenant_id) as session:
        inputs = gather(session, claim.tenant_id, claim.request, live)
    rendered = render(build(inputs, settings.top_accounts), claim.request.format)
    return storage.put(
        report_key(claim.tenant_id, claim.report_id, rendered.extension),
        rendered.content,
        rendered.content_type,
    )


def run_one(
    url: str, settings: ReportSettings, worker: str, live: LiveSource, storage: Storage, announce: Announce
) -> int | None:
    """Claim and produce one report; returns its id, or None when the queue is empty.

    Any error becomes the report's `error`: a ReportError's message as it is (written for the
    reader); anything else is a bug or an outage whose text may hold SQL, paths or data, so the
    reader gets a plain sentence and the details go to the worker's log only."""
    claim = jobs.claim_next(url, worker, settings.lease_seconds, settings.max_attempts)
    if claim is None:
        return None
    announce(claim.tenant_id, {"report_id": claim.report_id, "status": "running", "attempt": claim.attempt})
    try:
        with _Lease(url, claim, settings.lease_seconds):
            location = produce(url, settings, claim, live, storage)
    except ReportError as exc:
        outcome = {"status": "failed", "error": str(exc)} if jobs.fail(url, claim, str(exc)) else None
    except Exception as exc:
        log.exception("report %s failed (%s)", claim.report_id, type(exc).__name__)
        reason = INTERNAL_ERROR
        outcome = {"status": "failed", "error": reason} if jobs.fail(url, claim, reason) else None
    else:
        outcome = {"status": "ready"} if jobs.finish(url, claim, location) else None
    if outcome is None:
        log.warning("report %s was taken over by another worker; leaving it to that one", claim.report_id)
    else:
        announce(claim.tenant_id, {"report_id": claim.report_id, **outcome})
    return claim.report_id
