"""Password reset by e-mail: ask for a link, follow it, choose a new password.

Shared by the REST API and the portal's /forgot and /reset pages so both behave the same:

- Asking never tells whether an address has an account: the caller answers the same way for a
  known, unknown, deactivated or suspended address, and the e-mail is sent after that answer
  (`send_reset_mail`, in the background), so neither the text nor the time of the answer differs.
- The link's token is 32 random bytes; only its SHA-256 is stored, so a copy of the database gives
  no usable link. It expires after `RESET_MINUTES` and works once; using one spends every other
  open link of the user too. At most `MAX_OPEN_LINKS` open links per user, so the form cannot be
  used to flood someone's mailbox (the callers rate-limit per IP and address as well).
- Completing sets the new password (`veles.services.passwords`, like every chosen password), ends
  every session of the user (`veles.services.sessions`: access and refresh tokens alike), clears
  the sign-in throttle of the (address, IP) it was completed from and a temporary password's
  must-change flag, and both steps are in the audit log.

Functions take the caller's platform session (the user is found by e-mail or token, not tenant)
and commit it themselves, so the audit row is kept even when the caller then reports a refusal.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from models.auth import PasswordReset
from models.columns import utcnow
from models.tenancy import Tenant, TenantStatus, User
from veles.config import Settings
from veles.services import messaging, throttle
from veles.services.audit import record
from veles.services.auth import hash_password, normalize_email
from veles.services.passwords import check_password, personal_words
from veles.services.sessions import end_sessions
from veles.services.tokens import as_utc, token_hash

log = logging.getLogger(__name__)

RESET_MINUTES = 30
MAX_OPEN_LINKS = 3
# Requests a minute for one address (a person needs one or two), and requests plus link uses a
# minute from one IP (an office behind one address, a mistyped password or two).
RESET_LIMIT, RESET_IP_LIMIT = 5, 10
REQUESTED = "auth.password_reset_requested"
COMPLETED = "auth.password_reset"
ANSWER = "If an account uses this address, we have sent it a link to choose a new password."


class ResetLinkInvalid(ValueError):
    """The link cannot be used (unknown or altered, expired, already used); the text says which and
    is safe to show."""


@dataclass(frozen=True, slots=True)
class ResetMail:
    """The e-mail to send once the caller has answered: where to, and the link it carries."""

    to: str
    link: str


def portal_url(settings: Settings) -> str:
    """Where users reach the portal: PUBLIC_URL, else the local portal (as in rxconfig.py)."""
    return (settings.public_url or f"http://localhost:{settings.frontend_port}").rstrip("/")


def _open_links(session: Session, user_id: int) -> int:
    now = utcnow()
    count = session.exec(
        select(func.count()).select_from(PasswordReset).where(
            col(PasswordReset.user_id) == user_id, col(PasswordReset.used_at).is_(None),
            col(PasswordReset.expires_at) > now)
    ).one()
    return int(count)


def request_reset(session: Session, settings: Settings, email: str, *, ip: str | None = None
                  ) -> ResetMail | None:
    """Make a reset link for the active user with this address and return the mail to send; None
    when there is nothing to send (no such active user, active broker, or too many open links).
    The caller answers `ANSWER` in every case. Audited either way, without the token."""
    address = normalize_email(email) or ""
    user = session.exec(select(User).where(User.email == address)).first() if address else None
    tenant = session.get(Tenant, user.tenant_id) if user is not None else None
    if user is None or tenant is None or not user.is_active or tenant.status != TenantStatus.ACTIVE:
        record(session, REQUESTED, tenant_id=None, details={"email": address[:254], "sent": False}, ip=ip)
        session.commit()
        return None
    assert user.id is not None
    if _open_links(session, user.id) >= MAX_OPEN_LINKS:
        record(session, REQUESTED, tenant_id=user.tenant_id, actor_user_id=user.id, target=f"user:{user.id}",
               details={"sent": False, "reason": "too many open links"}, ip=ip)
        session.commit()
        return None
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(tenant_id=user.tenant_id, user_id=user.id, token_hash=token_hash(token),
                              expires_at=utcnow() + timedelta(minutes=RESET_MINUTES), ip=ip))
    record(session, REQUESTED, tenant_id=user.tenant_id, actor_user_id=user.id, target=f"user:{user.id}",
           details={"sent": True}, ip=ip)
    session.commit()
    return ResetMail(to=user.email, link=f"{portal_url(settings)}/reset?{urlencode({'token': token})}")


def send_reset_mail(settings: Settings, mail: ResetMail) -> None:
    """Send the link. Runs after the caller has answered, so a failure cannot be reported to the
    requester (that would tell the address has an account): it is logged for the operators."""
    text = (
        "Someone (hopefully you) asked to reset the password of your Veles account.\n\n"
        f"Choose a new password here within {RESET_MINUTES} minutes:\n{mail.link}\n\n"
        "The link works once. If you did not ask for it, ignore this e-mail: your password stays as it is.\n"
    )
    try:
        messaging.send_email(settings, [mail.to], "Reset your Veles password", text)
    except (messaging.MessagingError, ValueError):
        log.exception("the password-reset e-mail to %s could not be sent", mail.to)


def _live_link(session: Session, token: str) -> PasswordReset:
    row = session.exec(select(PasswordReset).where(PasswordReset.token_hash == token_hash(token))).first()
    if row is None:
        raise ResetLinkInvalid("This reset link is not valid (it may be incomplete); ask for a new one.")
    if row.used_at is not None:
        raise ResetLinkInvalid("This reset link was already used; ask for a new one if you need it.")
    if as_utc(row.expires_at) <= utcnow():
        raise ResetLinkInvalid(f"This reset link has expired (links last {RESET_MINUTES} minutes); "
                               "ask for a new one.")
    return row


def check_link(session: Session, token: str) -> None:
    """ResetLinkInvalid unless the link can still be used (the reset page says so before asking
    for a password)."""
    _live_link(session, token)


def complete_reset(session: Session, token: str, password: str, confirm: str | None = None, *,
                   ip: str | None = None) -> str:
    """Set a new password through a live link; returns the user's e-mail (to sign in with).

    The link is checked first (ResetLinkInvalid), then the password (InvalidInput naming the field),
    so a refused password leaves the link usable. The link is spent with a conditional UPDATE, so
    of two concurrent uses only one wins.
    """
    row = _live_link(session, token)
    owner = session.get(User, row.user_id)
    tenant = session.get(Tenant, row.tenant_id)
    check_password(password, confirm, user_inputs=personal_words(owner.email if owner else None,
                                                                 tenant.name if tenant else None))
    spent = session.execute(
        update(PasswordReset)
        .where(col(PasswordReset.id) == row.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=utcnow())
    )
    user = session.get(User, row.user_id)
    if spent.rowcount != 1 or user is None or not user.is_active:  # type: ignore[attr-defined]
        session.rollback()
        raise ResetLinkInvalid("This reset link was already used; ask for a new one if you need it.")
    session.execute(
        update(PasswordReset)
        .where(col(PasswordReset.user_id) == user.id, col(PasswordReset.used_at).is_(None))
        .values(used_at=utcnow())
    )
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    user.must_change_password, user.password_expires_at = False, None
    throttle.clear(session, throttle.pair_key(user.email, ip))
    ended = end_sessions(session, user)  # access tokens at once, refresh tokens too
    record(session, COMPLETED, tenant_id=user.tenant_id, actor_user_id=user.id, target=f"user:{user.id}",
           details={"sessions_ended": ended}, ip=ip)
    session.commit()
    return user.email
