"""Report schedules as the portal and the API manage them: list, create, change, delete.

Checks are the scheduler's own (`veles.reports.schedule.check_schedule`, and e-mail addresses by
the messaging rules through `create_schedule`), so what the scheduler runs is what was accepted
here. Every call is confined to the caller's tenant (row-level security) and blocking: the API
and the portal run it in a worker thread.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, delete, select

from models.db import tenant_session
from models.reports import ReportSchedule, ScheduleRun
from veles.config import Settings
from veles.reports.errors import ReportInputError
from veles.services.errors import NotFound
from veles.services.permissions import Permission, require
from veles.services.reports import Caller, checked_schedule, create_schedule

__all__ = ["create_schedule", "delete_schedule", "list_schedules", "schedule_view", "update_schedule"]


def schedule_view(row: ReportSchedule) -> dict[str, Any]:
    """A schedule as clients see it."""
    return {
        "id": row.id, "type": row.type.value, "format": row.format.value, "frequency": row.frequency.value,
        "weekday": row.weekday, "local_time": row.local_time, "time_zone": row.time_zone,
        "recipients": list(row.recipients), "enabled": row.enabled, "created_at": row.created_at.isoformat(),
    }


def list_schedules(settings: Settings, caller: Caller) -> list[ReportSchedule]:
    """The tenant's schedules, oldest first."""
    require(caller.role, Permission.VIEW_RISK)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        rows = list(session.exec(select(ReportSchedule)
                                 .where(col(ReportSchedule.tenant_id) == caller.tenant_id)
                                 .order_by(col(ReportSchedule.id))))
        for row in rows:
            session.expunge(row)
    return rows


def _mine(session: Any, caller: Caller, schedule_id: int) -> ReportSchedule:
    row = session.get(ReportSchedule, schedule_id)
    if row is None or row.tenant_id != caller.tenant_id:
        raise NotFound(f"No report schedule {schedule_id}.")
    return row


def update_schedule(
    settings: Settings, caller: Caller, schedule_id: int, raw: dict[str, Any]
) -> ReportSchedule:
    """Change a schedule: the fields given replace the stored ones (checked together, as a new
    schedule would be); `enabled` pauses or resumes it. ReportInputError names a bad field."""
    require(caller.role, Permission.REQUEST_REPORTS)
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ReportInputError("enabled", "must be true or false")
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        row = _mine(session, caller, schedule_id)
        current = {**schedule_view(row), **{k: v for k, v in raw.items() if k != "enabled"}}
        fields = checked_schedule(current)
        fields.setdefault("weekday", None)
        for name, value in fields.items():
            setattr(row, name, value)
        if enabled is not None:
            row.enabled = enabled
        session.add(row)
        session.flush()
        session.refresh(row)
        session.expunge(row)
    return row


def delete_schedule(settings: Settings, caller: Caller, schedule_id: int) -> None:
    """Delete a schedule and the record of its runs (the reports it made stay)."""
    require(caller.role, Permission.REQUEST_REPORTS)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        row = _mine(session, caller, schedule_id)
        session.execute(delete(ScheduleRun).where(col(ScheduleRun.schedule_id) == schedule_id,
                                                  col(ScheduleRun.tenant_id) == caller.tenant_id))
        session.delete(row)
