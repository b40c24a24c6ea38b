"""MT5 (and MT4) manager connections: where a tenant's accounts and prices come from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, enum_column, utcnow


class Platform(StrEnum):
    """The MetaTrader server generation; each speaks its own manager API."""

    MT4 = "mt4"
    MT5 = "mt5"


class ConnectionStatus(StrEnum):
    """Where the feed of a connection stands; `last_error` says why when it is not connected."""

    PENDING = "pending"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    DISABLED = "disabled"


class Mt5Connection(SQLModel, table=True):
    """A manager login on a broker's trade server.

    The password only ever exists here as `credentials_encrypted` (a Fernet token from
    `veles.services.credentials`), and that is kept out of `repr` so it cannot reach a log.
    """

    __tablename__ = "mt5_connection"
    __table_args__ = (
        UniqueConstraint("tenant_id", "server", "login"),
        UniqueConstraint("tenant_id", "id"),  # target of same-tenant composite foreign keys
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    platform: Platform = Field(default=Platform.MT5, sa_type=enum_column(Platform))
    server: str = Field(max_length=255, description="host:port of the trade server.")
    login: int = Field(sa_type=BigInteger, description="Manager login.")
    credentials_encrypted: bytes = Field(sa_type=LargeBinary, repr=False)
    status: ConnectionStatus = Field(default=ConnectionStatus.PENDING, sa_type=enum_column(ConnectionStatus))
    last_error: str | None = Field(default=None, max_length=2000)
    last_connected_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
