"""Reports as the portal and the API use them: request, list, download, signed links, workers.

Every call names the caller's tenant and role: the role is checked against the permission table,
the tenant confines the database session (row-level security), so another tenant's report is
simply not found. A request is checked field by field before anything is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ray
from sqlmodel import col, select

from actors.report_worker import ReportWorker, worker_name
from models.db import tenant_session
from models.reports import Report, ReportFormat, ReportSchedule, ReportStatus
from models.tenancy import Role
from veles.config import Settings
from veles.reports import schedule as schedules
from veles.reports.errors import ReportError, ReportInputError
from veles.reports.render import CONTENT_TYPES, file_name
from veles.reports.request import Period, parse_request, utc
from veles.reports.settings import ReportSettings
from veles.reports.storage import open_storage
from veles.services.messaging import Attachment, MessagingError, check_email, send_email
from veles.services.permissions import Permission, require
from veles.services.ray_runtime import connect
from veles.services.signing_keys import SigningKey, keyring

log = logging.getLogger(__name__)


class ReportNotFound(LookupError):
    """No such report for this tenant (it may exist for another: callers answer 404 either way)."""


class ReportNotReady(RuntimeError):
    """The report is still queued or running, or failed (the message says which and why)."""


class LinkInvalid(PermissionError):
    """A download link that was forged, altered or has expired."""


@dataclass(frozen=True)
class Caller:
    """Who is asking: their tenant, user id and role."""

    tenant_id: int
    user_id: int | None
    role: Role


@dataclass(frozen=True)
class ReportFile:
    """A report's file as a download."""

    name: str
    content_type: str
    content: bytes


def request_report(
    settings: Settings, rsettings: ReportSettings, caller: Caller, raw: dict[str, Any]
) -> Report:
    """Queue a report; ReportInputError names the bad field and nothing is queued."""
    require(caller.role, Permission.REQUEST_REPORTS)
    request = parse_request(raw, datetime.now(UTC), rsettings.retention_days, rsettings.max_range_days)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        report = Report(
            tenant_id=caller.tenant_id,
            type=request.type,
            format=request.format,
            parameters=request.parameters(),
            period_start=request.period.start,
            period_end=request.period.end,
            time_zone=request.period.zone,
            requested_by=caller.user_id,
        )
        session.add(report)
        session.flush()
        session.refresh(report)
        session.expunge(report)
    return report


def list_reports(settings: Settings, caller: Caller, limit: int = 50) -> list[Report]:
    """The tenant's newest reports first."""
    require(caller.role, Permission.VIEW_RISK)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        reports = list(
            session.exec(
                select(Report)
                .where(col(Report.tenant_id) == caller.tenant_id)
                .order_by(col(Report.id).desc())
                .limit(limit)
            )
        )
        for report in reports:
            session.expunge(report)
    return reports


def get_report(settings: Settings, caller: Caller, report_id: int) -> Report:
    """One report of the caller's tenant; ReportNotFound otherwise."""
    require(caller.role, Permission.VIEW_RISK)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        report = session.exec(
            select(Report).where(col(Report.id) == report_id, col(Report.tenant_id) == caller.tenant_id)
        ).first()
        if report is None:
            raise ReportNotFound(f"no report {report_id}")
        session.expunge(report)
    return report


def _file(rsettings: ReportSettings, report: Report) -> ReportFile:
    if report.status is not ReportStatus.READY or report.file_location is None:
        reason = f": {report.error}" if report.error else ""
        raise ReportNotReady(f"report {report.id} is {report.status.value}{reason}")
    assert report.id is not None
    return ReportFile(
        file_name(report.type.value.replace("_", " "), report.id, ReportFormat(report.format)),
        CONTENT_TYPES[ReportFormat(report.format)],
        open_storage(rsettings).get(report.file_location),
    )


def report_file(settings: Settings, rsettings: ReportSettings, caller: Caller, report_id: int) -> ReportFile:
    """The file of a ready report of the caller's tenant. Any role that may view risk may download
    (a viewer reads what a risk manager asked for); queueing needs REQUEST_REPORTS."""
    return _file(rsettings, get_report(settings, caller, report_id))


def _mac(key: SigningKey, report_id: int, tenant_id: int, expires: int) -> str:
    message = f"report:{report_id}:{tenant_id}:{expires}".encode()
    return hmac.new(key.secret.encode(), message, hashlib.sha256).hexdigest()


def _signature(key: SigningKey, report_id: int, tenant_id: int, expires: int) -> str:
    """`<kid>.<HMAC>`: the key id lets a link signed before a SECRET_KEY rotation verify during the
    overlap (`veles.services.signing_keys`)."""
    return f"{key.kid}.{_mac(key, report_id, tenant_id, expires)}"


def signed_link(settings: Settings, rsettings: ReportSettings, caller: Caller, report_id: int) -> str:
    """A download path that works without a sign-in until it expires (for a browser or an e-mail);
    for any role that may download (`report_file`)."""
    report = get_report(settings, caller, report_id)
    expires = int(time.time()) + rsettings.link_minutes * 60
    sig = _signature(keyring(settings).current, report_id, report.tenant_id, expires)
    return f"/api/v1/reports/{report_id}/file?tenant={report.tenant_id}&expires={expires}&sig={sig}"


