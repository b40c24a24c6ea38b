"""The report queue on PostgreSQL: concurrent workers never claim the same report, an expired
lease is taken over and the old claim can no longer finish, and a report that keeps losing its
worker fails for good after the last attempt."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from actors.mt5_account import AccountActor
from actors.report_worker import detail_row
from models.db import session_scope, upgrade
from models.reports import Report, ReportStatus, ReportType
from models.tenancy import Tenant
from tests.models.conftest import reset_schema
from veles.mt5.simulator import SimulatedBroker
from veles.reports import jobs
from veles.reports.errors import SourceError
from veles.reports.gather import Row
from veles.reports.runner import INTERNAL_ERROR, run_one
from veles.reports.settings import ReportSettings
from veles.reports.storage import LocalStorage

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


def test_a_failure_shows_the_reader_no_sql_and_logs_it(
    queue: tuple[str, int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A statement for login 2^70 queued before requests were range-checked (as it once could be)
    fails in PostgreSQL's bigint; the report says so in a sentence, the SQL goes to the log only."""
    url, tenant_id = queue
    broker = SimulatedBroker(accounts=1, seed=3)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    account = detail_row(AccountActor(broker.accounts()[0], symbols, board).detail())

    class OneAccount:
        """The engine answering for any login, so the request reaches the database."""

        def book(self, tenant_id: int) -> Row:
            raise SourceError("a statement must not read the whole book")

        def account(self, tenant_id: int, login: int) -> Row | None:
            return account

    now = datetime.now(UTC)
    with session_scope(url) as session:
        row = Report(tenant_id=tenant_id, type=ReportType.ACCOUNT_STATEMENT,
                     period_start=now - timedelta(hours=1), period_end=now, parameters={"login": 2**70})
        session.add(row)
        session.flush()
        report_id = row.id
    announced: list[dict[str, object]] = []
    settings = ReportSettings(storage_dir=tmp_path)
    with caplog.at_level(logging.ERROR, logger="veles.reports.runner"):
        ran = run_one(url, settings, "w1", OneAccount(), LocalStorage(tmp_path),
                      lambda _tenant, notice: announced.append(notice))
    assert ran == report_id
    with session_scope(url) as session:
        failed = session.get(Report, report_id)
        assert failed is not None
        assert failed.status is ReportStatus.FAILED
        error = failed.error or ""
    assert error == INTERNAL_ERROR
    assert announced[-1] == {"report_id": report_id, "status": "failed", "error": INTERNAL_ERROR}
    for sql in ("SELECT", "deal", "%(", "bigint", "psycopg"):
        assert sql not in error
    assert "SELECT" in caplog.text  # the operators still get the whole story
