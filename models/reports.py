"""Reports a user asks for and a worker renders to a file later, and the schedules that ask for
them on a tenant's behalf."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import Json, UtcDateTime, enum_column, utcnow


class ReportType(StrEnum):
    """The reports the portal offers."""

    DAILY_RISK = "daily_risk"
    EXPOSURE = "exposure"
    ACCOUNT_STATEMENT = "account_statement"
    ALERTS_LOG = "alerts_log"
    MANAGEMENT = "management"  # the dealer's daily management report: P/L, volumes, money, stress, VaR
    STRESS = "stress"  # every saved stress scenario on the live book, with the accounts stopped out


class ReportFormat(StrEnum):
    """The file a report is rendered to."""

    PDF = "pdf"
    XLSX = "xlsx"


class ReportStatus(StrEnum):
    """Queued by the portal, picked up by a worker, finished ready or failed (see `error`)."""

    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


class Report(SQLModel, table=True):
    """A report request and, once rendered, where its file lives.

    A worker claims a queued row by setting `claimed_by` and `lease_until` (and counting the
    attempt); only the holder of the claim may finish it, so a worker presumed dead that comes
    back cannot finish a report twice.
    """

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "requested_by"], ["user.tenant_id", "user.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    type: ReportType = Field(sa_type=enum_column(ReportType))
    format: ReportFormat = Field(default=ReportFormat.PDF, sa_type=enum_column(ReportFormat))
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    period_start: datetime | None = Field(default=None, sa_type=UtcDateTime)
    period_end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    time_zone: str = Field(default="UTC", max_length=64, description="IANA zone the report is shown in.")
    status: ReportStatus = Field(default=ReportStatus.QUEUED, sa_type=enum_column(ReportStatus), index=True)
    file_location: str | None = Field(default=None, max_length=1024, description="Object-store key or path.")
    error: str | None = Field(default=None, max_length=2000)
    requested_by: int | None = None
    schedule_run_id: int | None = Field(default=None, description="Set when a schedule queued it.")
    attempts: int = 0
    claimed_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Frequency(StrEnum):
    """How often a scheduled report goes out."""

    DAILY = "daily"
    WEEKLY = "weekly"


class ReportSchedule(SQLModel, table=True):
    """A report e-mailed every day or week at a local time in the tenant's chosen zone."""

    __tablename__ = "report_schedule"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),  # target of same-tenant foreign keys
        ForeignKeyConstraint(["tenant_id", "created_by"], ["user.tenant_id", "user.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    type: ReportType = Field(sa_type=enum_column(ReportType))
    format: ReportFormat = Field(default=ReportFormat.PDF, sa_type=enum_column(ReportFormat))
    frequency: Frequency = Field(sa_type=enum_column(Frequency))
    weekday: int | None = Field(default=None, ge=0, le=6, description="Monday 0; weekly schedules only.")
    local_time: str = Field(max_length=5, description="HH:MM in `time_zone`.")
    time_zone: str = Field(max_length=64)
    recipients: list[str] = Field(default_factory=list, sa_type=Json)
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    enabled: bool = True
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class RunStatus(StrEnum):
    """One period of one schedule: queued its report, sending the e-mail, sent or failed."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ScheduleRun(SQLModel, table=True):
    """One period of a schedule. Unique per (schedule, period): whoever inserts it first owns the
    period, so a restart or a second scheduler can never send the same period twice."""

    __tablename__ = "schedule_run"
    __table_args__ = (
        UniqueConstraint("schedule_id", "period_start"),
        ForeignKeyConstraint(
            ["tenant_id", "schedule_id"], ["report_schedule.tenant_id", "report_schedule.id"]
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    schedule_id: int = Field(index=True)
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    status: RunStatus = Field(default=RunStatus.QUEUED, sa_type=enum_column(RunStatus))
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
