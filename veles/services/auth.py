"""Signing in: passwords, the failed-sign-in throttle, SMS codes, and the token pair a sign-in ends with.

`sign_in`, `verify_code`, `refresh` and `logout` are the whole flow, shared by the REST API and the
Reflex login page, so both throttle, audit and rotate tokens the same way. Failures slow down the
(e-mail, IP) pair that fails (`veles.services.throttle`), never lock an account, and an unknown
address is answered exactly like a known one with a wrong password (same status and text, and an
Argon2 check against a decoy hash so the time matches too). Passwords are hashed
with Argon2id (argon2-cffi's defaults follow the OWASP recommendation). Token primitives live in
`veles.services.tokens` and are re-exported here for existing callers.

These functions take the caller's platform session (sign-in starts from an e-mail, not a tenant)
and commit it themselves before refusing, so a failure's counter and audit row are kept although
the caller's unit of work then ends with an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from models.columns import utcnow
from models.tenancy import Tenant, TenantStatus, TwoFactor, User
from veles.config import Settings
from veles.services import messaging, sessions, throttle, tokens
from veles.services.audit import Action, record
from veles.services.errors import InvalidInput
from veles.services.passwords import check_password, personal_words
from veles.services.signing_keys import keyring
from veles.services.throttle import Throttled
from veles.services.tokens import AuthError, Identity, RefreshReused, as_utc, decode_token, issue_token

__all__ = [
    "AuthError",
    "Challenge",
    "CodeNotSent",
    "Identity",
    "PasswordChangeRequired",
    "RefreshReused",
    "Throttled",
    "Tokens",
    "authenticate",
    "decode_token",
    "hash_password",
    "issue_token",
    "logout",
    "normalize_email",
    "refresh",
    "sign_in",
    "verify_code",
    "verify_password",
]

_hasher = PasswordHasher()
WRONG_CREDENTIALS = "Wrong email or password."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

class PasswordChangeRequired(AuthError):
    """The password was right but temporary (a one-time password's): sign in again giving a new one."""


class CodeNotSent(AuthError):
    """The password was right but the SMS code could not be sent (SMS not configured, Twilio down)."""


@dataclass(frozen=True, slots=True)
class Tokens:
    """A completed sign-in: a short-lived access token and the refresh token that renews it."""

    identity: Identity
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class Challenge:
    """The password was right and an SMS code was sent; `verify_code(challenge, code)` finishes."""

    challenge: str
    expires_in: int
    phone_hint: str


def hash_password(password: str) -> str:
    """Argon2id hash with a random salt, encoded with its parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches; a malformed stored hash counts as no match."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _decoy_hash() -> str:
    """Checked against when the e-mail is unknown, so the answer takes as long as for a real user."""
    return hash_password("decoy password for unknown e-mails")


def normalize_email(email: str) -> str | None:
    """An address as stored (trimmed, lower case), or None when it holds control characters, which
    no stored address has and PostgreSQL cannot even compare (NUL)."""
    email = email.strip().lower()
    return None if _CONTROL.search(email) else email


def _find_user(session: Session, email: str) -> User | None:
    normalized = normalize_email(email)
    if normalized is None:
        return None
    return session.exec(select(User).where(User.email == normalized)).first()


def _active_tenant(session: Session, user: User) -> Tenant:
    tenant = session.get(Tenant, user.tenant_id)
    if tenant is not None and tenant.status == TenantStatus.PENDING_VERIFICATION:
        raise AuthError("Confirm your e-mail address first: follow the link we sent you when you signed up.")
    if tenant is None or tenant.status != TenantStatus.ACTIVE:
        raise AuthError("This broker's account is suspended.")
    return tenant


def _identity(user: User, tenant: Tenant) -> Identity:
    assert user.id is not None
    return Identity(user_id=user.id, tenant_id=user.tenant_id, role=user.role, email=user.email,
                    plan=tenant.plan, version=user.token_version)


def authenticate(session: Session, email: str, password: str) -> Identity:
    """Check an e-mail and password without side effects; one message for every failure so accounts
    can't be probed. `sign_in` is the full flow (throttle, codes, tokens)."""
    user = _find_user(session, email)
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise AuthError(WRONG_CREDENTIALS)
    return _identity(user, _active_tenant(session, user))


def _failure(session: Session, settings: Settings, key: str, action: Action, ip: str | None,
             error: AuthError, user: User | None = None, email: str | None = None) -> AuthError:
    """Count one failure against the (e-mail, IP) pair, audit, commit; returns what to raise (the
    same for a known and an unknown address)."""
    failures = throttle.record_failure(session, settings, key)
    if user is not None:
        record(session, action, tenant_id=user.tenant_id, actor_user_id=user.id, target=f"user:{user.id}",
               details={"failures": failures, **({} if user.is_active else {"inactive": True})}, ip=ip)
    else:
        record(session, action, tenant_id=None, details={"email": (email or "")[:254], "failures": failures},
               ip=ip)
    session.commit()
    return error


def _tokens(session: Session, settings: Settings, identity: Identity, ip: str | None,
            family: str | None = None) -> Tokens:
    secret = keyring(settings)
    return Tokens(
        identity=identity,
        access_token=issue_token(identity, secret, settings.access_token_minutes),
        expires_in=settings.access_token_minutes * 60,
        refresh_token=tokens.issue_refresh(session, identity, secret, settings.refresh_token_days,
                                           family=family, ip=ip),
        refresh_expires_in=settings.refresh_token_days * 86400,
    )


def _phone_hint(phone: str) -> str:
    return f"…{phone[-2:]}" if len(phone) >= 2 else "…"


def sign_in(session: Session, settings: Settings, email: str, password: str, *,
            ip: str | None = None, new_password: str | None = None) -> Tokens | Challenge:
    """Check the password (the pair's throttle first), then either finish with tokens or, for a
    user with two_factor=sms, text a code (Twilio, `veles.services.messaging`) and return a
    Challenge for `verify_code`. A temporary password must be replaced: without `new_password`
    that is PasswordChangeRequired; with it (checked like any chosen password) it is set first.

    Raises AuthError (one message for unknown e-mail, wrong password and deactivated user; also a
    suspended broker, an expired temporary password), Throttled (with the wait), InvalidInput for
    a refused `new_password`, or CodeNotSent when the SMS cannot go out.
    """
    key = throttle.pair_key(email, ip)
    throttle.refuse_if_waiting(session, key)
    user = _find_user(session, email)
    if user is None:
        verify_password(_decoy_hash(), password)
        raise _failure(session, settings, key, Action.SIGN_IN_FAILED, ip, AuthError(WRONG_CREDENTIALS),
                       email=normalize_email(email) or "")
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise _failure(session, settings, key, Action.SIGN_IN_FAILED, ip, AuthError(WRONG_CREDENTIALS),
                       user=user)
    tenant = _active_tenant(session, user)
    if user.password_expires_at is not None and as_utc(user.password_expires_at) <= utcnow():
        raise AuthError("This temporary password has expired: ask your administrator for a new one, "
                        "or reset your password.")
    if user.must_change_password:
        _replace_temporary(session, user, tenant, password, new_password, ip)
    throttle.clear(session, key)
    identity = _identity(user, tenant)
    if user.two_factor == TwoFactor.SMS:
        return _send_challenge(session, settings, user, ip)
    result = _tokens(session, settings, identity, ip)
    record(session, Action.SIGN_IN, tenant_id=user.tenant_id, actor_user_id=user.id, ip=ip)
    session.commit()
    return result


def _replace_temporary(session: Session, user: User, tenant: Tenant, password: str,
                       new_password: str | None, ip: str | None) -> None:
    """First sign-in with a temporary password: the new one is set (same rules as any chosen
    password, and different from the temporary one) before the sign-in goes on."""
    if new_password is None:
        raise PasswordChangeRequired("This password was temporary: choose a new one to finish signing in.")
    check_password(new_password, user_inputs=personal_words(user.email, tenant.name), field="new_password")
    if new_password == password:
        raise InvalidInput("new_password", "Choose a password different from the temporary one.")
    user.password_hash = hash_password(new_password)
    user.must_change_password, user.password_expires_at = False, None
    session.add(user)
    record(session, Action.PASSWORD_CHANGE, tenant_id=user.tenant_id, actor_user_id=user.id,
           target=f"user:{user.id}", details={"temporary_replaced": True}, ip=ip)


def _send_challenge(session: Session, settings: Settings, user: User, ip: str | None) -> Challenge:
    """Create the challenge and text its code; no challenge is kept if the text cannot be sent."""
    if not user.phone:
        raise CodeNotSent("Your account needs an SMS code but has no phone number; ask your administrator.")
    assert user.id is not None
    minutes = settings.sms_code_minutes
    challenge, code = tokens.create_challenge(session, user.tenant_id, user.id,
                                              keyring(settings), minutes)
    try:
        text = f"Your Veles sign-in code is {code}. It expires in {minutes} min."
        messaging.send_sms(settings, user.phone, text)
    except (messaging.MessagingError, ValueError) as exc:
        session.rollback()
        record(session, Action.CODE_NOT_SENT, tenant_id=user.tenant_id, actor_user_id=user.id,
               details={"reason": str(exc)}, ip=ip)
        session.commit()
        raise CodeNotSent("The sign-in code could not be sent by SMS; try again in a moment.") from exc
    record(session, Action.CODE_SENT, tenant_id=user.tenant_id, actor_user_id=user.id, ip=ip)
    session.commit()
    return Challenge(challenge=challenge, expires_in=minutes * 60,
                     phone_hint=_phone_hint(user.phone))


def verify_code(session: Session, settings: Settings, challenge: str, code: str, *,
                ip: str | None = None) -> Tokens:
    """Exchange a challenge and its SMS code for tokens. Codes expire, work once, and a wrong code
    counts toward the (e-mail, IP) throttle like a wrong password."""
    row = tokens.open_challenge(session, challenge)
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise AuthError("This sign-in code has expired or was already used; please sign in again.")
    key = throttle.pair_key(user.email, ip)
    throttle.refuse_if_waiting(session, key)
    if not tokens.code_matches(row, code, keyring(settings)):
        session.add(row)
        raise _failure(session, settings, key, Action.CODE_FAILED, ip,
                       AuthError("Wrong code; check the SMS and try again."), user=user)
    session.add(row)
    throttle.clear(session, key)
    user.phone_verified_at = utcnow()  # the code reached `user.phone`: the number is theirs
    result = _tokens(session, settings, _identity(user, _active_tenant(session, user)), ip)
    record(session, Action.SIGN_IN, tenant_id=user.tenant_id, actor_user_id=user.id,
           details={"second_factor": "sms"}, ip=ip)
    session.commit()
    return result


def refresh(session: Session, settings: Settings, refresh_token: str, *, ip: str | None = None) -> Tokens:
    """Spend a refresh token for a new pair in the same family, with the user's current role and
    plan. Reuse of a spent token ends the family and is audited; a deactivated user or suspended
    broker ends it too."""
    try:
        row = tokens.consume_refresh(session, refresh_token, keyring(settings))
    except RefreshReused as reused:
        who = reused.identity
        # The copied family's access tokens die too (every access token of the user: they carry
        # no family); the user's other sign-ins renew from their own refresh tokens.
        sessions.end_user_sessions(session, who.user_id)
        record(session, Action.REFRESH_REUSE, tenant_id=who.tenant_id, actor_user_id=who.user_id,
               target=f"user:{who.user_id}", ip=ip)
        session.commit()
        raise
    user = session.get(User, row.user_id)
    try:
        if user is None or not user.is_active:
            raise AuthError("This account is no longer active.")
        fresh = _identity(user, _active_tenant(session, user))
    except AuthError:
        tokens.revoke_family(session, row.family)
        session.commit()
        raise
    result = _tokens(session, settings, fresh, ip, family=row.family)
    session.commit()
    return result


def logout(session: Session, settings: Settings, refresh_token: str, *, ip: str | None = None) -> None:
    """End the sign-in a refresh token belongs to (every token of its family); idempotent."""
    identity, family = tokens.refresh_claims(refresh_token, keyring(settings))
    revoked = tokens.revoke_family(session, family)
    if revoked:  # this sign-in's access tokens stop at once (with the user's others: they renew)
        sessions.end_user_sessions(session, identity.user_id)
    record(session, Action.LOGOUT, tenant_id=identity.tenant_id, actor_user_id=identity.user_id,
           details={"revoked": revoked}, ip=ip)
    session.commit()
