"""The report workers' figures in /metrics, read from the queue on PostgreSQL: reports per status,
the oldest queued report's wait, a running report whose worker's lease ran out, the workers with a
live claim; and a database that does not answer leaves the scrape answering, saying so."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func
from sqlmodel import select

from models.db import session_scope, upgrade
from models.reports import Report, ReportStatus
from models.tenancy import Tenant
from tests.api.conftest import settings_for
from tests.models.conftest import reset_schema
from tests.reports.test_jobs import enqueue
from veles.reports import jobs
from veles.services.report_metrics import (
    ReportQueueCollector,
    read_report_queue,
    report_queue_stats,
    worker_name,
)

pytestmark = pytest.mark.postgres


def _samples(collector: ReportQueueCollector) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, s.labels.get("status", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_queue_as_the_workers_left_it(pg_url: str) -> None:
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Metrics Markets")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tenant_id = tenant.id
    enqueue(pg_url, tenant_id, 6)
    done = jobs.claim_next(pg_url, "worker-a", 60.0, 3)
    broken = jobs.claim_next(pg_url, "worker-a", 60.0, 3)
    assert done is not None
    assert broken is not None
    assert jobs.finish(pg_url, done, "tenant/report.pdf")
    assert jobs.fail(pg_url, broken, "the engine was away")
    assert jobs.claim_next(pg_url, "worker-b", 60.0, 3) is not None  # rendering now
    assert jobs.claim_next(pg_url, "worker-dead", -1.0, 3) is not None  # its lease already ran out
    with session_scope(pg_url) as session:
        queued = select(func.min(Report.created_at)).where(Report.status == ReportStatus.QUEUED)
        created = session.exec(queued).one()
    assert created is not None
    later = created + timedelta(seconds=30)  # within worker-b's 60 s lease

    stats = report_queue_stats(pg_url, now=later)
    assert stats.by_status == {"ready": 1, "failed": 1, "running": 2, "queued": 2}
    assert stats.oldest_queued_s == pytest.approx(30.0, abs=1e-3)
    assert (stats.expired_leases, stats.busy_workers) == (1, 1)  # worker-b; worker-dead's lease is gone

    samples = _samples(ReportQueueCollector(stats))
    assert samples["veles_report_queue_reachable", ""] == 1
    statuses = ("queued", "running", "ready", "failed")
    by_status = {status: samples["veles_reports", status] for status in statuses}
    assert by_status == {"queued": 2, "running": 2, "ready": 1, "failed": 1}
    assert samples["veles_report_oldest_queued_seconds", ""] == pytest.approx(30.0, abs=1e-3)
    assert samples["veles_report_expired_leases", ""] == 1
    assert samples["veles_report_busy_workers", ""] == 1


def test_an_empty_queue_waits_zero_and_names_every_status(pg_url: str) -> None:
    reset_schema(pg_url)
    upgrade(pg_url)
    stats = report_queue_stats(pg_url, now=datetime.now(UTC))
    assert (stats.by_status, stats.oldest_queued_s) == ({}, 0.0)
    assert (stats.expired_leases, stats.busy_workers) == (0, 0)
    samples = _samples(ReportQueueCollector(stats))
    assert {k: v for k, v in samples.items() if k[0] == "veles_reports"} == {
        ("veles_reports", s): 0 for s in ("queued", "running", "ready", "failed")}


def test_a_database_that_does_not_answer_leaves_the_scrape_saying_so() -> None:
    dead = settings_for("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", None)
    stats = asyncio.run(read_report_queue(dead))
    assert stats is None
    samples = _samples(ReportQueueCollector(stats))
    assert samples == {("veles_report_queue_reachable", ""): 0}


def test_the_worker_is_named_by_its_claim_token() -> None:
    assert worker_name(jobs.claim_token("reports-7f#2")) == "reports-7f#2"
    assert worker_name("plain") == "plain"
