"""Tokens: short-lived access JWTs, rotating refresh tokens, and one-time sign-in codes.

Access tokens are HS256 JWTs carrying `sub`, `tenant_id`, `role`, `plan` and `ver` (the user's
token version), checked without a database query on every request; `veles.services.sessions`
compares `ver` with the user's current version (cached), so ending a user's sessions is immediate.
Refresh tokens are JWTs too (`typ=refresh`, with their family and a random `jti`), but each one is
also a row holding only its SHA-256: it works once, is replaced by the next on use, and can be
revoked. Decoding pins the algorithm and the token type, so `alg=none`, another key, or a refresh
token presented as an access token (or the reverse) are all refused.

Every token names its signing key in a `kid` header (`veles.services.signing_keys`): new tokens are
signed with SECRET_KEY, and tokens signed with a previous key verify only while the rotation's
overlap lasts. The functions take a Keyring or one bare secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.auth import LoginChallenge, RefreshToken
from models.columns import utcnow
from models.tenancy import Plan, Role
from veles.services.signing_keys import KeyLike, SigningKey, as_keyring

_ALGORITHM = "HS256"
ACCESS, REFRESH = "access", "refresh"
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5  # wrong codes before a challenge is spent (each also counts toward the throttle)


class AuthError(Exception):
    """Credentials or a token were refused; the message is safe to show the user."""




@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token speaks for. `plan` picks the tenant's API rate tier; `version` is the
    user's token version when the token was issued (`veles.services.sessions`)."""

    user_id: int
    tenant_id: int
    role: Role
    email: str
    plan: Plan = Plan.STARTER
    version: int = 0


class RefreshReused(AuthError):
    """A refresh token was presented after it had been used: it was copied, so its family is ended."""

    def __init__(self, identity: Identity) -> None:
        super().__init__("This session was ended because its refresh token was used twice; sign in again.")
        self.identity = identity


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored in UTC, so say so before comparing."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def token_hash(secret_value: str) -> str:
    """SHA-256 hex: what the database keeps of a refresh token or challenge id (high-entropy values,
    so a plain hash cannot be reversed)."""
    return hashlib.sha256(secret_value.encode()).hexdigest()


def _claims(identity: Identity, kind: str, expires: datetime) -> dict[str, Any]:
    return {
        "typ": kind,
        "sub": str(identity.user_id),
        "tenant_id": identity.tenant_id,
        "role": identity.role.value,
        "plan": identity.plan.value,
        "email": identity.email,
        "ver": identity.version,
        "iat": utcnow(),
        "exp": expires,
    }


def _sign(claims: dict[str, Any], secret: KeyLike) -> str:
    key = as_keyring(secret).current
    return jwt.encode(claims, key.secret, _ALGORITHM, headers={"kid": key.kid})


def _verifying_key(token: str, secret: KeyLike) -> SigningKey:
    """The key the token's `kid` names, if it is one accepted now; raises InvalidSignatureError."""
    kid = jwt.get_unverified_header(token).get("kid")
    key = as_keyring(secret).find(kid) if kid is None or isinstance(kid, str) else None
    if key is None:
        raise jwt.InvalidSignatureError("the token is not signed with a key accepted now")
    return key


def issue_token(identity: Identity, secret: KeyLike, minutes: int) -> str:
    """A signed access token that expires after `minutes`, signed with the current key."""
    return _sign(_claims(identity, ACCESS, utcnow() + timedelta(minutes=minutes)), secret)


