"""Users and roles of the tenant (tenant admins): invite with a role, the pending invitations
(resend, revoke), change roles, deactivate.

The services check MANAGE_USERS themselves and refuse changing oneself or granting platform
admin; this state only passes the signed-in identity from the token and shows their answers. The
database work runs in a thread (`asyncio.to_thread`), never on the portal's event loop, and the
invitation e-mail is sent after the answer is shown, as the API does: the answer is the same for
every address (`veles.services.invitations`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import reflex as rx
from sqlmodel import Session

from models.db import tenant_session
from models.tenancy import Role
from veles.config import get_settings
from veles.services.auth import Identity
from veles.services.invitations import (
    ANSWER,
    InvitationMail,
    InvitationView,
    invite,
    list_invitations,
    resend,
    revoke,
    send_invitation_mail,
)
from veles.services.permissions import Permission
from veles.services.users import UserView, change_role, deactivate_user, list_users
from veles_ui.format import clock
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState, fields, row_id

# Roles a tenant admin hands out (platform admins are made by the platform, not here).
TENANT_ROLES = [Role.VIEWER.value, Role.RISK_MANAGER.value, Role.TENANT_ADMIN.value]


def _view(user: UserView, me: Identity) -> dict[str, str]:
    """`managed`: whether this admin may change the user here (not themself, not a platform admin)."""
    managed = user.id != me.user_id and user.role.value in TENANT_ROLES
    return {
        "managed": "yes" if managed else "no",
        "id": str(user.id),
        "email": user.email,
        "role": user.role.value,
        "phone": user.phone or "",
        "sms": "SMS code" if user.two_factor.value == "sms" else "password",
        "active": "active" if user.is_active else "deactivated",
        "created": clock(user.created_at),
    }


def _pending(invitation: InvitationView) -> dict[str, str]:
    return {
        "id": str(invitation.id),
        "email": invitation.email,
        "role": invitation.role.value,
        "status": invitation.status,
        "by": invitation.invited_by or "",
        "sent": clock(invitation.sent_at),
        "expires": clock(invitation.expires_at),
    }


Action = Callable[[Session, Identity], object]
Listed = tuple[object, list[UserView], list[InvitationView]]


def _act(identity: Identity, action: Action) -> Listed:
    """Run `action(db, identity)` in the caller's tenant (committed), then read both lists. Blocking."""
    with tenant_session(get_settings().database_url, identity.tenant_id) as db:
        result = action(db, identity)
        db.flush()
        return result, list_users(db, identity), list_invitations(db, identity)


def _mail_of(result: object) -> InvitationMail | None:
    """The mail an invite or resend returned with its view, to send once the answer is shown."""
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], InvitationMail):
        return result[1]
    return None


class UsersState(SessionState):
    """The tenant's users, its open invitations and the outcome of the last action."""

    users: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    invitations: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    async def _run(self, action: Action, notice: str = "", change: bool = True) -> object | None:
        """Run `action` as a MANAGE_USERS action off the event loop, then show both lists; a
        failure is shown under the form (never raised out of the handler) and gives None."""
        try:
            identity = await (self.changing(Permission.MANAGE_USERS) if change
                              else self.authorized(Permission.MANAGE_USERS))
            result, users, invitations = await asyncio.to_thread(_act, identity, action)
        except Exception as exc:
            self.error, self.notice = shown(exc), ""
            return None
        self.users = [_view(user, identity) for user in users]
        self.invitations = [_pending(invitation) for invitation in invitations]
        self.error, self.notice = "", notice
        return result

    @rx.event
    async def load(self) -> None:
        """Page load."""
        await self._run(lambda db, me: None, change=False)

    @rx.event
    async def invite(self, form: dict[str, str]) -> AsyncIterator[None]:
        """Invite an address with a role: the same answer for every address; the e-mail goes out
        after it is shown."""
        data = {k: v for k, v in fields(form, ("email", "role")).items() if v.strip()}
        ip, settings = self._client_ip(), get_settings()
        mail = _mail_of(await self._run(lambda db, me: invite(db, settings, me, data, ip=ip), ANSWER))
        if mail is not None:
            yield
            await asyncio.to_thread(send_invitation_mail, settings, mail)

    @rx.event
    async def resend(self, invitation_id: str) -> AsyncIterator[None]:
        """A new link and a new expiry for an open invitation; the older link stops working."""
        ip, settings = self._client_ip(), get_settings()
        mail = _mail_of(await self._run(
            lambda db, me: resend(db, settings, me, row_id(invitation_id, "invitation"), ip=ip),
            "Invitation sent again; the earlier link no longer works."))
        if mail is not None:
            yield
            await asyncio.to_thread(send_invitation_mail, settings, mail)

    @rx.event
    async def revoke(self, invitation_id: str) -> None:
        """Withdraw an open invitation: its link stops working at once."""
        ip = self._client_ip()
        await self._run(lambda db, me: revoke(db, me, row_id(invitation_id, "invitation"), ip=ip),
                        "Invitation revoked; its link no longer works.")

    @rx.event
    async def set_role(self, user_id: str, role: str) -> None:
        """Give a user another role (applies from their next token renewal)."""
        ip = self._client_ip()
        await self._run(lambda db, me: change_role(db, me, row_id(user_id, "user"), {"role": role}, ip=ip),
                        "Role changed.")

    @rx.event
    async def deactivate(self, user_id: str) -> None:
        """Stop a user from signing in; their sign-ins end now."""
        ip = self._client_ip()
        await self._run(lambda db, me: deactivate_user(db, me, row_id(user_id, "user"), ip=ip),
                        "User deactivated.")
