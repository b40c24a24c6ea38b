"""Billing: where a tenant stands with its subscription, and the Stripe events already applied.

The tenant's own billing columns live on `models.tenancy.Tenant`; this module holds what they are
made of, so the tenancy model and the billing service share one vocabulary.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, utcnow


class BillingStatus(StrEnum):
    """Where a tenant stands with billing. Dunning walks `past_due` -> `read_only` -> `suspended`;
    a payment brings any of them back to `active`.

    - trialing: a sign-up's free trial (Starter's limits), until `trial_ends_at`.
    - active: a subscription Stripe calls active (or a tenant set up by the operator).
    - past_due: a payment failed, or the trial ended without a subscription: everything works and
      the portal shows a banner; the grace period runs from `lapsed_at`.
    - read_only: the grace period is over: live figures stay, every change is refused.
    - suspended: the engine is stopped and sign-in refused; data is kept.
    """

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    READ_ONLY = "read_only"
    SUSPENDED = "suspended"


class BillingEvent(SQLModel, table=True):
    """A Stripe event that was applied (or deliberately ignored): its id is the key, so a
    delivery of the same event again changes nothing. A platform table (no tenant reads it)."""

    __tablename__ = "billing_event"

    id: str = Field(primary_key=True, max_length=255, description="Stripe's event id, evt_...")
    type: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UtcDateTime, description="When Stripe made the event.")
    received_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    tenant_ref: int | None = Field(
        default=None, index=True,
        description="The tenant the event was about, if one was found (a plain number, not a "
        "foreign key: the ledger outlives tenants and is no tenant's row).")
    outcome: str = Field(default="", max_length=255, description="What applying it did, for operators.")
