"""The whole report flow on the real PostgreSQL, Redis and Ray: request → queued → a worker
renders it → ready → announced on the bus → downloaded; another tenant gets nothing; a worker
killed mid-render still yields the report exactly once; bad inputs fail the report with a reason."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import ray
from sqlmodel import select

from actors.mt5_account import AccountActor
from actors.names import aggregator_name
from actors.risk_aggregator import RiskAggregator
from models.db import session_scope, upgrade
from models.reports import Report, ReportStatus
from tests.models.conftest import reset_schema
from tests.reports.conftest import seed_brokers
from veles.bus import RedisBus
from veles.config import Settings
from veles.mt5.simulator import SimulatedBroker
from veles.reports.runner import report_topic
from veles.reports.settings import ReportSettings
from veles.services import reports as service
from veles.services.permissions import PermissionDenied

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.ray]
NAMESPACE = "veles-test"


def wait_for(predicate: Any, what: str, timeout: float = 90.0, every: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy (tests must not hang: fail naming what never happened)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:
    reset_schema(pg_url)
    upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="module")
def tenants(db: str) -> dict[str, service.Caller]:
    """Two brokers, each with a risk manager and a viewer, as report callers."""
    return {key: service.Caller(tenant, user, role)
            for key, (tenant, user, role) in seed_brokers(db, " Markets").items()}


@pytest.fixture(scope="module")
def settings(db: str, redis_url_module: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=db, redis_url=redis_url_module, ray_namespace=NAMESPACE)


@pytest.fixture(scope="module")
def rsettings(tmp_path_factory: pytest.TempPathFactory) -> ReportSettings:
    return ReportSettings(storage_dir=tmp_path_factory.mktemp("reports"), lease_seconds=5, poll_seconds=0.2)


@pytest.fixture(scope="module")
def engine(ray_local: None, tenants: dict[str, service.Caller]) -> Iterator[None]:
    """A real RiskAggregator for Alpha holding 300 accounts computed by the risk core."""
    tenant = tenants["Alpha-risk_manager"].tenant_id
    broker = SimulatedBroker(accounts=300, seed=5, warmup=30.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    aggregator = RiskAggregator.options(name=aggregator_name(tenant), namespace=NAMESPACE).remote(  # type: ignore[attr-defined]
        tenant, 4.0, None
    )
    figures = [AccountActor(s, symbols, board).figures() for s in broker.accounts()]
    ray.get(aggregator.apply.remote(figures, time.time()))
    yield
    ray.kill(aggregator)


@pytest.fixture(scope="module")
def workers(engine: None, settings: Settings, rsettings: ReportSettings) -> Iterator[list[Any]]:
    handles = service.start_workers(settings, rsettings, count=1)
    yield handles
    service.stop_workers(settings, count=1)


def day() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(days=1)).isoformat(),
        "end": now.isoformat(),
        "time_zone": "Europe/Berlin",
    }


def status(settings: Settings, caller: service.Caller, report_id: int) -> Report:
    return service.get_report(settings, caller, report_id)


def test_request_ready_announced_downloaded_and_hidden_from_other_tenants(
    workers: list[Any],
    settings: Settings,
    rsettings: ReportSettings,
    tenants: dict[str, service.Caller],
    redis_url_module: str,
) -> None:
    alpha, beta = tenants["Alpha-risk_manager"], tenants["Beta-risk_manager"]

    async def request_and_hear() -> tuple[Report, dict[str, Any]]:
        bus = RedisBus(redis_url_module, settings.redis_prefix)
        messages = bus.subscribe(report_topic(alpha.tenant_id))
        try:
            first = asyncio.ensure_future(anext(messages))
            await asyncio.sleep(0.3)  # the subscription is in place before the report is queued
            report = service.request_report(settings, rsettings, alpha, {"type": "daily_risk", **day()})
            assert report.status is ReportStatus.QUEUED
            heard = await asyncio.wait_for(first, 60)
            while heard.get("status") not in ("ready", "failed"):
                heard = await asyncio.wait_for(anext(messages), 60)
            return report, heard
        finally:
            await messages.aclose()
            await bus.aclose()

    report, heard = asyncio.run(request_and_hear())
    assert report.id is not None
    assert heard == {"report_id": report.id, "status": "ready"}
    done = status(settings, alpha, report.id)
    assert done.status is ReportStatus.READY, done.error
    file = service.report_file(settings, rsettings, alpha, report.id)
    assert file.content.startswith(b"%PDF")
    assert file.name == f"daily-risk-{report.id}.pdf"

    link = service.signed_link(settings, rsettings, alpha, report.id)
    query = dict(part.split("=") for part in link.split("?")[1].split("&"))
    by_link = service.file_by_link(
        settings, rsettings, report.id, int(query["tenant"]), int(query["expires"]), query["sig"]
    )
    assert by_link.content == file.content
    with pytest.raises(service.LinkInvalid, match="not valid"):
        service.file_by_link(
            settings, rsettings, report.id, beta.tenant_id, int(query["expires"]), query["sig"]
        )
    with pytest.raises(service.LinkInvalid, match="not valid"):
        service.file_by_link(
            settings, rsettings, report.id, alpha.tenant_id, int(query["expires"]) + 60, query["sig"]
        )

    with pytest.raises(service.ReportNotFound):
        service.report_file(settings, rsettings, beta, report.id)
    with pytest.raises(service.ReportNotFound):
        service.signed_link(settings, rsettings, beta, report.id)
    viewer = tenants["Alpha-viewer"]
    assert service.report_file(settings, rsettings, viewer, report.id).content == file.content
    with pytest.raises(PermissionDenied):  # a viewer downloads, but does not queue
        service.request_report(settings, rsettings, viewer, day())


def test_a_worker_killed_mid_render_still_yields_the_report_exactly_once(
    workers: list[Any],
    settings: Settings,
    rsettings: ReportSettings,
    tenants: dict[str, service.Caller],
) -> None:
    alpha = tenants["Alpha-risk_manager"]
    pid = ray.get(workers[0].pid.remote())
    report = service.request_report(
        settings, rsettings, alpha, {"type": "daily_risk", "format": "pdf", **day()}
    )
    assert report.id is not None
    wait_for(
        lambda: status(settings, alpha, report.id).status is ReportStatus.RUNNING, "the claim", every=0.005
    )
    os.kill(pid, signal.SIGKILL)
    done = wait_for(
        lambda: (
            (r := status(settings, alpha, report.id)).status in (ReportStatus.READY, ReportStatus.FAILED)
            and r
        ),
        "the report after the kill",
    )
    assert done.status is ReportStatus.READY, done.error
    assert done.attempts == 2  # claimed by the killed life, then once more by the restarted one
    files = list(Path(rsettings.storage_dir).rglob(f"report-{report.id}.*"))
    assert [f.name for f in files] == [f"report-{report.id}.pdf"]
    assert not list(Path(rsettings.storage_dir).rglob(".part-*"))
    assert ray.get(workers[0].pid.remote()) != pid  # Ray restarted the worker in a new process


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"type": "daily_risk", "start": "2020-01-01T00:00+00:00", "end": "2020-01-02T00:00+00:00"},
            "retention window",
        ),
        ({"type": "daily_risk", "start": "now", "end": "now"}, "the range is empty"),
        ({"type": "account_statement", "login": 424242}, "supervisor not found"),
    ],
)
def test_bad_queued_reports_fail_with_their_reason(
    workers: list[Any],
    settings: Settings,
    rsettings: ReportSettings,
    tenants: dict[str, service.Caller],
    fields: dict[str, Any],
    reason: str,
) -> None:
    """Rows written straight to the queue (as an old or scheduled request might be) are checked
    again by the worker; a statement needs the supervisor, which this test engine (an aggregator
    alone) lacks."""
    alpha = tenants["Alpha-risk_manager"]
    now = datetime.now(UTC)
    start = datetime.fromisoformat(fields["start"]) if fields.get("start", "now") != "now" else now
    end = datetime.fromisoformat(fields["end"]) if fields.get("end", "now") != "now" else now
    if "start" not in fields:
        start, end = now - timedelta(hours=6), now
    with session_scope(settings.database_url) as session:
        row = Report(
            tenant_id=alpha.tenant_id,
            type=fields["type"],
            period_start=start,
            period_end=end,
            parameters={"login": fields["login"]} if "login" in fields else {},
        )
        session.add(row)
        session.flush()
        report_id = row.id
    assert report_id is not None
    done = wait_for(
        lambda: (r := status(settings, alpha, report_id)).status is ReportStatus.FAILED and r,
        f"report {report_id} to fail",
    )
    assert reason in (done.error or "")


def test_a_tenant_without_a_running_engine_gets_a_failed_report(
    workers: list[Any],
    settings: Settings,
    rsettings: ReportSettings,
    tenants: dict[str, service.Caller],
) -> None:
    beta = tenants["Beta-risk_manager"]
    report = service.request_report(settings, rsettings, beta, {"type": "exposure", **day()})
    assert report.id is not None
    done = wait_for(
        lambda: (r := status(settings, beta, report.id)).status is ReportStatus.FAILED and r,
        "the exposure report to fail",
    )
    assert "risk engine is not running" in (done.error or "")
    with session_scope(settings.database_url) as session:
        assert session.exec(select(Report).where(Report.id == report.id)).one().attempts == 1
