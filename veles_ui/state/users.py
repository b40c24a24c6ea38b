"""Users and roles of the tenant (tenant admins): invite with a role, change roles, deactivate.

The services check MANAGE_USERS themselves and refuse changing oneself or granting platform
admin; this state only passes the signed-in identity from the token and shows their answers.
"""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx
from sqlmodel import Session

from models.tenancy import Role
from veles.config import get_settings
from veles.services.auth import Identity
from veles.services.permissions import Permission
from veles.services.users import UserView, change_role, deactivate_user, invite_user, list_users
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


class UsersState(SessionState):
    """The tenant's users and the outcome of the last action (a temporary password shows once)."""

    users: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    def _run(self, action: Callable[[Session, Identity], object], notice: str = "") -> None:
        """Run `action(db, identity)` as a MANAGE_USERS action, then list the users again."""
        try:
            with self.tenant_db(Permission.MANAGE_USERS) as (db, identity):
                result = action(db, identity)
                self.users = [_view(u, identity) for u in list_users(db, identity)]
        except Exception as exc:  # shown under the form, never raised out of the handler
            self.error, self.notice = shown(exc), ""
            return
        self.error = ""
        self.notice = notice.format(result=result) if notice else ""

    @rx.event
    def load(self) -> None:
        """Page load."""
        self._run(lambda db, me: None)

    @rx.event
    def invite(self, form: dict[str, str]) -> None:
        """A new user with a role; without a chosen password a temporary one is shown once here."""
        data = {k: v for k, v in fields(form, ("email", "role", "phone")).items() if v.strip()}
        ip = getattr(self.router.session, "client_ip", None)

        def create(db: Session, me: Identity) -> str:
            hours = get_settings().temporary_password_hours
            invited = invite_user(db, me, data, ip=ip, temporary_hours=hours)
            secret = invited.temporary_password
            return (f"{invited.user.email} added" + (f"; temporary password: {secret}" if secret else "")
                    + f". It works for {hours} h and must be replaced at the first sign-in.")

        self._run(create, "{result}")

    @rx.event
    def set_role(self, user_id: str, role: str) -> None:
        """Give a user another role (applies from their next token renewal)."""
        ip = getattr(self.router.session, "client_ip", None)
        self._run(lambda db, me: change_role(db, me, row_id(user_id, "user"), {"role": role}, ip=ip),
                  "Role changed.")

    @rx.event
    def deactivate(self, user_id: str) -> None:
        """Stop a user from signing in; their sign-ins end now."""
        ip = getattr(self.router.session, "client_ip", None)
        self._run(lambda db, me: deactivate_user(db, me, row_id(user_id, "user"), ip=ip), "User deactivated.")
