"""The report queue in the database: claim, renew, finish, fail.

A worker claims one report at a time in its own transaction; on PostgreSQL `FOR UPDATE SKIP
LOCKED` lets many workers claim at once without two taking the same row. A claim is a lease:
`claimed_by` carries the worker's name and a token of this claim, and `lease_until` must be renewed
while rendering. A report whose lease ran out (its worker died) is claimed again, up to
`max_attempts`; only the current claim may finish a report (`WHERE claimed_by = token`), so a
worker presumed dead that wakes up cannot mark it a second time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from models.db import session_scope
from models.reports import Report, ReportStatus
from veles.reports.request import Period, ReportRequest, ReportType, utc


@dataclass(frozen=True)
class Claim:
    """A report this worker holds: its id, tenant, what to render and the claim's token."""

    report_id: int
    tenant_id: int
    token: str
    attempt: int
    request: ReportRequest


def claim_token(worker: str) -> str:
    """A token unique to one claim, prefixed by the worker's stable name."""
    return f"{worker}#{uuid.uuid4().hex[:12]}"


def claim_next(url: str, worker: str, lease_seconds: float, max_attempts: int) -> Claim | None:
    """Take the oldest queued report (or one whose lease expired); None when there is none.

    A report already claimed `max_attempts` times is failed instead of claimed again."""
    now = datetime.now(UTC)
    with session_scope(url) as session:
        while True:
            report = session.exec(
                select(Report)
                .where(
                    or_(
                        col(Report.status) == ReportStatus.QUEUED,
                        (col(Report.status) == ReportStatus.RUNNING) & (col(Report.lease_until) < now),
                    )
                )
                .order_by(col(Report.id))
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if report is None:
                return None
            if report.attempts >= max_attempts:
                report.status, report.finished_at = ReportStatus.FAILED, now
                report.error = (
                    f"gave up after {report.attempts} attempts: the worker rendering it stopped "
                    "before finishing each time"
                )
                report.claimed_by = report.lease_until = None
                session.flush()
                continue
            token = claim_token(worker)
            report.status, report.claimed_by = ReportStatus.RUNNING, token
            report.lease_until = now + timedelta(seconds=lease_seconds)
            report.attempts += 1
            report.started_at = now
            assert report.id is not None
            assert report.period_start is not None
            assert report.period_end is not None
            login = report.parameters.get("login")
            request = ReportRequest(
                ReportType(report.type),
                report.format,
                Period(utc(report.period_start), utc(report.period_end), report.time_zone),
                login if isinstance(login, int) else None,
            )
            return Claim(report.id, report.tenant_id, token, report.attempts, request)


def _update(url: str, claim: Claim, **values: object) -> bool:
    with session_scope(url) as session:
        result = session.exec(
            update(Report)
            .where(
                col(Report.id) == claim.report_id,
                col(Report.claimed_by) == claim.token,
                col(Report.status) == ReportStatus.RUNNING,
            )
            .values(**values)
        )
        return bool(result.rowcount)


def renew(url: str, claim: Claim, lease_seconds: float) -> bool:
    """Extend the lease; False if the claim was lost (the report was taken over)."""
    return _update(url, claim, lease_until=datetime.now(UTC) + timedelta(seconds=lease_seconds))


def finish(url: str, claim: Claim, location: str) -> bool:
    """Mark the report ready with its file; False if this claim no longer holds it."""
    return _update(
        url,
        claim,
        status=ReportStatus.READY,
        file_location=location,
        finished_at=datetime.now(UTC),
        lease_until=None,
        error=None,
    )


def fail(url: str, claim: Claim, reason: str) -> bool:
    """Mark the report failed with `reason`; False if this claim no longer holds it."""
    return _update(
        url,
        claim,
        status=ReportStatus.FAILED,
        error=reason[:2000],
        finished_at=datetime.now(UTC),
        lease_until=None,
    )


def release_stale(url: str, worker: str) -> int:
    """Free the reports an earlier life of `worker` (same name, restarted) still holds, at once
    rather than after their leases run out; returns how many."""
    with session_scope(url) as session:
        result = session.exec(
            update(Report)
            .where(
                col(Report.status) == ReportStatus.RUNNING, col(Report.claimed_by).startswith(f"{worker}#")
            )
            .values(status=ReportStatus.QUEUED, claimed_by=None, lease_until=None)
        )
        return int(result.rowcount)
