"""Tenants (brokers) and their users."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Timestamps are stored in UTC; screens convert to the user's zone."""
    return datetime.now(UTC)


class Plan(StrEnum):
    """Subscription plans and what they allow (see `PLAN_LIMITS`)."""

    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    """What a user may do; checked on every endpoint and UI action."""

    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    RISK_MANAGER = "risk_manager"
    VIEWER = "viewer"


class Tenant(SQLModel, table=True):
    """A broker: owns MT5 connections, accounts and users."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=120)
    plan: Plan = Field(default=Plan.STARTER)
    status: str = Field(default="active", max_length=20)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    """A person who signs in to the portal of one tenant."""

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    email: str = Field(index=True, unique=True, max_length=254)
    password_hash: str = Field(max_length=255)
    role: Role = Field(default=Role.VIEWER)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
