"""Passwords and access tokens.

Passwords are hashed with Argon2id (argon2-cffi's defaults follow the OWASP recommendation).
Access tokens are HS256 JWTs carrying `sub`, `tenant_id` and `role`; decoding pins the algorithm,
so `alg=none` and tokens signed with another key are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from models.tenancy import Role, Tenant, User

_hasher = PasswordHasher()
_ALGORITHM = "HS256"


class AuthError(Exception):
    """Credentials or a token were refused; the message is safe to show the user."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for."""

    user_id: int
    tenant_id: int
    role: Role
    email: str


def hash_password(password: str) -> str:
    """Argon2id hash with a random salt, encoded with its parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; a malformed stored hash counts as no match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, email: str, password: str) -> Identity:
    """Check an email and password; one message for every failure so accounts can't be probed."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise AuthError("Wrong email or password.")
    tenant = session.get(Tenant, user.tenant_id)
    if tenant is None or tenant.status != "active":
        raise AuthError("This broker's account is suspended.")
    assert user.id is not None
    return Identity(user_id=user.id, tenant_id=user.tenant_id, role=user.role, email=user.email)


def issue_token(identity: Identity, secret: str, minutes: int) -> str:
    """A signed access token that expires after `minutes`."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(identity.user_id),
        "tenant_id": identity.tenant_id,
        "role": identity.role.value,
        "email": identity.email,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def decode_token(token: str, secret: str) -> Identity:
    """The identity in a token, or AuthError if it is expired, tampered, or not ours."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub", "tenant_id"]}
        )
        return Identity(
            user_id=int(claims["sub"]),
            tenant_id=int(claims["tenant_id"]),
            role=Role(claims["role"]),
            email=str(claims.get("email", "")),
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("Your session has expired; please sign in again.") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise AuthError("Invalid session token.") from exc
