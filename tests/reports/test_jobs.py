"""The report queue on PostgreSQL: concurrent workers never claim the same report, an expired
lease is taken over and the old claim can no longer finish, and a report that keeps losing its
worker fails for good after the last attempt."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from models.db import session_scope, upgrade
from models.reports import Report, ReportStatus, ReportType
from models.tenancy import Tenant
from tests.models.conftest import reset_schema
from veles.reports import jobs

pytestmark = pytest.mark.postgres


@pytest.fixture
def queue(pg_url: str) -> tuple[str, int]:
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Queue Markets")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        return pg_url, tenant.id


def enqueue(url: str, tenant_id: int, count: int) -> list[int]:
    now = datetime.now(UTC)
    with session_scope(url) as session:
        rows = [
            Report(
                tenant_id=tenant_id,
                type=ReportType.ALERTS_LOG,
                period_start=now - timedelta(hours=1),
                period_end=now,
            )
            for _ in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows if row.id is not None]


def test_concurrent_workers_never_claim_the_same_report(queue: tuple[str, int]) -> None:
    url, tenant_id = queue
    ids = enqueue(url, tenant_id, 30)

    def drain(worker: str) -> list[int]:
        claimed = []
        while (claim := jobs.claim_next(url, worker, 60.0, 3)) is not None:
            claimed.append(claim.report_id)
        return claimed

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(drain, [f"w{i}" for i in range(4)]))
    everything = [report for claimed in results for report in claimed]
    assert sorted(everything) == sorted(ids)  # each report claimed exactly once, none missed


def test_an_expired_lease_is_taken_over_and_the_old_claim_is_fenced_off(queue: tuple[str, int]) -> None:
    url, tenant_id = queue
    [report_id] = enqueue(url, tenant_id, 1)
    first = jobs.claim_next(url, "dead-worker", -1.0, 3)  # a lease that has already run out
    assert first is not None
    second = jobs.claim_next(url, "live-worker", 60.0, 3)
    assert second is not None
    assert (second.report_id, second.attempt) == (report_id, 2)
    assert not jobs.finish(url, first, "tenant-x/report-stale.pdf")  # the old claim lost the report
    assert not jobs.renew(url, first, 60.0)
    assert jobs.finish(url, second, "tenant-x/report-1.pdf")
    with session_scope(url) as session:
        row = session.exec(select(Report)).one()
        assert (row.status, row.file_location, row.attempts) == (
            ReportStatus.READY,
            "tenant-x/report-1.pdf",
            2,
        )


def test_a_report_that_keeps_losing_its_worker_fails_after_the_last_attempt(queue: tuple[str, int]) -> None:
    url, tenant_id = queue
    enqueue(url, tenant_id, 1)
    for _ in range(2):
        assert jobs.claim_next(url, "doomed", -1.0, 2) is not None
    assert jobs.claim_next(url, "doomed", -1.0, 2) is None
    with session_scope(url) as session:
        row = session.exec(select(Report)).one()
        assert row.status is ReportStatus.FAILED
        assert "gave up after 2 attempts" in (row.error or "")


def test_a_restarted_worker_takes_back_what_its_earlier_life_held(queue: tuple[str, int]) -> None:
    url, tenant_id = queue
    enqueue(url, tenant_id, 2)
    assert jobs.claim_next(url, "report-worker:0", 60.0, 3) is not None
    assert jobs.claim_next(url, "report-worker:1", 60.0, 3) is not None
    assert jobs.release_stale(url, "report-worker:0") == 1  # only its own, not worker 1's
    again = jobs.claim_next(url, "report-worker:0", 60.0, 3)
    assert again is not None
    assert again.attempt == 2
