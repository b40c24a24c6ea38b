"""Risk history: equity, margin and floating P/L over time, per account and per book.

One point per series per minute (`RESOLUTION`): fine enough to replay an intraday margin call,
coarse enough that a year of 10,000 accounts stays near 5 billion rows only if nobody prunes,
which is why `prune_history` exists and the retention job calls it per tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, CursorResult, Index, delete
from sqlmodel import Field, Session, SQLModel, col

from models.accounts import Book
from models.columns import BigId, UtcDateTime, enum_column

RESOLUTION = timedelta(minutes=1)


def history_bucket(ts: datetime) -> datetime:
    """The start of the `RESOLUTION` bucket holding `ts`: writers store one point per bucket."""
    return ts.replace(second=0, microsecond=0)


class RiskHistory(SQLModel, table=True):
    """One point of one series: an account (`account_login` set) or a whole book (`account_login`
    None; `book` None for the tenant's total)."""

    __tablename__ = "risk_history"
    __table_args__ = (
        Index("ix_risk_history_tenant_id_ts", "tenant_id", "ts"),
        Index("ix_risk_history_tenant_id_account_login_ts", "tenant_id", "account_login", "ts"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    account_login: int | None = Field(default=None, sa_type=BigInteger)
    book: Book | None = Field(default=None, sa_type=enum_column(Book))
    ts: datetime = Field(sa_type=UtcDateTime)
    equity: float
    balance: float
    margin: float
    margin_level: float | None = Field(default=None, description="Percent; None when no margin is used.")
    floating: float


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One point of a series as readers use it (the API's history, the reports' charts): the
    row's figures without its keys."""

    ts: datetime
    equity: float
    balance: float
    margin: float
    margin_level: float | None
    floating: float

    @classmethod
    def of(cls, row: RiskHistory) -> HistoryPoint:
        """The point a stored row holds."""
        return cls(row.ts, row.equity, row.balance, row.margin, row.margin_level, row.floating)


def prune_history(session: Session, tenant: int, older_than: datetime) -> int:
    """Delete one tenant's points before `older_than`; returns how many went.

    Per tenant because retention follows the plan, and so it also runs inside a `tenant_session`.
    """
    result = session.exec(
        delete(RiskHistory).where(col(RiskHistory.tenant_id) == tenant, col(RiskHistory.ts) < older_than)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount
