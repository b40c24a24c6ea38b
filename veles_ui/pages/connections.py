"""MT5 connections: the add form, then every connection with its status and last error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.state.connections import ConnectionsState as S

_test = cast(Callable[[Any], EventSpec], S.test)
_remove = cast(Callable[[Any], EventSpec], S.remove)


def _row(conn: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(conn["server"]),
        rx.table.cell(conn["login"]),
        rx.table.cell(rx.badge(conn["status"], color_scheme=conn["status_color"]), class_name="conn-status"),
        rx.table.cell(conn["last_error"], class_name="conn-error"),
        rx.table.cell(conn["last_connected"]),
        rx.table.cell(rx.hstack(
            rx.button("Test", size="1", variant="soft", on_click=_test(conn["id"]), class_name="conn-test"),
            rx.button("Remove", size="1", variant="soft", color_scheme="tomato", on_click=_remove(conn["id"]),
                      class_name="conn-remove"),
            spacing="2",
        )),
    )


def _form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="server", placeholder="Server host:port (or sim://NAME)", id="conn-server",
                     required=True, width="20em", auto_focus=True),
            rx.input(name="login", placeholder="Manager login", id="conn-login", required=True, width="10em",
                     input_mode="numeric"),
            rx.input(name="password", placeholder="Password", type="password", id="conn-password",
                     required=True, width="12em"),
            rx.button("Add and test", type="submit", id="conn-add"),
            spacing="2",
            align="center",
        ),
        on_submit=S.add,
        reset_on_submit=False,
    )


def connections_page() -> rx.Component:
    """A new connection is kept only once the server accepted it; errors say what the server said."""
    return rx.vstack(
        top_nav(),
        rx.heading("MT5 connections", size="5"),
        _form(),
        error_callout(S.error, "conn-error"),
        notice_callout(S.notice, "conn-notice"),
        record_table(
            ("Server", "Login", "Status", "Last error", "Last connected (UTC)", ""),
            S.connections, _row, "connections-table",
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
