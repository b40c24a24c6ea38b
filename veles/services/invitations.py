"""Pending invitations: a tenant admin invites an address with a role, the invitee sets their own
password through the e-mailed link, and only then is the user made.

Shared by the REST API and the portal (users page, /invite), so both behave the same:

- Inviting answers the same for every address: unknown, already a user of this tenant, or a user
  of another broker. The same row is written and audited either way, and the e-mail is chosen and
  sent after the answer (`send_invitation_mail`, with a platform session the inviter never sees),
  so neither the answer, its timing nor the pending list tells the inviter which case it was. An
  address is one user of one broker (sign-in starts from the address alone), so the mail to an
  address that already has an account says it cannot join with that address and carries no link.
- The link's token is 32 random bytes; only its SHA-256 is stored. It expires after
  INVITE_HOURS, a resend replaces it (older links stop working), a revoke ends it, and it works once.
- Accepting checks the link, then the password (`veles.services.passwords`, kept exactly as typed),
  then makes the user in the inviting tenant with the invitation's role; the address is proven by
  the link, so it counts as verified. Whoever sent the invitation is e-mailed that it was accepted
  (`send_accepted_mail`; the tenant's active admins if that admin is gone). Invite, resend, revoke
  and accept are in the tenant's audit log.

The admin-side functions take the caller's tenant session (row-level security) and the acting
`Identity` and do not commit; the link-side ones take a platform session (the holder of a link is
nobody yet) and commit themselves, like the password reset.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.columns import utcnow
from models.db import session_scope
from models.invitations import Invitation
from models.tenancy import Role, Tenant, TenantStatus, User
from veles.config import Settings
from veles.services import messaging
from veles.services.audit import record
from veles.services.auth import Identity, hash_password, normalize_email
from veles.services.errors import Conflict, NotFound, validated
from veles.services.messaging import check_email
from veles.services.password_reset import portal_url
from veles.services.passwords import check_password, personal_words
from veles.services.permissions import Permission, require
from veles.services.tokens import as_utc, token_hash
from veles.services.users import may_grant

log = logging.getLogger(__name__)

INVITED = "invitation.create"
RESENT = "invitation.resend"
REVOKED = "invitation.revoke"
ACCEPTED = "invitation.accept"
# Accept attempts a minute from one IP (the link's token is unguessable; this bounds the Argon2
# work and zxcvbn estimates one address can cause), counted like the other sign-in doors.
ACCEPT_IP_LIMIT = 10
ANSWER = "Invitation sent. The link in it works once, until the invitation expires."

UNKNOWN_LINK = "This invitation link is not valid (it may be incomplete); ask for a new invitation."
USED_LINK = "This invitation was already accepted: sign in with the password you chose."
EXPIRED_LINK = "This invitation has expired; ask the person who invited you to send it again."
REVOKED_LINK = "This invitation was withdrawn; ask the person who invited you for a new one."
TAKEN = ("This address already has a Veles account, and an address can belong to one broker only: "
         "ask for an invitation to another address.")
INACTIVE = "The broker that invited you is not active on Veles at the moment; ask them about it."


class InvitationInvalid(ValueError):
    """The link cannot be used (unknown or altered, expired, withdrawn, already used, or the
    address has an account meanwhile); the text says which and is safe to show to the link's holder."""


def _email(value: str) -> str:
    normalized = normalize_email(value)
    if normalized is None:
        raise ValueError("email: control characters are not allowed in an address")
    return check_email(normalized, "email")


class InvitationForm(BaseModel):
    """Whom to invite, and the role they get when they accept."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254)
    role: Role = Role.VIEWER

    _check_email = field_validator("email")(_email)


class InvitationView(BaseModel):
    """An open invitation as the admins' list shows it (never the token)."""

    id: int
    email: str
    role: Role
    status: Literal["pending", "expired"] = Field(description="Expired ones can be resent.")
    invited_by: str | None = Field(description="E-mail of the admin who sent it last.")
    created_at: datetime
    sent_at: datetime
    expires_at: datetime


