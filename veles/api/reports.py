"""Report routes: request, list, status, download, and signed links that work without a sign-in.

The tenant always comes from the token (or the link's signature), so another tenant's report is a
404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel

from models.reports import Report
from veles.api.db import RowId
from veles.api.deps import Context, CurrentIdentity, requires
from veles.reports.errors import ReportInputError, StorageError
from veles.reports.settings import get_report_settings
from veles.services import reports as service
from veles.services.auth import Identity
from veles.services.permissions import Permission, PermissionDenied

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
ReportsCaller = Annotated[Identity, Depends(requires(Permission.REQUEST_REPORTS))]


class ReportOut(BaseModel):
    """A report's state as clients see it."""

    id: int
    type: str
    format: str
    status: str
    period_start: str | None
    period_end: str | None
    time_zone: str
    error: str | None
    created_at: str
    finished_at: str | None


def _out(report: Report) -> ReportOut:
    assert report.id is not None
    return ReportOut(
        id=report.id,
        type=report.type.value,
        format=report.format.value,
        status=report.status.value,
        period_start=report.period_start.isoformat() if report.period_start else None,
        period_end=report.period_end.isoformat() if report.period_end else None,
        time_zone=report.time_zone,
        error=report.error,
        created_at=report.created_at.isoformat(),
        finished_at=report.finished_at.isoformat() if report.finished_at else None,
    )


def _caller(identity: Identity) -> service.Caller:
    return service.Caller(identity.tenant_id, identity.user_id, identity.role)


def _download(file: service.ReportFile) -> Response:
    return Response(
        file.content,
        media_type=file.content_type,
        headers={"Content-Disposition": f'attachment; filename="{file.name}"'},
    )


def _errors(exc: Exception) -> HTTPException:
    """The HTTP answer for a refusal; a ReportInputError is re-raised for the app's one 422 shape
    (`veles.api.errors`)."""
    if isinstance(exc, service.ReportNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, "No such report.")
    if isinstance(exc, service.ReportNotReady):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, PermissionDenied | service.LinkInvalid):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))
    if isinstance(exc, StorageError):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc))
    raise exc


_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "The caller's role may not see or request reports."},
}
_FILE: dict[int | str, dict[str, Any]] = {
    **_REFUSED,
    409: {"description": "The report is queued, running or failed: no file yet."},
    503: {"description": "The file store cannot be reached."},
}


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def request_report(
    ctx: Context, identity: ReportsCaller, body: Annotated[dict[str, Any], Body()]
) -> ReportOut:
    """Queue a report: `type`, `format` (pdf|xlsx), `start`, `end`, `time_zone`, `login` (statements)."""
    try:
        report = await asyncio.to_thread(
            service.request_report, ctx.settings, get_report_settings(), _caller(identity), body
        )
    except (ReportInputError, PermissionDenied) as exc:
        raise _errors(exc) from exc
    return _out(report)


@router.get("", responses=_REFUSED)
async def list_reports(ctx: Context, identity: CurrentIdentity) -> list[ReportOut]:
    """The caller's tenant's newest reports."""
    try:
        reports = await asyncio.to_thread(service.list_reports, ctx.settings, _caller(identity))
    except PermissionDenied as exc:
        raise _errors(exc) from exc
    return [_out(r) for r in reports]


@router.get("/{report_id}", responses=_REFUSED)
async def get_report(ctx: Context, identity: CurrentIdentity, report_id: RowId) -> ReportOut:
    """One report's status (404 for another tenant's)."""
    try:
        return _out(await asyncio.to_thread(service.get_report, ctx.settings, _caller(identity), report_id))
    except (service.ReportNotFound, PermissionDenied) as exc:
        raise _errors(exc) from exc


@router.get("/{report_id}/download", responses=_FILE)
async def download(ctx: Context, identity: CurrentIdentity, report_id: RowId) -> Response:
    """The file of a ready report (409 while queued or running, or if it failed)."""
    try:
        file = await asyncio.to_thread(
            service.report_file, ctx.settings, get_report_settings(), _caller(identity), report_id
        )
    except Exception as exc:
        raise _errors(exc) from exc
    return _download(file)


@router.post("/{report_id}/link", responses=_FILE)
async def link(ctx: Context, identity: CurrentIdentity, report_id: RowId) -> dict[str, str]:
    """A download path that works without a sign-in for `REPORTS_LINK_MINUTES` minutes."""
    try:
        url = await asyncio.to_thread(
            service.signed_link, ctx.settings, get_report_settings(), _caller(identity), report_id
        )
    except Exception as exc:
        raise _errors(exc) from exc
    return {"url": url}


@router.get("/{report_id}/file", responses={
    **_FILE, 403: {"description": "The link is forged or has expired."}})
async def file_by_link(
    ctx: Context,
    report_id: RowId,
    tenant: Annotated[int, Query(gt=0, lt=2**31)],
    expires: Annotated[int, Query(ge=0, lt=2**53)],
    sig: Annotated[str, Query(min_length=1, max_length=128)],
) -> Response:
    """The file a signed link names; 403 when forged or expired."""
    try:
        file = await asyncio.to_thread(
            service.file_by_link, ctx.settings, get_report_settings(), report_id, tenant, expires, sig
        )
    except Exception as exc:
        raise _errors(exc) from exc
    return _download(file)
