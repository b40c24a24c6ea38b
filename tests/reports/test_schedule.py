"""Scheduled reports: when they fire (in their own time zone), e-mailed with the file attached
through a real local SMTP server, never twice for one period (also across a restart), and an
unreachable SMTP server recorded as the run's failure with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from models.db import session_scope, upgrade
from models.reports import Frequency, ReportSchedule, ReportStatus, ReportType, RunStatus, ScheduleRun
from models.tenancy import Role, Tenant, User
from tests.models.conftest import reset_schema
from tests.reports.conftest import NoEngine
from tests.stubs.smtp_stub import SmtpStub, free_port
from veles.config import Settings
from veles.reports.errors import ReportInputError
from veles.reports.runner import run_one
from veles.reports.schedule import latest_due
from veles.reports.settings import ReportSettings
from veles.reports.storage import open_storage
from veles.services import reports as service

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


def schedule(frequency: Frequency, local_time: str, zone: str, weekday: int | None = None) -> ReportSchedule:
    return ReportSchedule(
        tenant_id=1,
        type=ReportType.ALERTS_LOG,
        frequency=frequency,
        weekday=weekday,
        local_time=local_time,
        time_zone=zone,
        created_at=CREATED,
    )


def test_daily_fires_at_local_time_and_covers_the_local_day_before() -> None:
    daily = schedule(Frequency.DAILY, "07:30", "Europe/Berlin")
    before = latest_due(daily, datetime(2026, 3, 10, 6, 29, tzinfo=UTC))  # 07:29 in Berlin
    after = latest_due(daily, datetime(2026, 3, 10, 6, 30, tzinfo=UTC))  # 07:30 in Berlin
    assert before is not None
    assert after is not None
    assert before.fires_at == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)
    assert after.fires_at == datetime(2026, 3, 10, 6, 30, tzinfo=UTC)
    assert (after.period_start, after.period_end) == (
        datetime(2026, 3, 8, 23, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 23, 0, tzinfo=UTC),
    )


def test_a_day_across_the_spring_clock_change_is_23_hours() -> None:
    due = latest_due(
        schedule(Frequency.DAILY, "07:00", "Europe/Berlin"), datetime(2026, 3, 30, 12, tzinfo=UTC)
    )
    assert due is not None
    assert due.period_end - due.period_start == timedelta(hours=23)  # 29 March 2026 lost an hour


def test_weekly_fires_on_its_weekday_and_covers_seven_days() -> None:
    weekly = schedule(Frequency.WEEKLY, "08:00", "America/New_York", weekday=0)  # Mondays
    due = latest_due(weekly, datetime(2026, 3, 19, 12, tzinfo=UTC))  # a Thursday
    assert due is not None
    assert due.fires_at == datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # Monday 08:00 EDT
    assert due.period_end - due.period_start == timedelta(days=7)


def test_nothing_is_due_before_the_schedule_existed() -> None:
    assert latest_due(schedule(Frequency.DAILY, "23:00", "UTC"), CREATED + timedelta(hours=1)) is None


@pytest.fixture
def world(pg_url: str, tmp_path: Path) -> dict[str, Any]:
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Gamma Markets")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email="risk@gamma.test", password_hash="x", role=Role.RISK_MANAGER)
        session.add(user)
        session.flush()
        caller = service.Caller(tenant.id, user.id, Role.RISK_MANAGER)
    return {"url": pg_url, "caller": caller, "rsettings": ReportSettings(storage_dir=tmp_path / "files")}


def make_schedule(settings: Settings, caller: service.Caller) -> ReportSchedule:
    created = service.create_schedule(
        settings,
        caller,
        {
            "type": "alerts_log",
            "format": "xlsx",
            "frequency": "daily",
            "local_time": "06:00",
            "time_zone": "Asia/Tokyo",
            "recipients": ["desk@gamma.test", "cro@gamma.test"],
        },
    )
    with session_scope(settings.database_url) as session:  # as if made two days ago
        row = session.get(ReportSchedule, created.id)
        assert row is not None
        row.created_at = datetime.now(UTC) - timedelta(days=2)
    return created


def render_queued(settings: Settings, rsettings: ReportSettings) -> None:
    while (
        run_one(
            settings.database_url,
            rsettings,
            "test-worker",
            NoEngine(),
            open_storage(rsettings),
            lambda tenant, message: None,
        )
        is not None
    ):
        pass


def test_a_schedule_emails_its_report_once_even_across_a_restart(
    world: dict[str, Any], smtp_server: SmtpStub
) -> None:
    settings = Settings(database_url=world["url"], **smtp_server.settings_fields())
    rsettings = world["rsettings"]
    make_schedule(settings, world["caller"])

    scheduler = service.ReportScheduler(settings, rsettings)
    assert scheduler.tick() == {"queued": 1, "sent": 0, "failed": 0}
    assert scheduler.tick()["queued"] == 0  # the period is taken
    render_queued(settings, rsettings)
    assert scheduler.tick() == {"queued": 0, "sent": 1, "failed": 0}

    restarted = service.ReportScheduler(settings, rsettings)  # a new process, same database
    assert restarted.tick() == {"queued": 0, "sent": 0, "failed": 0}
    mails = smtp_server.wait_for(1)
    assert len(mails) == 1
    mail = mails[0]
    assert sorted(mail.rcpt_tos) == ["cro@gamma.test", "desk@gamma.test"]
    assert "Asia/Tokyo" in str(mail.message["Subject"])
    attachments = list(mail.message.iter_attachments())
    assert len(attachments) == 1
    assert attachments[0].get_filename().endswith(".xlsx")
    assert attachments[0].get_content()[:2] == b"PK"  # a zip container: the workbook itself
    with session_scope(settings.database_url) as session:
        runs = [(r.status, r.error) for r in session.exec(select(ScheduleRun))]
    assert runs == [(RunStatus.SENT, None)]


def test_an_unreachable_smtp_server_fails_the_run_with_its_reason(world: dict[str, Any]) -> None:
    settings = Settings(
        database_url=world["url"],
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_starttls=False,
        messaging_timeout=2.0,
    )
    rsettings = world["rsettings"]
    make_schedule(settings, world["caller"])
    scheduler = service.ReportScheduler(settings, rsettings)
    scheduler.tick()
    render_queued(settings, rsettings)
    assert scheduler.tick() == {"queued": 0, "sent": 0, "failed": 1}
    with session_scope(settings.database_url) as session:
        run = session.exec(select(ScheduleRun)).one()
        status, error = run.status, run.error or ""
    assert status is RunStatus.FAILED
    assert f"e-mail via 127.0.0.1:{settings.smtp_port} failed" in error
    assert service.list_reports(settings, world["caller"])[0].status is ReportStatus.READY  # the file is kept


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "weekly_digest"}, "type"),
        ({"type": "account_statement"}, "type"),
        ({"frequency": "hourly"}, "frequency"),
        ({"local_time": "7:5"}, "local_time"),
        ({"time_zone": "Nowhere/City"}, "time_zone"),
        ({"frequency": "weekly"}, "weekday"),
        ({"weekday": 2}, "weekday"),
        ({"recipients": []}, "recipients"),
        ({"recipients": ["desk@gamma.test", "not an address"]}, "recipients[1]"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(
    world: dict[str, Any], fields: dict[str, Any], field: str
) -> None:
    settings = Settings(database_url=world["url"])
    raw = {
        "type": "alerts_log",
        "frequency": "daily",
        "local_time": "06:00",
        "time_zone": "UTC",
        "recipients": ["desk@gamma.test"],
        **fields,
    }
    with pytest.raises(ReportInputError) as caught:
        service.create_schedule(settings, world["caller"], raw)
    assert caught.value.field == field
    with session_scope(settings.database_url) as session:
        assert session.exec(select(ReportSchedule)).first() is None  # nothing was saved