class InvitationPreview(BaseModel):
    """What the /invite page shows the link's holder before they choose a password."""

    email: str
    tenant: str
    role: Role


@dataclass(frozen=True, slots=True)
class InvitationMail:
    """The invitation e-mail to send once the inviter has had the answer."""

    to: str
    tenant_id: int
    tenant: str
    role: Role
    inviter: str
    link: str
    hours: int


@dataclass(frozen=True, slots=True)
class AcceptedMail:
    """The note to the inviting admin(s) that the invitation was accepted."""

    to: tuple[str, ...]
    email: str
    tenant: str
    role: Role


@dataclass(frozen=True, slots=True)
class Accepted:
    """The user just made (the address to sign in with) and the note to send."""

    email: str
    notice: AcceptedMail | None


def _view(row: Invitation, inviters: Mapping[int, str]) -> InvitationView:
    assert row.id is not None
    expired = as_utc(row.expires_at) <= utcnow()
    return InvitationView(id=row.id, email=row.email, role=row.role,
                          status="expired" if expired else "pending", invited_by=inviters.get(row.invited_by),
                          created_at=row.created_at,
                          sent_at=row.sent_at, expires_at=row.expires_at)


def _inviters(session: Session, tenant_id: int) -> dict[int, str]:
    users = session.exec(select(User).where(User.tenant_id == tenant_id)).all()
    return {user.id: user.email for user in users if user.id is not None}


def _open(session: Session, actor: Identity, invitation_id: int) -> Invitation:
    row = session.exec(select(Invitation).where(Invitation.id == invitation_id,
                                                Invitation.tenant_id == actor.tenant_id)).first()
    if row is None:
        raise NotFound(f"No invitation {invitation_id} in your tenant.")
    if row.accepted_at is not None:
        raise Conflict("This invitation was already accepted; the user is in your users list.")
    if row.revoked_at is not None:
        raise Conflict("This invitation was revoked; invite the address again instead.")
    return row


def _mail(session: Session, settings: Settings, actor: Identity, row: Invitation,
          token: str) -> InvitationMail:
    tenant = session.get(Tenant, row.tenant_id)
    link = f"{portal_url(settings)}/invite?{urlencode({'token': token})}"
    return InvitationMail(to=row.email, tenant_id=row.tenant_id,
                          tenant=tenant.name if tenant else "your broker",
                          role=row.role, inviter=actor.email, link=link, hours=settings.invite_hours)


def list_invitations(session: Session, actor: Identity) -> list[InvitationView]:
    """The tenant's invitations neither accepted nor revoked, newest first (expired ones too,
    marked so: they can be resent)."""
    require(actor.role, Permission.MANAGE_USERS)
    rows = session.exec(select(Invitation).where(
        Invitation.tenant_id == actor.tenant_id, col(Invitation.accepted_at).is_(None),
        col(Invitation.revoked_at).is_(None)).order_by(col(Invitation.created_at).desc(),
                                                       col(Invitation.id).desc())).all()
    inviters = _inviters(session, actor.tenant_id)
    return [_view(row, inviters) for row in rows]


def invite(session: Session, settings: Settings, actor: Identity, form: InvitationForm | Mapping[str, Any],
           *, ip: str | None = None) -> tuple[InvitationView, InvitationMail]:
    """Record an invitation of the address with a role and return it with the mail to send after
    answering. The same for every address (see the module's docstring): an open invitation of the
    same address in this tenant is replaced by the new one, whose link alone works."""
    require(actor.role, Permission.MANAGE_USERS)
    data = validated(InvitationForm, form)
    may_grant(actor, data.role)
    now = utcnow()
    replaced = session.execute(
        update(Invitation)
        .where(col(Invitation.tenant_id) == actor.tenant_id, col(Invitation.email) == data.email,
               col(Invitation.accepted_at).is_(None), col(Invitation.revoked_at).is_(None))
        .values(revoked_at=now)
    ).rowcount  # type: ignore[attr-defined]
    token = secrets.token_urlsafe(32)
    row = Invitation(tenant_id=actor.tenant_id, email=data.email, role=data.role, invited_by=actor.user_id,
                     token_hash=token_hash(token), created_at=now, sent_at=now,
                     expires_at=now + timedelta(hours=settings.invite_hours))
    session.add(row)
    session.flush()
    record(session, INVITED, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"invitation:{row.id}",
           details={"email": data.email, "role": data.role.value, "replaced": replaced}, ip=ip)
    return _view(row, {actor.user_id: actor.email}), _mail(session, settings, actor, row, token)


