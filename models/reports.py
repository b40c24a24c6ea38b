"""Reports a user asks for and a worker renders to a file later."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKeyConstraint
from sqlmodel import Field, SQLModel

from models.columns import Json, UtcDateTime, enum_column, utcnow


class ReportType(StrEnum):
    """The reports the portal offers."""

    DAILY_RISK = "daily_risk"
    EXPOSURE = "exposure"
    TOXIC_ACCOUNTS = "toxic_accounts"
    ALERT_HISTORY = "alert_history"


class ReportStatus(StrEnum):
    """Queued by the portal, picked up by a worker, finished ready or failed (see `error`)."""

    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


class Report(SQLModel, table=True):
    """A report request and, once rendered, where its file lives."""

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "requested_by"], ["user.tenant_id", "user.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    type: ReportType = Field(sa_type=enum_column(ReportType))
    parameters: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    status: ReportStatus = Field(default=ReportStatus.QUEUED, sa_type=enum_column(ReportStatus), index=True)
    file_location: str | None = Field(default=None, max_length=1024, description="Object-store key or path.")
    error: str | None = Field(default=None, max_length=2000)
    requested_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
