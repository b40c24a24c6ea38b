"""Alert rules a tenant configures, and the alerts the engine raises from them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, enum_column, utcnow


class AlertKind(StrEnum):
    """What a rule watches."""

    MARGIN_LEVEL = "margin_level"
    EQUITY_DROP = "equity_drop"
    EXPOSURE = "exposure"
    FLOATING_LOSS = "floating_loss"
    TOXIC_FLOW = "toxic_flow"


class Severity(StrEnum):
    """How loudly an alert is delivered (critical ones also go out by SMS)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    """An alert's life: raised open, acknowledged by a person, resolved when the cause is gone."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertRule(SQLModel, table=True):
    """A threshold on one metric, optionally for one symbol only."""

    __tablename__ = "alert_rule"
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)  # target of same-tenant foreign keys

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    kind: AlertKind = Field(sa_type=enum_column(AlertKind))
    threshold: float
    severity: Severity = Field(default=Severity.WARNING, sa_type=enum_column(Severity))
    symbol: str | None = Field(default=None, max_length=32, description="None: every symbol.")
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Alert(SQLModel, table=True):
    """One firing of a rule. Composite foreign keys keep the rule and the acknowledging user in
    the alert's own tenant."""

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "rule_id"], ["alert_rule.tenant_id", "alert_rule.id"]),
        ForeignKeyConstraint(["tenant_id", "acknowledged_by"], ["user.tenant_id", "user.id"]),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    rule_id: int | None = Field(default=None, index=True, description="None: raised by the system.")
    severity: Severity = Field(sa_type=enum_column(Severity))
    subject: str = Field(max_length=120, description="What fired: an account login, a symbol, a book.")
    value: float
    message: str = Field(max_length=2000)
    state: AlertState = Field(default=AlertState.OPEN, sa_type=enum_column(AlertState), index=True)
    acknowledged_by: int | None = None
    acknowledged_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    engine_rule: str | None = Field(
        default=None, max_length=64, description="The engine rule that raised it (a built-in's word id).")
    repeats: int = Field(default=1, description="Raises folded into this alert by the cool-down.")
    last_raised_at: datetime | None = Field(default=None, sa_type=UtcDateTime,
                                            description="The latest of those raises; None: only one.")