def resend(session: Session, settings: Settings, actor: Identity, invitation_id: int, *,
           ip: str | None = None) -> tuple[InvitationView, InvitationMail]:
    """Send an open invitation again with a new link and a new expiry; the older link stops working."""
    require(actor.role, Permission.MANAGE_USERS)
    row = _open(session, actor, invitation_id)
    may_grant(actor, row.role)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row.token_hash, row.sent_at, row.invited_by = token_hash(token), now, actor.user_id
    row.expires_at = now + timedelta(hours=settings.invite_hours)
    session.add(row)
    session.flush()
    record(session, RESENT, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"invitation:{row.id}", details={"email": row.email}, ip=ip)
    return _view(row, {actor.user_id: actor.email}), _mail(session, settings, actor, row, token)


def revoke(session: Session, actor: Identity, invitation_id: int, *, ip: str | None = None) -> None:
    """Withdraw an open invitation: its link stops working at once."""
    require(actor.role, Permission.MANAGE_USERS)
    row = _open(session, actor, invitation_id)
    may_grant(actor, row.role)
    row.revoked_at = utcnow()
    session.add(row)
    record(session, REVOKED, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"invitation:{row.id}", details={"email": row.email}, ip=ip)


def _invitation_text(settings: Settings, mail: InvitationMail, holder: User | None) -> tuple[str, str]:
    """Subject and text for the address as it stands now (read with a platform session)."""
    invited = f"{mail.inviter} invited you to {mail.tenant} on Veles (real-time risk for MT5 brokers)"
    if holder is None:
        return f"You are invited to {mail.tenant} on Veles", (
            f"{invited} as {mail.role.value.replace('_', ' ')}.\n\n"
            f"Choose your password here within {mail.hours} hours to join:\n{mail.link}\n\n"
            "The link works once. If you did not expect this, ignore this e-mail: nothing is made "
            "until the link is followed.\n")
    if holder.tenant_id == mail.tenant_id:
        return f"You are invited to {mail.tenant} on Veles", (
            f"{invited}, but this address already has an account there: sign in at "
            f"{portal_url(settings)}/login (or choose a new password at {portal_url(settings)}/forgot).\n")
    return f"You are invited to {mail.tenant} on Veles", (
        f"{invited}, but this address already has a Veles account with another broker, and an address "
        f"can belong to one broker only. To join {mail.tenant}, ask {mail.inviter} to invite another "
        "address of yours. Nothing was changed on your existing account.\n")


def send_invitation_mail(settings: Settings, mail: InvitationMail) -> None:
    """Write and send the invitation. Runs after the inviter has had the answer, with a platform
    session, so whether the address already has an account (here or elsewhere) reaches only the
    address itself; a failure is logged for the operators (reporting it to the inviter would tell)."""
    try:
        with session_scope(settings.database_url) as session:
            holder = session.exec(select(User).where(User.email == mail.to)).first()
            subject, text = _invitation_text(settings, mail, holder)
        messaging.send_email(settings, [mail.to], subject, text)
    except Exception:
        log.exception("the invitation e-mail to %s could not be sent", mail.to)


