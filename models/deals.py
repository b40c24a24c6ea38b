"""The deal log: every deal the engine applied, kept so statements can list an account's deals in
any period (the live account actors only hold open positions).

Written by the tenant's aggregator as deals reach it (`actors/deal_log.py`), after the account actor
applied them, so a deal the risk core refused (a duplicate ticket, say) is not logged. The unique
(tenant, login, ticket) key makes writing the same deal twice harmless: an aggregator that Ray
restarted, or a gateway that resent a deal, adds no second row.

`kind` and `entry` are MT5's deal type and entry as the risk core names them (buy, sell, balance,
credit; in, out, inout), kept as text because this layer imports nothing of Veles'.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import BigId, UtcDateTime


class DealRecord(SQLModel, table=True):
    """One applied MT5 deal of one account."""

    __tablename__ = "deal"
    __table_args__ = (
        UniqueConstraint("tenant_id", "login", "ticket"),
        Index("ix_deal_tenant_id_login_executed_at", "tenant_id", "login", "executed_at"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    login: int = Field(sa_type=BigInteger)
    ticket: int = Field(sa_type=BigInteger)
    executed_at: datetime = Field(sa_type=UtcDateTime, description="When the server executed it (UTC).")
    kind: str = Field(max_length=16)
    entry: str = Field(max_length=8)
    symbol: str = Field(default="", max_length=32)
    volume: float = 0.0
    price: float = 0.0
    position_id: int = Field(default=0, sa_type=BigInteger)
    profit: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    amount: float = Field(default=0.0, description="Balance and credit operations: the money moved.")
    comment: str = Field(default="", max_length=64)