def _decode(token: str, secret: KeyLike, kind: str) -> Identity:
    try:
        claims = jwt.decode(
            token, _verifying_key(token, secret).secret, algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub", "tenant_id", "typ"]},
        )
        if claims["typ"] != kind:
            raise AuthError("Invalid session token.")
        return Identity(
            user_id=int(claims["sub"]),
            tenant_id=int(claims["tenant_id"]),
            role=Role(claims["role"]),
            email=str(claims.get("email", "")),
            plan=Plan(claims.get("plan", Plan.STARTER.value)),
            version=int(claims.get("ver", 0)),
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("Your session has expired; please sign in again.") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise AuthError("Invalid session token.") from exc


def decode_token(token: str, secret: KeyLike) -> Identity:
    """The identity in an access token, or AuthError if it is expired, tampered, or not ours."""
    return _decode(token, secret, ACCESS)


def issue_refresh(
    session: Session, identity: Identity, secret: KeyLike, days: int, *, family: str | None = None,
    ip: str | None = None,
) -> str:
    """A new refresh token in `family` (a new family: a new sign-in); its hash is added to `session`."""
    family = family or str(uuid.uuid4())
    expires = utcnow() + timedelta(days=days)
    claims = {**_claims(identity, REFRESH, expires), "fam": family, "jti": secrets.token_urlsafe(16)}
    token = _sign(claims, secret)
    session.add(RefreshToken(tenant_id=identity.tenant_id, user_id=identity.user_id, family=family,
                             token_hash=token_hash(token), expires_at=expires, ip=ip))
    return token


def consume_refresh(session: Session, token: str, secret: KeyLike) -> RefreshToken:
    """Spend a refresh token: checks signature, type and expiry, then marks its row used in one
    conditional UPDATE, so of two concurrent refreshes with one token only one can win.

    A token already used or revoked ends its whole family (RefreshReused) — the caller must commit
    that revocation before reporting the error. The caller re-reads the user for the current role
    and status.
    """
    identity = _decode(token, secret, REFRESH)
    row = session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash(token))).first()
    if row is None or row.user_id != identity.user_id or row.tenant_id != identity.tenant_id:
        raise AuthError("Invalid session token.")
    now = utcnow()
    spent = session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None),
               col(RefreshToken.revoked_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(row)
        if row.revoked_at is not None and row.used_at is None:
            raise AuthError("This session was signed out; please sign in again.")
        revoke_family(session, row.family)
        raise RefreshReused(identity)
    session.refresh(row)
    return row


def revoke_family(session: Session, family: str) -> int:
    """End every live token of one sign-in; returns how many were still live."""
    result = session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family) == family, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_user(session: Session, user_id: int) -> int:
    """End every sign-in of a user (deactivated, password changed); returns how many tokens."""
    result = session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def refresh_claims(token: str, secret: KeyLike) -> tuple[Identity, str]:
    """Who a refresh token speaks for and its family; signature and type are checked, expiry is not,
    so an expired sign-in can still be signed out."""
    try:
        claims = jwt.decode(token, _verifying_key(token, secret).secret, algorithms=[_ALGORITHM],
                            options={"verify_exp": False, "require": ["typ", "fam", "sub", "tenant_id"]})
        if claims["typ"] != REFRESH:
            raise AuthError("Invalid session token.")
        identity = Identity(user_id=int(claims["sub"]), tenant_id=int(claims["tenant_id"]),
                            role=Role(claims["role"]), email=str(claims.get("email", "")))
        return identity, str(claims["fam"])
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise AuthError("Invalid session token.") from exc


def _code_mac(code: str, secret: str) -> str:
    """A six-digit code has only a million values, so it is kept as an HMAC under the secret key."""
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()


def create_challenge(session: Session, tenant_id: int, user_id: int, secret: KeyLike, minutes: int
                     ) -> tuple[str, str]:
    """A pending SMS sign-in: returns (challenge id for the client, code for the SMS)."""
    challenge = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(LoginChallenge(tenant_id=tenant_id, user_id=user_id, challenge_hash=token_hash(challenge),
                               code_hash=_code_mac(code, as_keyring(secret).current.secret),
                               expires_at=utcnow() + timedelta(minutes=minutes)))
    return challenge, code


def open_challenge(session: Session, challenge: str) -> LoginChallenge:
    """The live challenge with this id, or AuthError when unknown, spent or expired."""
    row = session.exec(
        select(LoginChallenge).where(LoginChallenge.challenge_hash == token_hash(challenge))
    ).first()
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= utcnow():
        raise AuthError("This sign-in code has expired or was already used; please sign in again.")
    return row


def code_matches(row: LoginChallenge, code: str, secret: KeyLike) -> bool:
    """Compare in constant time with the MAC under each key accepted now (a code sent just before a
    key rotation still works); a wrong code is counted and, at the limit, spends the challenge."""
    macs = [_code_mac(code.strip(), key.secret) for key in as_keyring(secret).verifying()]
    if any(hmac.compare_digest(row.code_hash, mac) for mac in macs):
        row.used_at = utcnow()
        return True
    row.attempts += 1
    if row.attempts >= MAX_CODE_ATTEMPTS:
        row.used_at = utcnow()
    return False
