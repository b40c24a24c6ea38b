"""Stress scenarios a tenant's dealers saved under a name, to run again on the live book."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, utcnow


class StressScenario(SQLModel, table=True):
    """A named scenario ("XAUUSD -3%, USD +2% against all"); names are unique per tenant. The text
    is checked against the book's symbols when it is saved and again whenever it runs (a server
    may stop listing a symbol)."""

    __tablename__ = "stress_scenario"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        ForeignKeyConstraint(["tenant_id", "created_by"], ["user.tenant_id", "user.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=80)
    scenario: str = Field(max_length=500)
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
