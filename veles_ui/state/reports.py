"""Reports: the request form, the tenant's reports with their status, downloads, and the notice
that tells the requesting user's open tabs at once when a report is ready or failed.

Every action reads the caller from the signed token: only roles with REQUEST_REPORTS get past
`request` (a viewer who crafts the event is refused like one who never saw the form); any role
that may view risk lists and downloads. A download is the expiring signed link of the report
service, so the browser fetches the file itself and nothing big passes through this state.

`follow` runs once per tab (started by the app-wide `report_notices` component, so it runs on
every page): it waits on this process's `ReportFeed` and, for each change of the tenant's reports,
re-reads the list (the /reports table turns `ready` without a reload) and shows a toast when a
report the signed-in user asked for is ready or failed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import reflex as rx
from reflex.event import EventSpec

from models.reports import Report, ReportFormat, ReportStatus, ReportType
from veles.config import get_settings
from veles.reports.errors import ReportInputError
from veles.reports.render import file_name
from veles.reports.request import Period, utc
from veles.reports.settings import get_report_settings
from veles.services import reports as service
from veles.services.auth import Identity
from veles.services.permissions import Permission
from veles.services.report_notices import get_report_feed
from veles_ui.format import DASH, clock
from veles_ui.state.errors import shown
from veles_ui.state.session import USER_ERRORS, SessionState, authorized, fields, row_id, tab_connected

log = logging.getLogger(__name__)
FORM_FIELDS = ("type", "format", "start", "end", "time_zone", "login")
IDLE_S = 10.0  # a follower with no notice checks this often that its tab is still there
TOAST_MS = 20_000  # long enough to be seen on a tab the user was not looking at
TYPE_LABELS = {
    ReportType.DAILY_RISK.value: "Daily risk summary",
    ReportType.EXPOSURE.value: "Exposure report",
    ReportType.ACCOUNT_STATEMENT.value: "Account statement",
    ReportType.ALERTS_LOG.value: "Alerts log",
    ReportType.MANAGEMENT.value: "Daily management report",
    ReportType.STRESS.value: "Stress report",
}
_STATUS_COLOR = {
    ReportStatus.QUEUED.value: "gray",
    ReportStatus.RUNNING.value: "blue",
    ReportStatus.READY.value: "grass",
    ReportStatus.FAILED.value: "tomato",
}


def _caller(identity: Identity) -> service.Caller:
    return service.Caller(identity.tenant_id, identity.user_id, identity.role)


def _label(report: Report) -> str:
    kind = TYPE_LABELS.get(report.type.value, report.type.value)
    login = report.parameters.get("login")
    return f"{kind} {login}" if login else kind


def _period(report: Report) -> str:
    if report.period_start is None or report.period_end is None:
        return DASH
    return Period(utc(report.period_start), utc(report.period_end), report.time_zone).label()


def _view(report: Report) -> dict[str, str]:
    return {
        "id": str(report.id),
        "label": _label(report),
        "format": report.format.value.upper(),
        "period": _period(report),
        "status": report.status.value,
        "status_color": _STATUS_COLOR.get(report.status.value, "gray"),
        "error": report.error or "",
        "requested": clock(report.created_at),
        "ready": "yes" if report.status is ReportStatus.READY else "",
    }


def _form(form: dict[str, Any]) -> dict[str, Any]:
    """The request as the report service reads it: an empty login is left out (only statements
    take one), a login that is not a number is refused naming the field."""
    raw: dict[str, Any] = fields(form, FORM_FIELDS)
    login = str(raw.pop("login", "")).strip()
    if login:
        if not login.isdigit():
            raise ReportInputError("login", f"{login!r} is not an account number")
        raw["login"] = int(login)
    return raw


async def _listed(identity: Identity) -> list[dict[str, str]]:
    """The tenant's reports as the table shows them (read in a thread)."""
    reports = await asyncio.to_thread(service.list_reports, get_settings(), _caller(identity))
    return [_view(r) for r in reports]


def _link(caller: service.Caller, number: int) -> tuple[Report, str]:
    """The report and its signed download link, if it is ready. Blocking (the database)."""
    settings = get_settings()
    report = service.get_report(settings, caller, number)
    if report.status is not ReportStatus.READY:
        raise service.ReportNotReady(f"report {number} is {report.status.value}")
    return report, service.signed_link(settings, get_report_settings(), caller, number)


