"""Pending invitations: a tenant admin invites an address with a role; the invitee follows the
e-mailed link and sets their own password, which is when the user is made.

Only the SHA-256 of the link's token is kept, so a copy of the database gives no usable link. The
row says nothing about whether the address already has an account (here or with another broker):
that is decided when the mail is written and again when the link is used, never stored where the
inviting admin could read it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint
from sqlmodel import Field, SQLModel

from models.columns import UtcDateTime, enum_column, utcnow
from models.tenancy import Role


class Invitation(SQLModel, table=True):
    """One invitation of `email` into the tenant with `role`. Open until `expires_at` unless
    accepted or revoked; a resend gives it a new token and a new expiry, so older links stop working."""

    __tablename__ = "invitation"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "invited_by"], ["user.tenant_id", "user.id"]),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    email: str = Field(max_length=254, index=True)
    role: Role = Field(sa_type=enum_column(Role))
    invited_by: int = Field(index=True, description="The admin who invited (or last resent).")
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the link's token, hex.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, description="Last (re)sent.")
    expires_at: datetime = Field(sa_type=UtcDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
