"""Sign-in state that outlives a request: refresh tokens, pending SMS sign-in challenges,
password-reset and e-mail verification links, and the failed-sign-in throttle.

All hold only hashes of the secrets the client keeps, so a copy of the database cannot be
replayed as a session. All but the throttle are tenant-owned (row-level security) and point at
their user through the composite (tenant_id, user_id) key, so a row can never name another tenant's user.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint
from sqlmodel import Field, SQLModel

from models.columns import BigId, UtcDateTime, utcnow


class RefreshToken(SQLModel, table=True):
    """One refresh token. Every sign-in starts a `family`; each refresh marks the presented token
    used and adds the next one to the family. A used or revoked token presented again means it
    was copied, so the whole family is revoked."""

    __tablename__ = "refresh_token"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),)

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int = Field(index=True)
    family: str = Field(max_length=36, index=True, description="One per sign-in (a UUID).")
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the token, hex.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Rotated then.")
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Logout or reuse.")
    ip: str | None = Field(default=None, max_length=45)


class LoginChallenge(SQLModel, table=True):
    """A sign-in waiting for its SMS code: the password was right, the code was sent."""

    __tablename__ = "login_challenge"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int = Field(index=True)
    challenge_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the challenge id.")
    code_hash: str = Field(max_length=64, description="HMAC-SHA256 of the code under the secret key.")
    attempts: int = Field(default=0, description="Wrong codes entered against this challenge.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Spent or given up.")


class PasswordReset(SQLModel, table=True):
    """A password-reset link sent by e-mail: valid until `expires_at`, spent on first use (and every
    open link of the user is spent when one is used, so an older e-mail cannot be replayed)."""

    __tablename__ = "password_reset"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the link's token, hex.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Spent then.")
    ip: str | None = Field(default=None, max_length=45, description="Who asked for the link.")


class EmailVerification(SQLModel, table=True):
    """The link a self-service sign-up is sent: following it proves the address and starts the
    tenant. Valid until `expires_at`, spent on first use."""

    __tablename__ = "email_verification"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"]),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    user_id: int = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True, description="SHA-256 of the link's token, hex.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="Spent then.")


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins of one (e-mail, client IP) pair: past the free ones, each further attempt
    waits until `retry_at`. Keyed on a hash of the pair, known address or not, so the answers do
    not tell which addresses have an account; not tenant-owned for the same reason. Rows go when
    the pair signs in, and are swept a day after their last failure."""

    __tablename__ = "sign_in_throttle"

    key_hash: str = Field(max_length=64, primary_key=True, description="SHA-256 of e-mail and IP, hex.")
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    retry_at: datetime | None = Field(default=None, sa_type=UtcDateTime, description="No attempt before.")
