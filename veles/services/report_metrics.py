"""The report workers as `/metrics` exports them, read from the queue they share.

A report worker serves no HTTP: it claims reports from the database's queue, renews its lease
while rendering and marks the outcome (`veles.reports.jobs`). That queue is the workers' whole
shared state, so every portal replica reads it for Prometheus: reports per status, how long the
oldest queued report has waited (no worker taking work shows here first), running reports whose
lease ran out (a worker that died or stalls mid-report) and the workers holding a live claim.
Read in a thread, off the event loop; a database that does not answer leaves the figures out and
says so (`veles_report_queue_reachable 0`) instead of failing the scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import select

from models.db import session_scope
from models.reports import Report, ReportStatus
from veles.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportQueueStats:
    """One look at the report queue."""

    by_status: dict[str, int] = field(default_factory=dict)
    oldest_queued_s: float = 0.0  # 0 with nothing queued
    expired_leases: int = 0
    busy_workers: int = 0


def worker_name(claimed_by: str) -> str:
    """The worker's stable name in a claim token (`jobs.claim_token`: '<worker>#<claim>')."""
    return claimed_by.rsplit("#", 1)[0]


def report_queue_stats(url: str, now: datetime | None = None) -> ReportQueueStats:
    """The queue as it is now, every tenant's (a platform session)."""
    now = now or datetime.now(UTC)
    with session_scope(url) as session:
        counts = dict(session.exec(select(Report.status, func.count()).group_by(Report.status)).all())
        oldest = session.exec(select(func.min(Report.created_at))
                              .where(Report.status == ReportStatus.QUEUED)).one()
        running = session.exec(select(Report.claimed_by, Report.lease_until)
                               .where(Report.status == ReportStatus.RUNNING)).all()
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    expired, workers = 0, set()
    for claimed_by, lease_until in running:
        until = lease_until.replace(tzinfo=UTC) if lease_until and lease_until.tzinfo is None else lease_until
        if until is None or until < now:
            expired += 1
        elif claimed_by:
            workers.add(worker_name(claimed_by))
    return ReportQueueStats(
        by_status={str(status.value if isinstance(status, ReportStatus) else status): int(n)
                   for status, n in counts.items()},
        oldest_queued_s=max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
        expired_leases=expired,
        busy_workers=len(workers),
    )


async def read_report_queue(settings: Settings) -> ReportQueueStats | None:
    """`report_queue_stats` in a thread; None when the database does not answer."""
    try:
        return await asyncio.to_thread(report_queue_stats, settings.database_url)
    except Exception as exc:  # the scrape still answers, saying the queue could not be read
        log.warning("report queue metrics unavailable: %s", exc)
        return None


class ReportQueueCollector(Collector):
    """The report queue's figures for one scrape (`None`: the queue could not be read)."""

    def __init__(self, stats: ReportQueueStats | None) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """Reachability, then reports per status (every status, 0 when none), the oldest queued
        report's wait, expired leases and busy workers."""
        yield GaugeMetricFamily("veles_report_queue_reachable",
                                "1 when this scrape could read the report queue.",
                                value=0 if self._stats is None else 1)
        if self._stats is None:
            return
        reports = GaugeMetricFamily("veles_reports", "Reports in the queue by status.", labels=["status"])
        for status in ReportStatus:
            reports.add_metric([status.value], self._stats.by_status.get(status.value, 0))
        yield reports
        yield GaugeMetricFamily("veles_report_oldest_queued_seconds",
                                "How long the oldest queued report has waited for a worker (0: none queued).",
                                value=self._stats.oldest_queued_s)
        yield GaugeMetricFamily("veles_report_expired_leases",
                                "Running reports whose worker's lease ran out (died or stalled); "
                                "claimed again up to the attempt limit.",
                                value=self._stats.expired_leases)
        yield GaugeMetricFamily("veles_report_busy_workers",
                                "Report workers holding a live claim now.", value=self._stats.busy_workers)

