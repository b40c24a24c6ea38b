"""Report schedules: `/api/v1/report-schedules` lists, creates, changes and deletes the tenant's
e-mailed reports (daily or weekly at a local time; any report type but account statements, the
management and stress reports included). A bad field is a 422 naming it; another tenant's schedule
is 404."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status

from veles.api.db import RowId
from veles.api.deps import Context, requires
from veles.services import report_schedules as service
from veles.services.auth import Identity
from veles.services.permissions import Permission
from veles.services.reports import Caller

router = APIRouter(prefix="/api/v1/report-schedules", tags=["reports"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]
Requester = Annotated[Identity, Depends(requires(Permission.REQUEST_REPORTS))]
_MISSING: dict[int | str, dict[str, Any]] = {404: {"description": "No such schedule in your tenant"}}


def _caller(identity: Identity) -> Caller:
    return Caller(identity.tenant_id, identity.user_id, identity.role)


@router.get("")
async def list_schedules(ctx: Context, identity: Viewer) -> list[dict[str, Any]]:
    """The tenant's report schedules."""
    rows = await asyncio.to_thread(service.list_schedules, ctx.settings, _caller(identity))
    return [service.schedule_view(row) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create(
    ctx: Context, identity: Requester, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """A new schedule: `type`, `format` (pdf|xlsx), `frequency` (daily|weekly), `weekday` (weekly:
    0 Monday .. 6 Sunday), `local_time` (HH:MM), `time_zone` (IANA), `recipients` (e-mails)."""
    row = await asyncio.to_thread(service.create_schedule, ctx.settings, _caller(identity), body)
    return service.schedule_view(row)


@router.patch("/{schedule_id}", responses=_MISSING)
async def update(ctx: Context, identity: Requester, schedule_id: RowId,
                 body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Change any of the fields above, or `enabled` (false pauses the schedule)."""
    row = await asyncio.to_thread(service.update_schedule, ctx.settings, _caller(identity), schedule_id, body)
    return service.schedule_view(row)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_MISSING)
async def delete(ctx: Context, identity: Requester, schedule_id: RowId) -> None:
    """Delete a schedule (the reports it already made stay)."""
    await asyncio.to_thread(service.delete_schedule, ctx.settings, _caller(identity), schedule_id)
