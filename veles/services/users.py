"""The people of one tenant: list, change a role, deactivate; and each user's own password and
phone. New users come in through invitations (`veles.services.invitations`).

Shared by the REST API and the portal's users page, so both check the same permission
(`MANAGE_USERS`, from `veles.services.permissions`) and the same rules:
- nobody changes their own role or deactivates themselves (so a tenant always keeps the admin who
  is acting), and only a platform admin can make or touch a platform admin;
- deactivating a user or changing a password ends every sign-in of that user at once (access and
  refresh tokens); a role change ends their access tokens, so the new role applies at once;
- every change is in the audit log.

Functions take the caller's tenant session (`models.db.tenant_session`; row-level security on
PostgreSQL) and the acting `Identity`, filter by tenant explicitly as well (SQLite has no RLS), and
raise `InvalidInput` (a field), `NotFound` (not in your tenant, wherever else it may exist),
`Conflict` (clashes with stored data) or `PermissionDenied`. They do not commit: the caller's
unit of work does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from models.tenancy import Role, Tenant, TwoFactor, User
from veles.services import sessions
from veles.services.audit import Action, record
from veles.services.auth import Identity, hash_password, verify_password
from veles.services.errors import Conflict, InvalidInput, NotFound, validated
from veles.services.messaging import check_phone
from veles.services.passwords import MAX_PASSWORD, MIN_PASSWORD, check_password, personal_words
from veles.services.permissions import Permission, PermissionDenied, require


def _phone(value: str | None) -> str | None:
    return None if value is None or not value.strip() else check_phone(value.strip(), "phone")


class RoleChange(BaseModel):
    """A user's new role."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class PasswordChange(BaseModel):
    """The signed-in user's current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class PhoneChange(BaseModel):
    """The signed-in user's phone (None or "" removes it) and, optionally, SMS codes at sign-in,
    with the current password: a stolen session alone must not move the second factor to the
    thief's phone."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD)
    phone: str | None = Field(default=None, max_length=32, description="E.164, e.g. +4915112345678.")
    sms_sign_in: bool | None = Field(default=None, description="Ask for an SMS code at every sign-in.")

    _check_phone = field_validator("phone")(_phone)


class UserView(BaseModel):
    """A user as lists and forms show it: never the password hash or secrets."""

    id: int
    email: str
    role: Role
    phone: str | None
    phone_verified: bool = Field(description="An SMS code sent to the phone was entered since it was set.")
    two_factor: TwoFactor
    is_active: bool
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        """The view of a stored user."""
        assert user.id is not None
        return cls(id=user.id, email=user.email, role=user.role, phone=user.phone,
                   phone_verified=user.phone_verified_at is not None, two_factor=user.two_factor,
                   is_active=user.is_active, locked_until=user.locked_until, created_at=user.created_at)


def _get(session: Session, actor: Identity, user_id: int) -> User:
    user = session.exec(select(User).where(User.id == user_id, User.tenant_id == actor.tenant_id)).first()
    if user is None:
        raise NotFound(f"No user {user_id} in your tenant.")
    return user


def may_grant(actor: Identity, role: Role) -> None:
    """PermissionDenied unless the actor may hand out (or touch someone with) `role`."""
    if role == Role.PLATFORM_ADMIN and actor.role != Role.PLATFORM_ADMIN:
        raise PermissionDenied("Only a platform admin may make or change a platform admin.")


def _managed(session: Session, actor: Identity, user_id: int, what: str) -> User:
    """A user the actor may manage: in the tenant, not the actor, not above the actor."""
    require(actor.role, Permission.MANAGE_USERS)
    user = _get(session, actor, user_id)
    if user.id == actor.user_id:
        raise Conflict(f"You cannot {what} yourself; ask another administrator.")
    may_grant(actor, user.role)
    return user


def list_users(session: Session, actor: Identity) -> list[UserView]:
    """Every user of the actor's tenant, by e-mail."""
    require(actor.role, Permission.MANAGE_USERS)
    query = select(User).where(User.tenant_id == actor.tenant_id).order_by(col(User.email))
    users = session.exec(query).all()
    return [UserView.of(user) for user in users]


