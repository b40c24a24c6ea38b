"""The report schedules page: the tenant's e-mailed reports, made, paused, re-timed and deleted here
(`veles.services.report_schedules`, in a worker thread)."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from models.reports import ReportSchedule
from veles.config import get_settings
from veles.reports.errors import ReportInputError
from veles.services import report_schedules as service
from veles.services.auth import Identity
from veles.services.permissions import Permission
from veles.services.reports import Caller
from veles_ui.state.errors import shown
from veles_ui.state.reports import TYPE_LABELS
from veles_ui.state.session import SessionState

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _caller(identity: Identity) -> Caller:
    return Caller(identity.tenant_id, identity.user_id, identity.role)


def schedule_row(row: ReportSchedule) -> dict[str, str]:
    """One schedule as the table shows it."""
    when = row.local_time + (f" on {WEEKDAYS[row.weekday]}s" if row.weekday is not None else " every day")
    return {
        "id": str(row.id),
        "type": TYPE_LABELS.get(row.type.value, row.type.value),
        "format": row.format.value.upper(),
        "when": f"{when} ({row.time_zone})",
        "local_time": row.local_time,
        "recipients": ", ".join(row.recipients),
        "enabled": "yes" if row.enabled else "paused",
        "toggle": "Pause" if row.enabled else "Resume",
    }


def form_body(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the schedule checks want them (recipients split, weekday a number)."""
    body: dict[str, Any] = {
        key: form.get(key, "") for key in ("type", "format", "frequency", "local_time", "time_zone")
    }
    body["recipients"] = [
        r.strip() for r in str(form.get("recipients", "")).replace(";", ",").split(",") if r.strip()
    ]
    weekday = str(form.get("weekday", "")).strip()
    if body["frequency"] == "weekly":
        body["weekday"] = int(weekday) if weekday.isdigit() else weekday
    return body


class ReportSchedulesState(SessionState):
    """The schedules and the outcome of the last action."""

    schedules: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    async def _reload(self, identity: Identity) -> None:
        rows = await asyncio.to_thread(service.list_schedules, get_settings(), _caller(identity))
        self.schedules = [schedule_row(row) for row in rows]

    @rx.event
    async def load(self) -> None:
        """The tenant's schedules."""
        try:
            await self._reload(await self.authorized(Permission.VIEW_RISK))
        except Exception as exc:
            self.error = shown(exc)

    @rx.event
    async def create(self, form: dict[str, str]) -> None:
        """A new schedule from the form; a bad field is named."""
        self.error = self.notice = ""
        try:
            identity = await self.changing(Permission.REQUEST_REPORTS)
            row = await asyncio.to_thread(
                service.create_schedule, get_settings(), _caller(identity), form_body(form)
            )
            await self._reload(identity)
        except Exception as exc:
            self.error = shown(exc, (ReportInputError,))
            return
        self.notice = f"Schedule {row.id} added: {schedule_row(row)['type']}, {schedule_row(row)['when']}."

    async def _change(self, schedule_id: str, body: dict[str, Any], done: str) -> None:
        self.error = self.notice = ""
        try:
            identity = await self.changing(Permission.REQUEST_REPORTS)
            await asyncio.to_thread(
                service.update_schedule, get_settings(), _caller(identity), int(schedule_id), body
            )
            await self._reload(identity)
        except Exception as exc:
            self.error = shown(exc, (ReportInputError,))
            return
        self.notice = done

    @rx.event
    async def toggle(self, schedule_id: str, enabled: str) -> None:
        """Pause a running schedule or resume a paused one."""
        resume = enabled != "yes"
        await self._change(
            schedule_id, {"enabled": resume}, f"Schedule {schedule_id} {'resumed' if resume else 'paused'}."
        )

    @rx.event
    async def retime(self, form: dict[str, str]) -> None:
        """Move a schedule to another local time."""
        schedule_id = str(form.get("schedule_id", ""))
        await self._change(
            schedule_id,
            {"local_time": str(form.get("local_time", "")).strip()},
            f"Schedule {schedule_id} now goes out at {form.get('local_time', '')}.",
        )

    @rx.event
    async def delete(self, schedule_id: str) -> None:
        """Delete a schedule (the reports it made stay)."""
        self.error = self.notice = ""
        try:
            identity = await self.changing(Permission.REQUEST_REPORTS)
            await asyncio.to_thread(
                service.delete_schedule, get_settings(), _caller(identity), int(schedule_id)
            )
            await self._reload(identity)
        except Exception as exc:
            self.error = shown(exc)
            return
        self.notice = f"Schedule {schedule_id} deleted."
