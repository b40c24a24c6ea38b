"""Alert rules a tenant configures, and the alerts the engine raises from them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKeyConstraint, UniqueConstraint
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
    label: str | None = Field(default=None, max_length=32, description=(
        "toxic_flow rules only: the toxic-flow label watched (veles.risk.alerts.FLOW_LABELS); "
        "None: any label, the score alone."))
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Alert(SQLModel, table=True):
    """One firing of a rule. Composite foreign keys keep the rule and the acknowledging user in
    the alert's own tenant."""

    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "rule_id"], ["alert_rule.tenant_id", "alert_rule.id"]),
        ForeignKeyConstraint(["tenant_id", "acknowledged_by"], ["user.tenant_id", "user.id"]),
        # each engine event has its own number, and a row holds its latest one: never two rows alike
        UniqueConstraint("tenant_id", "seq"),
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
    seq: int | None = Field(default=None, sa_type=BigInteger, description=(
        "The tenant's alert sequence number of the engine's latest event on this row (raise, repeat "
        "or clear); None: stored before alerts were numbered."))
    first_msc: int | None = Field(default=None, sa_type=BigInteger, description=(
        "Engine time (ms) of the first raise this alert stands for: with the rule and subject, what "
        "delivery knows it by."))
    escalated_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description=(
        "When the unacknowledged critical alert was escalated to e-mail and SMS; set once."))


class TenantCounter(SQLModel, table=True):
    """A number that only grows, per tenant and name: `alert_seq` numbers the tenant's alert events.

    Taken with `UPDATE ... SET value = value + n` in the transaction that stores what it numbers,
    so numbers are gap-free (a rolled-back write gives its numbers back) and two writers queue on
    the row instead of sharing a number; a database sequence would leave gaps on rollback.
    """

    __tablename__ = "tenant_counter"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=32)
    value: int = Field(default=0, sa_type=BigInteger)


class EscalationPolicy(SQLModel, table=True):
    """How long a critical alert may stay unacknowledged before it is escalated by e-mail and SMS.

    One row per tenant in practice (the service replaces it); should two ever exist, the newest
    counts. No row: no escalation."""

    __tablename__ = "escalation_policy"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    after_minutes: float = Field(description="Minutes a critical alert may stay open unacknowledged.")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AlertReader(SQLModel, table=True):
    """One user's portal alert state: how far they have read, and whether critical alerts may show
    a desktop notification (the browser's permission is asked when they opt in)."""

    __tablename__ = "alert_reader"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),
        UniqueConstraint("tenant_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int
    read_seq: int = Field(default=0, sa_type=BigInteger,
                          description="Open alerts with a higher `seq` are unread for this user.")
    desktop_notifications: bool = Field(default=False, description="Opted in to desktop notifications.")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