def get_user(session: Session, actor: Identity, user_id: int) -> UserView:
    """One user of the actor's tenant."""
    require(actor.role, Permission.MANAGE_USERS)
    return UserView.of(_get(session, actor, user_id))


def change_role(session: Session, actor: Identity, user_id: int, change: RoleChange | Mapping[str, Any],
                *, ip: str | None = None) -> UserView:
    """Give a user of the tenant another role, at once: their access tokens stop working, and their
    next refresh (refresh tokens stay valid) gives them one with the new role."""
    role = validated(RoleChange, change).role
    user = _managed(session, actor, user_id, "change the role of")
    may_grant(actor, role)
    before, user.role = user.role, role
    sessions.end_sessions(session, user, keep_refresh=True)
    record(session, Action.USER_ROLE, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"user:{user.id}", details={"from": before.value, "to": role.value}, ip=ip)
    return UserView.of(user)


def deactivate_user(session: Session, actor: Identity, user_id: int, *, ip: str | None = None) -> UserView:
    """Stop a user from signing in and end their sign-ins; the row stays (audit, alerts they acked)."""
    user = _managed(session, actor, user_id, "deactivate")
    user.is_active = False
    ended = sessions.end_sessions(session, user)
    record(session, Action.USER_DEACTIVATE, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"user:{user.id}", details={"sessions_ended": ended}, ip=ip)
    return UserView.of(user)


def change_password(session: Session, actor: Identity, change: PasswordChange | Mapping[str, Any],
                    *, ip: str | None = None) -> None:
    """Change the actor's own password; every sign-in of theirs ends, so a thief's does too."""
    form = validated(PasswordChange, change)
    user = _get(session, actor, actor.user_id)
    if not verify_password(user.password_hash, form.current_password):
        raise InvalidInput("current_password", "This is not your current password.")
    if form.new_password == form.current_password:
        raise InvalidInput("new_password", "Choose a password different from the current one.")
    tenant = session.get(Tenant, actor.tenant_id)
    check_password(form.new_password, user_inputs=personal_words(user.email, tenant.name if tenant else None),
                   field="new_password")
    user.password_hash = hash_password(form.new_password)
    user.must_change_password, user.password_expires_at = False, None
    ended = sessions.end_sessions(session, user)
    record(session, Action.PASSWORD_CHANGE, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"user:{user.id}", details={"sessions_ended": ended}, ip=ip)


def my_account(session: Session, actor: Identity) -> UserView:
    """The signed-in user's own row, as forms show it (any role: it is their own)."""
    return UserView.of(_get(session, actor, actor.user_id))


def change_phone(session: Session, actor: Identity, change: PhoneChange | Mapping[str, Any],
                 *, ip: str | None = None) -> UserView:
    """Set or remove the actor's own phone and, optionally, turn SMS sign-in codes on or off; only
    with the current password (InvalidInput on `current_password` otherwise)."""
    form = validated(PhoneChange, change)
    user = _get(session, actor, actor.user_id)
    if not verify_password(user.password_hash, form.current_password):
        raise InvalidInput("current_password", "This is not your current password.")
    sms = user.two_factor == TwoFactor.SMS if form.sms_sign_in is None else form.sms_sign_in
    if sms and form.phone is None:
        raise InvalidInput("phone", "SMS sign-in codes need a phone number.")
    if form.phone != user.phone:
        user.phone_verified_at = None  # proven again by the next SMS code entered
    user.phone = form.phone
    if form.sms_sign_in is not None:
        user.two_factor = TwoFactor.SMS if form.sms_sign_in else TwoFactor.NONE
    session.add(user)
    record(session, Action.PHONE_CHANGE, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
           target=f"user:{user.id}", details={"sms_sign_in": user.two_factor == TwoFactor.SMS}, ip=ip)
    return UserView.of(user)