def file_by_link(
    settings: Settings, rsettings: ReportSettings, report_id: int, tenant_id: int, expires: int, sig: str
) -> ReportFile:
    """The file a signed link names; LinkInvalid when the signature is wrong or the link expired."""
    kid, dot, mac = sig.partition(".")
    key = keyring(settings).find(kid) if dot else keyring(settings).current  # no kid: made before kids
    expected = _mac(key, report_id, tenant_id, expires) if key is not None else ""
    if not expected or not hmac.compare_digest(expected.encode(), (mac if dot else sig).encode()):
        raise LinkInvalid("this download link is not valid")
    if expires < time.time():
        raise LinkInvalid("this download link has expired: ask the portal for a new one")
    caller = Caller(tenant_id, None, Role.RISK_MANAGER)  # the signature stands for the checked user
    return _file(rsettings, get_report(settings, caller, report_id))


def start_workers(settings: Settings, rsettings: ReportSettings, count: int = 1) -> list[Any]:
    """Start (or find) the pool's workers as detached, named actors; returns their handles."""
    connect(settings)
    handles = []
    for index in range(count):
        handles.append(
            ReportWorker.options(  # type: ignore[attr-defined]
                name=worker_name(index),
                namespace=settings.ray_namespace,
                lifetime="detached",
                get_if_exists=True,
            ).remote(
                worker_name(index),
                settings.database_url,
                settings.redis_url,
                settings.ray_namespace,
                rsettings,
            )
        )
    return handles


def stop_workers(settings: Settings, count: int = 1) -> None:
    """Stop and remove the pool's workers."""
    for index in range(count):
        try:
            handle = ray.get_actor(worker_name(index), namespace=settings.ray_namespace)
        except ValueError:
            continue
        ray.get(handle.stop.remote(), timeout=60)
        ray.kill(handle)


def checked_schedule(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A schedule's fields checked (`schedules.check_schedule`) with every recipient's address;
    ReportInputError names the bad field (`recipients[2]`)."""
    fields = schedules.check_schedule(raw)
    for index, address in enumerate(fields["recipients"]):
        try:
            check_email(address, field=f"recipients[{index}]")
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise ReportInputError(field, message) from None
    return fields


def create_schedule(settings: Settings, caller: Caller, raw: dict[str, Any]) -> ReportSchedule:
    """Add a daily or weekly e-mailed report; ReportInputError names a bad field."""
    require(caller.role, Permission.REQUEST_REPORTS)
    fields = checked_schedule(raw)
    with tenant_session(settings.database_url, caller.tenant_id) as session:
        schedule = ReportSchedule(tenant_id=caller.tenant_id, created_by=caller.user_id, **fields)
        session.add(schedule)
        session.flush()
        session.refresh(schedule)
        session.expunge(schedule)
    return schedule


class ReportScheduler:
    """Queues due scheduled reports and e-mails the finished ones. State lives only in the
    database, so any number of schedulers may run and a restarted one carries on where it was."""

    def __init__(self, settings: Settings, rsettings: ReportSettings) -> None:
        self.settings, self.rsettings = settings, rsettings

    def tick(self, now: datetime | None = None) -> dict[str, int]:
        """One round: queue what is due, send what is finished. Returns counts for the log."""
        url = self.settings.database_url
        queued = schedules.queue_due(url, now or datetime.now(UTC))
        sent = failed = 0
        for delivery in schedules.deliverable(url):
            if not schedules.claim_delivery(url, delivery.run_id):
                continue
            error = self._send(delivery)
            schedules.finish_delivery(url, delivery.run_id, error)
            sent, failed = (sent, failed + 1) if error else (sent + 1, failed)
        return {"queued": len(queued), "sent": sent, "failed": failed}

    def _send(self, delivery: schedules.Delivery) -> str | None:
        """E-mail one finished report; the reason when it cannot go out."""
        report = delivery.report
        if report.status is not ReportStatus.READY:
            return f"the report failed: {report.error}"
        assert report.period_start is not None
        assert report.period_end is not None
        period = Period(utc(report.period_start), utc(report.period_end), report.time_zone).label()
        try:
            file = _file(self.rsettings, report)
            send_email(
                self.settings,
                delivery.recipients,
                f"Veles {report.type.value.replace('_', ' ')} report: {period}",
                f"Your scheduled {report.type.value.replace('_', ' ')} report for {period} is attached.",
                attachments=[Attachment(file.name, file.content, file.content_type)],
            )
        except (MessagingError, ReportError, ValueError) as exc:
            return str(exc)
        return None


def run_scheduler(
    settings: Settings, rsettings: ReportSettings, stop: threading.Event, every: float = 30.0
) -> None:
    """Tick the scheduler every `every` seconds until `stop` is set; a failed tick (database
    down, say) is logged and retried on the next one."""
    scheduler = ReportScheduler(settings, rsettings)
    while not stop.is_set():
        try:
            counts = scheduler.tick()
            if any(counts.values()):
                log.info("scheduled reports: %s", counts)
        except Exception:
            log.exception("scheduled reports: tick failed")
        stop.wait(every)
