"""How each user wants alerts delivered, and the record of every delivery attempt.

A user without a `DeliveryPreference` row gets the defaults of `veles.services.delivery`
(portal for every alert, e-mail for critical ones). Every decision about an alert and a user is a
`Delivery` row, also when nothing was sent (`suppressed`, with the reason: quiet hours, throttled
into a digest, channel not wanted) or the sending failed (`failed`, with the server's reason), so
"why did my phone not buzz?" has an answer.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.alerts import Severity
from models.columns import BigId, Json, UtcDateTime, enum_column, utcnow


class Channel(StrEnum):
    """Where an alert can reach a person."""

    PORTAL = "portal"
    EMAIL = "email"
    SMS = "sms"


class DeliveryStatus(StrEnum):
    """What became of one alert (or digest) for one user on one channel."""

    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class DeliveryPreference(SQLModel, table=True):
    """One user's channels per severity, quiet hours in their own zone, and digest window."""

    __tablename__ = "delivery_preference"
    # One row per user: `veles.services.delivery.save_preferences` updates it in place, and the
    # key makes a concurrent second insert fail rather than leave two rows.
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),
        UniqueConstraint("tenant_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int
    channels: dict[str, list[str]] = Field(
        default_factory=dict, sa_type=Json,
        description="Severity (info, warning, critical) → channels (portal, email, sms).",
    )
    time_zone: str = Field(default="UTC", max_length=64, description="IANA zone the quiet hours are in.")
    quiet_start: str | None = Field(default=None, max_length=5,
                                    description="HH:MM local: e-mail and SMS stop.")
    quiet_end: str | None = Field(default=None, max_length=5,
                                  description="HH:MM local: they resume (may be the next day).")
    critical_overrides_quiet: bool = Field(default=True, description="Critical alerts ignore quiet hours.")
    digest_minutes: int = Field(default=5, ge=1, le=1440,
                                description="After one message, further alerts wait this long as a digest.")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Delivery(SQLModel, table=True):
    """One alert, or one digest of alerts, for one user on one channel: sent, failed or suppressed.

    `alert_key` identifies the alert across restarts (`rule:subject:time_msc`, or `digest:<start>`
    for a digest), and is unique per user and channel, so an alert seen twice is delivered once.
    """

    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "channel", "alert_key"),
        ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),
        Index("ix_delivery_tenant_id_user_id_created_at", "tenant_id", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int
    channel: Channel = Field(sa_type=enum_column(Channel))
    alert_key: str = Field(max_length=200)
    severity: Severity = Field(sa_type=enum_column(Severity))
    status: DeliveryStatus = Field(sa_type=enum_column(DeliveryStatus))
    reason: str = Field(default="", max_length=500, description="Why failed or suppressed; empty when sent.")
    alerts: int = Field(default=1, ge=1, description="How many alerts this message carried (a digest: >1).")
    text: str = Field(max_length=2000, description="What was (or would have been) sent.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
