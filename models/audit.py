"""The audit log: who did what, append-only for the application (no UPDATE or DELETE grant)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from models.columns import BigId, Json, UtcDateTime, utcnow


class AuditLog(SQLModel, table=True):
    """One action. `tenant_id` is None for platform events (a tenant created, a plan changed by
    staff); those are written by the platform connection, the tenant role cannot see them.

    The actor is a plain foreign key: platform admins act inside other tenants.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_id_at", "tenant_id", "at"),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tenant_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("tenant.id"), index=True, nullable=True)
    )
    actor_user_id: int | None = Field(default=None, foreign_key="user.id")
    action: str = Field(max_length=64, description="Dotted verb, e.g. connection.create.")
    target: str | None = Field(default=None, max_length=255, description="What was acted on, e.g. alert:42.")
    details: dict[str, Any] = Field(default_factory=dict, sa_type=Json)
    ip: str | None = Field(default=None, max_length=45, description="IPv4 or IPv6 text.")
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
