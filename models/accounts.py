"""Client trading accounts as last seen on a tenant's MT5 server."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import Json, UtcDateTime, enum_column, utcnow


class Book(StrEnum):
    """A book: the broker takes the other side; B book: the broker keeps the risk."""

    A = "A"
    B = "B"


class ClientAccount(SQLModel, table=True):
    """One trader's account on one connection, with the risk attributes the engine keeps."""

    __tablename__ = "client_account"
    __table_args__ = (
        UniqueConstraint("tenant_id", "connection_id", "login"),
        ForeignKeyConstraint(["tenant_id", "connection_id"],
                             ["mt5_connection.tenant_id", "mt5_connection.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    connection_id: int = Field(index=True)
    login: int = Field(sa_type=BigInteger, index=True)
    group: str = Field(max_length=64, description="MT5 group path, e.g. real\\standard.")
    name: str = Field(default="", max_length=128, sa_column_kwargs={"server_default": ""},
                      description="The client's name (MT5 user record).")
    country: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""},
                         description="The client's country (MT5 user record).")
    book: Book = Field(default=Book.B, sa_type=enum_column(Book))
    currency: str = Field(default="USD", max_length=3)
    leverage: int = Field(default=100, ge=1)
    risk_score: float = Field(default=0.0, description="0 (harmless) to 100 (toxic).")
    labels: list[str] = Field(default_factory=list, sa_type=Json)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
