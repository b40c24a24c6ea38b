"""Tenants (brokers) and the people who sign in to their portal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import LargeBinary, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from models.billing import BillingStatus
from models.columns import UtcDateTime, enum_column, utcnow


class Plan(StrEnum):
    """Subscription plans and what they allow (see `PLAN_LIMITS`)."""

    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class TenantStatus(StrEnum):
    """Only active tenants get an engine supervisor and may sign in. A self-service sign-up stays
    `pending_verification` until its administrator follows the e-mailed link."""

    ACTIVE = "active"
    PENDING_VERIFICATION = "pending_verification"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Role(StrEnum):
    """What a user may do; checked on every endpoint and UI action."""

    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    RISK_MANAGER = "risk_manager"
    VIEWER = "viewer"


class TwoFactor(StrEnum):
    """The second factor a user signs in with."""

    NONE = "none"
    TOTP = "totp"
    SMS = "sms"


class Tenant(SQLModel, table=True):
    """A broker: owns MT5 connections, accounts and users. The root every tenant-owned row points to."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=120)
    domain: str | None = Field(default=None, unique=True, max_length=253,
                               description="Portal host name the broker signs in at.")
    plan: Plan = Field(default=Plan.STARTER, sa_type=enum_column(Plan))
    status: TenantStatus = Field(default=TenantStatus.ACTIVE, sa_type=enum_column(TenantStatus))
    stripe_customer_id: str | None = Field(default=None, unique=True, max_length=64)
    stripe_subscription_id: str | None = Field(default=None, unique=True, max_length=64)
    trial_ends_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="A self-service sign-up is a Starter trial until then; billing decides what follows.",
    )
    billing_status: BillingStatus = Field(
        default=BillingStatus.ACTIVE, sa_type=enum_column(BillingStatus),
        sa_column_kwargs={"server_default": BillingStatus.ACTIVE.value},
        description="Where the tenant stands with billing (veles.billing); a sign-up starts trialing.",
    )
    plan_chosen: Plan | None = Field(
        default=None, sa_type=enum_column(Plan),
        description="The plan picked at sign-up: the trial runs on Starter's limits and Upgrade offers this.",
    )
    subscription_status: str | None = Field(
        default=None, max_length=32, description="Stripe's own status of the subscription, as last applied.")
    subscription_event_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="When Stripe made the newest subscription state applied: an older one arriving "
        "later is stale and ignored.",
    )
    current_period_end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    lapsed_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="When the tenant stopped being paid up (payment failed, trial over, cancelled): "
        "the dunning clock runs from here; None while paid up or trialing.",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    is_platform: bool = Field(
        default=False, sa_column_kwargs={"server_default": false()},
        description="The operator's own tenant, holding platform admins: not a broker, so it has no "
        "engine, no plan usage, and no place in the admin page's broker list.",
    )


class User(SQLModel, table=True):
    """A person who signs in to the portal of one tenant.

    E-mail is unique across tenants because sign-in starts from the address alone.
    """

    # (tenant_id, id) is the target of composite foreign keys, so a row can only point at a user
    # of its own tenant: RLS hides other tenants' rows but foreign-key checks do not see RLS.
    __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    email: str = Field(index=True, unique=True, max_length=254)
    password_hash: str = Field(max_length=255, repr=False)
    role: Role = Field(default=Role.VIEWER, sa_type=enum_column(Role))
    is_active: bool = True
    phone: str | None = Field(default=None, max_length=32, description="E.164, for SMS codes and alerts.")
    two_factor: TwoFactor = Field(default=TwoFactor.NONE, sa_type=enum_column(TwoFactor))
    totp_secret_encrypted: bytes | None = Field(
        default=None, sa_type=LargeBinary, repr=False,
        description="The TOTP seed, encrypted like MT5 credentials (veles.services.credentials).",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    failed_logins: int = Field(
        default=0, sa_column_kwargs={"server_default": "0"},
        description="Wrong passwords or codes since the last success; reaching the threshold locks.",
    )
    locked_until: datetime | None = Field(
        default=None, sa_type=UtcDateTime, description="Sign-in refused until then (lockout)."
    )
    phone_verified_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="When an SMS code sent to `phone` was entered (so alerts may go there by SMS); "
        "cleared when the number changes.",
    )
    token_version: int = Field(
        default=0, sa_column_kwargs={"server_default": "0"},
        description="Raised to end every session at once (deactivated, role or password changed): "
        "access tokens carry the version they were issued under and an older one is refused.",
    )
    email_verified_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="When the e-mailed sign-up link was followed (None: never asked, or not yet).",
    )
    must_change_password: bool = Field(
        default=False, sa_column_kwargs={"server_default": false()},
        description="The password is a temporary one (invite, platform admin): changed at next sign-in.",
    )
    password_expires_at: datetime | None = Field(
        default=None, sa_type=UtcDateTime,
        description="A temporary password stops working then (TEMPORARY_PASSWORD_HOURS after it was made).",
    )