def _live(session: Session, token: str) -> tuple[Invitation, Tenant]:
    row = session.exec(select(Invitation).where(Invitation.token_hash == token_hash(token))).first() \
        if token else None
    if row is None:
        raise InvitationInvalid(UNKNOWN_LINK)
    if row.accepted_at is not None:
        raise InvitationInvalid(USED_LINK)
    if row.revoked_at is not None:
        raise InvitationInvalid(REVOKED_LINK)
    if as_utc(row.expires_at) <= utcnow():
        raise InvitationInvalid(EXPIRED_LINK)
    tenant = session.get(Tenant, row.tenant_id)
    if tenant is None or tenant.status != TenantStatus.ACTIVE:
        raise InvitationInvalid(INACTIVE)
    if session.exec(select(User).where(User.email == row.email)).first() is not None:
        raise InvitationInvalid(TAKEN)
    return row, tenant


def preview(session: Session, token: str) -> InvitationPreview:
    """Who the link invites where, or InvitationInvalid saying why it cannot be used (the page says
    so before a password is typed)."""
    row, tenant = _live(session, token)
    return InvitationPreview(email=row.email, tenant=tenant.name, role=row.role)


def _notify(session: Session, row: Invitation) -> tuple[str, ...]:
    """The admin who sent the invitation if still an active admin; else the tenant's active admins."""
    inviter = session.get(User, row.invited_by)
    if inviter is not None and inviter.is_active and inviter.tenant_id == row.tenant_id \
            and inviter.role in (Role.TENANT_ADMIN, Role.PLATFORM_ADMIN):
        return (inviter.email,)
    admins = session.exec(select(User).where(User.tenant_id == row.tenant_id, User.role == Role.TENANT_ADMIN,
                                             col(User.is_active).is_(True)).order_by(col(User.id))).all()
    return tuple(admin.email for admin in admins)


def accept(session: Session, token: str, password: str, confirm: str | None = None, *,
           ip: str | None = None) -> Accepted:
    """Make the invited user with the password chosen (exactly as typed) through a live link.

    The link is checked first (InvitationInvalid), then the password (InvalidInput naming the field),
    so a refused password leaves the link usable. The invitation is spent with a conditional UPDATE,
    so of two concurrent uses only one makes the user.
    """
    row, tenant = _live(session, token)
    check_password(password, confirm, user_inputs=personal_words(row.email, tenant.name))
    now = utcnow()
    spent = session.execute(
        update(Invitation)
        .where(col(Invitation.id) == row.id, col(Invitation.accepted_at).is_(None),
               col(Invitation.revoked_at).is_(None))
        .values(accepted_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise InvitationInvalid(USED_LINK)
    user = User(tenant_id=row.tenant_id, email=row.email, role=row.role,
                password_hash=hash_password(password), email_verified_at=now)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:  # the address was registered between the check and now
        session.rollback()
        raise InvitationInvalid(TAKEN) from None
    record(session, ACCEPTED, tenant_id=row.tenant_id, actor_user_id=user.id, target=f"user:{user.id}",
           details={"invitation": row.id, "email": user.email, "role": user.role.value,
                    "invited_by": row.invited_by}, ip=ip)
    recipients = _notify(session, row)
    session.commit()
    notice = AcceptedMail(to=recipients, email=user.email, tenant=tenant.name, role=user.role) if recipients \
        else None
    return Accepted(email=user.email, notice=notice)


def send_accepted_mail(settings: Settings, mail: AcceptedMail) -> None:
    """Tell the inviting admin(s) the invitation was accepted; a failure is logged, the user stays made."""
    text = (f"{mail.email} accepted the invitation and joined {mail.tenant} on Veles as "
            f"{mail.role.value.replace('_', ' ')}. They are in your users list: "
            f"{portal_url(settings)}/users\n")
    try:
        messaging.send_email(settings, list(mail.to), f"{mail.email} joined {mail.tenant} on Veles", text)
    except (messaging.MessagingError, ValueError):
        log.exception("the invitation-accepted e-mail to %s could not be sent", ", ".join(mail.to))