class ReportsState(SessionState):
    """The /reports page, and the per-tab follower of the tenant's report notices."""

    reports: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    default_start: rx.Field[str] = rx.field("")
    default_end: rx.Field[str] = rx.field("")
    error_field: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    # Which of this tab's followers is the live one: a remount starts a new one, the older ends.
    follower: rx.Field[int] = rx.field(0)

    async def _reload(self) -> None:
        self.reports = await _listed(await self.authorized(Permission.VIEW_RISK))

    @rx.event
    async def load(self) -> None:
        """Page load: the last 24 hours up to now (whole minutes, UTC) as the default range."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.default_start = f"{now - timedelta(days=1):%Y-%m-%dT%H:%M}"
        self.default_end = f"{now:%Y-%m-%dT%H:%M}"
        self.error_field = self.error = self.notice = ""
        try:
            await self._reload()
        except Exception as exc:  # shown above the form, never raised out of the handler
            self.error = shown(exc)

    @rx.event
    async def request(self, form: dict[str, Any]) -> None:
        """Queue the report of the form; a bad field is named and nothing is queued."""
        try:
            identity = await self.changing(Permission.REQUEST_REPORTS)
            raw = _form(form)
            report = await asyncio.to_thread(service.request_report, get_settings(), get_report_settings(),
                                             _caller(identity), raw)
        except ReportInputError as exc:
            self.error_field, self.error, self.notice = exc.field, str(exc), ""
            return
        except Exception as exc:
            self.error_field, self.error, self.notice = "", shown(exc), ""
            return
        self.error_field = self.error = ""
        self.notice = f"Report {report.id} queued: it appears below and you are told when it is ready."
        await self._reload()

    @rx.event
    async def download(self, report_id: str) -> EventSpec | None:
        """The report's file through an expiring signed link the browser fetches itself."""
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
            number = row_id(report_id, "report")
            report, link = await asyncio.to_thread(_link, _caller(identity), number)
        except Exception as exc:
            self.error_field, self.error = "", shown(exc, (service.ReportNotFound, service.ReportNotReady))
            return None
        name = file_name(report.type.value.replace("_", " "), number, ReportFormat(report.format))
        return rx.download(url=link, filename=name)

    @rx.event(background=True)
    async def follow(self) -> Any:
        """Tell this tab about the tenant's report changes until the tab goes or a newer follower
        takes over: the list is re-read, and the user's own finished reports get a toast."""
        async with self:
            signed = self.token
        try:
            identity = await authorized(signed, Permission.VIEW_RISK)
        except USER_ERRORS:
            return  # the session ended before the follower started: the next sign-in mounts a new one
        async with self:
            self.follower += 1
            mine, token = self.follower, self.router.session.client_token
        async with get_report_feed().watch(identity.tenant_id, IDLE_S) as notices:
            async for notice in notices:
                async with self:
                    if self.follower != mine or self.token == "":
                        return
                    signed = self.token
                if notice is not None:  # the list again, read in a thread without the state lock
                    try:
                        views = await _listed(await authorized(signed, Permission.VIEW_RISK))
                    except USER_ERRORS:
                        return  # signed out or token expired meanwhile
                    except Exception:  # the database is away: the toast still goes, the list waits
                        log.warning("reports of tenant %s not re-read", identity.tenant_id, exc_info=True)
                        views = None
                    async with self:
                        if self.follower != mine:
                            return
                        if views is not None:
                            self.reports = views
                if notice is None:
                    if not tab_connected(token):
                        await asyncio.sleep(IDLE_S)  # a reload reconnects under the same token
                        if not tab_connected(token):
                            return
                    continue
                if notice.requested_by != identity.user_id:
                    continue
                what = f"{TYPE_LABELS.get(notice.type, notice.type)} (report {notice.report_id})"
                toast = {"id": f"report-{notice.report_id}", "duration": TOAST_MS, "close_button": True}
                if notice.status == ReportStatus.READY.value:
                    yield rx.toast.success(f"{what} is ready to download.", **toast)
                elif notice.status == ReportStatus.FAILED.value:
                    yield rx.toast.error(f"{what} failed: {notice.error}", **toast)
