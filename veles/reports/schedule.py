"""Scheduled reports: when each schedule is due, and the database claims that make a period go out
at most once.

A schedule fires at `local_time` in its own `time_zone` every day (or on `weekday` every week) and
covers the local day (or the seven local days) that ended at the midnight before the firing. Only
the latest due period is ever queued: after a long outage one catch-up report goes out, not a
backlog. A period belongs to whoever inserts its `schedule_run` row first (unique per schedule and
period), and the e-mail is sent only by whoever moves that run from `queued` to `sending`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from models.db import session_scope
from models.reports import (
    Frequency,
    Report,
    ReportFormat,
    ReportSchedule,
    ReportStatus,
    ReportType,
    RunStatus,
    ScheduleRun,
)
from veles.reports.errors import ReportInputError
from veles.reports.request import check_zone, utc

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Due:
    """One firing of a schedule and the period its report covers (UTC)."""

    fires_at: datetime
    period_start: datetime
    period_end: datetime


def check_schedule(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The schedule fields of a form or API body, checked; ReportInputError names a bad one.
    Recipients are checked by the caller (the messaging service owns address rules)."""
    fields: dict[str, Any] = {}
    for name, enum in (("type", ReportType), ("format", ReportFormat), ("frequency", Frequency)):
        value = raw.get(name, "pdf" if name == "format" else None)
        try:
            fields[name] = enum(value)
        except ValueError:
            raise ReportInputError(
                name, f"{value!r} is not one of {', '.join(m.value for m in enum)}"
            ) from None
    if fields["type"] is ReportType.ACCOUNT_STATEMENT:
        raise ReportInputError("type", "account statements are not scheduled; request them one by one")
    local_time = raw.get("local_time")
    if not isinstance(local_time, str) or not _HHMM.match(local_time):
        raise ReportInputError("local_time", f"{local_time!r} is not a time like 07:30")
    fields["local_time"] = local_time
    fields["time_zone"] = check_zone(raw.get("time_zone"))
    weekday = raw.get("weekday")
    if fields["frequency"] is Frequency.WEEKLY:
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ReportInputError(
                "weekday", "a weekly schedule needs a weekday from 0 (Monday) to 6 (Sunday)"
            )
        fields["weekday"] = weekday
    elif weekday is not None:
        raise ReportInputError("weekday", "only weekly schedules take a weekday")
    recipients = raw.get("recipients")
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, str) for r in recipients):
        raise ReportInputError("recipients", "give at least one e-mail address")
    fields["recipients"] = recipients
    return fields


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def latest_due(schedule: ReportSchedule, now: datetime) -> Due | None:
    """The latest firing at or before `now`, or None if there has been none since the schedule
    was created (schedules do not reach back before they existed)."""
    tz = ZoneInfo(schedule.time_zone)
    hour, minute = (int(part) for part in schedule.local_time.split(":"))
    local_now = now.astimezone(tz)
    day = local_now.date()
    if schedule.frequency is Frequency.WEEKLY:
        assert schedule.weekday is not None
        day -= timedelta(days=(day.weekday() - schedule.weekday) % 7)
    step = timedelta(days=7 if schedule.frequency is Frequency.WEEKLY else 1)
    fires = datetime.combine(day, time(hour, minute), tz)
    if fires > local_now:
        day -= step
        fires = datetime.combine(day, time(hour, minute), tz)
    if fires < utc(schedule.created_at):
        return None
    return Due(fires.astimezone(UTC), _midnight(day - step, tz), _midnight(day, tz))


def queue_due(url: str, now: datetime) -> list[int]:
    """Queue the report of every schedule whose latest period has no run yet; returns the report
    ids queued. Safe to call from several processes at once: the unique run row decides."""
    queued: list[int] = []
    with session_scope(url) as session:
        schedules = list(session.exec(select(ReportSchedule).where(col(ReportSchedule.enabled))))
        for schedule in schedules:
            due = latest_due(schedule, now)
            if due is None:
                continue
            assert schedule.id is not None
            try:
                with session.begin_nested():
                    run = ScheduleRun(
                        tenant_id=schedule.tenant_id,
                        schedule_id=schedule.id,
                        period_start=due.period_start,
                        period_end=due.period_end,
                    )
                    session.add(run)
                    session.flush()
                    report = Report(
                        tenant_id=schedule.tenant_id,
                        type=schedule.type,
                        format=schedule.format,
                        parameters=dict(schedule.parameters),
                        period_start=due.period_start,
                        period_end=due.period_end,
                        time_zone=schedule.time_zone,
                        requested_by=schedule.created_by,
                        schedule_run_id=run.id,
                    )
                    session.add(report)
                    session.flush()
            except IntegrityError:
                continue  # this period is already someone's
            assert report.id is not None
            queued.append(report.id)
    return queued


@dataclass(frozen=True)
class Delivery:
    """A finished report of a schedule, waiting to be e-mailed."""

    run_id: int
    tenant_id: int
    recipients: list[str]
    report: Report


def deliverable(url: str) -> list[Delivery]:
    """Runs still `queued` whose report has finished (ready or failed)."""
    with session_scope(url) as session:
        rows = session.exec(
            select(ScheduleRun, ReportSchedule, Report)
            .where(
                col(ScheduleRun.status) == RunStatus.QUEUED,
                col(ReportSchedule.id) == col(ScheduleRun.schedule_id),
                col(Report.schedule_run_id) == col(ScheduleRun.id),
                col(Report.status).in_([ReportStatus.READY, ReportStatus.FAILED]),
            )
            .order_by(col(ScheduleRun.id))
        ).all()
        deliveries = []
        for run, schedule, report in rows:
            session.expunge(report)
            assert run.id is not None
            deliveries.append(Delivery(run.id, run.tenant_id, list(schedule.recipients), report))
    return deliveries


def _move(url: str, run_id: int, source: RunStatus, target: RunStatus, error: str | None = None) -> bool:
    with session_scope(url) as session:
        values: dict[str, Any] = {"status": target, "error": error}
        if target is RunStatus.SENT:
            values["sent_at"] = datetime.now(UTC)
        result = session.exec(
            update(ScheduleRun)
            .where(col(ScheduleRun.id) == run_id, col(ScheduleRun.status) == source)
            .values(**values)
        )
        return bool(result.rowcount)


def claim_delivery(url: str, run_id: int) -> bool:
    """Take the right to send this run's e-mail; False if another sender has it. A run left in
    `sending` by a crash is not retried: better one missing e-mail than two."""
    return _move(url, run_id, RunStatus.QUEUED, RunStatus.SENDING)


def finish_delivery(url: str, run_id: int, error: str | None = None) -> None:
    """Record the run as sent, or failed with `error`."""
    _move(
        url,
        run_id,
        RunStatus.SENDING,
        RunStatus.FAILED if error else RunStatus.SENT,
        error[:2000] if error else None,
    )
