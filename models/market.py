"""Daily closes of each symbol a tenant's feeds quote: the history VaR is measured over."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, utcnow


class DailyClose(SQLModel, table=True):
    """The last mid price of `symbol` seen on `day` (UTC) by the tenant's engine; rewritten while
    the day runs, final once it is over. One row per tenant, symbol and day."""

    __tablename__ = "daily_close"
    __table_args__ = (UniqueConstraint("tenant_id", "symbol", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    symbol: str = Field(max_length=32)
    day: date
    close: float
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
