"""Users and roles (tenant admins): invite, pending invitations (resend, revoke), change role, deactivate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.state.users import TENANT_ROLES
from veles_ui.state.users import UsersState as S

_deactivate = cast(Callable[[Any], EventSpec], S.deactivate)
_set_role = cast(Callable[[Any, Any], EventSpec], S.set_role)
_resend = cast(Callable[[Any], EventSpec], S.resend)
_revoke = cast(Callable[[Any], EventSpec], S.revoke)


def _row(user: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(user["email"], class_name="user-email"),
        rx.table.cell(rx.cond(user["managed"] == "yes",
                              rx.select(TENANT_ROLES, value=user["role"], size="1",
                                        on_change=lambda role: _set_role(user["id"], role)),
                              rx.text(user["role"], size="2"))),
        rx.table.cell(user["phone"]),
        rx.table.cell(user["sms"]),
        rx.table.cell(user["active"], class_name="user-active"),
        rx.table.cell(user["created"]),
        rx.table.cell(rx.cond((user["active"] == "active") & (user["managed"] == "yes"),
                              rx.button("Deactivate", size="1", variant="soft", color_scheme="tomato",
                                        on_click=_deactivate(user["id"]), class_name="user-deactivate"))),
    )


def _invitation_row(invitation: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(invitation["email"], class_name="invitation-email"),
        rx.table.cell(invitation["role"]),
        rx.table.cell(invitation["status"], class_name="invitation-status"),
        rx.table.cell(invitation["by"]),
        rx.table.cell(invitation["sent"]),
        rx.table.cell(invitation["expires"]),
        rx.table.cell(rx.hstack(
            rx.button("Resend", size="1", variant="soft", on_click=_resend(invitation["id"]),
                      class_name="invitation-resend"),
            rx.button("Revoke", size="1", variant="soft", color_scheme="tomato",
                      on_click=_revoke(invitation["id"]), class_name="invitation-revoke"),
            spacing="2",
        )),
    )


def users_page() -> rx.Component:
    """A tenant admin's page; the services refuse every other role."""
    return rx.vstack(
        top_nav(),
        rx.heading("Users and roles", size="5"),
        rx.form(
            rx.hstack(
                rx.input(name="email", type="email", placeholder="Email", required=True, id="invite-email",
                         width="18em"),
                rx.select(TENANT_ROLES, name="role", default_value="viewer", id="invite-role"),
                rx.button("Invite", type="submit", id="invite-submit"),
                spacing="2",
                align="center",
            ),
            on_submit=S.invite,
            reset_on_submit=True,
        ),
        error_callout(S.error, "users-error"),
        notice_callout(S.notice, "users-notice"),
        rx.text("The invited person gets an e-mail with a link to choose their password; they join "
                "when they do. Pending invitations:", size="2", color_scheme="gray"),
        record_table(
            ("Email", "Role", "Status", "Invited by", "Sent (UTC)", "Expires (UTC)", ""),
            S.invitations, _invitation_row, "invitations-table",
        ),
        rx.heading("Users", size="4"),
        record_table(
            ("Email", "Role", "Phone", "Sign-in", "Status", "Created (UTC)", ""),
            S.users, _row, "users-table",
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
