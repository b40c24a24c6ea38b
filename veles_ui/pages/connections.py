"""MT5 connections: the add form, then every connection with its status and last error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles.plans import UPGRADE_PATH
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
        rx.table.cell(rx.hstack(
            rx.text(conn["last_error"]),
            rx.cond(conn["upgrade"] != "", rx.link("Upgrade your plan", href=conn["upgrade"], weight="bold",
                                                 class_name="conn-upgrade")),
            spacing="2", wrap="wrap",
        ), class_name="conn-error"),
        rx.table.cell(conn["last_connected"]),
        rx.table.cell(rx.badge(conn["reconciliation"], color_scheme=conn["reconciliation_color"],
                               white_space="normal"), class_name="conn-reconciliation"),
        rx.table.cell(rx.hstack(
            rx.button("Test", size="1", variant="soft", on_click=_test(conn["id"]), class_name="conn-test"),
            rx.button("Remove", size="1", variant="soft", color_scheme="tomato", on_click=_remove(conn["id"]),
                      class_name="conn-remove"),
            spacing="2",
        )),
    )


def _drift_row(drift: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(*(rx.table.cell(drift[key]) for key in
                          ("server", "login", "figure", "veles", "mt5", "drift")))


def _form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(name="server", placeholder="Server https://host:port (or sim://NAME)", id="conn-server",
                     required=True, width="24em", auto_focus=True),
            rx.input(name="login", placeholder="Manager login", id="conn-login", required=True, width="10em",
                     input_mode="numeric"),
            rx.input(name="password", placeholder="Manager password", type="password", id="conn-password",
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
        rx.cond(S.upgrade, rx.link("Upgrade your plan for more servers and accounts", href=UPGRADE_PATH,
                                   weight="bold", id="conn-upgrade")),
        notice_callout(S.notice, "conn-notice"),
        record_table(
            ("Server", "Login", "Status", "Last error", "Last connected (UTC)",
             "Figures against the server's own", ""),
            S.connections, _row, "connections-table",
        ),
        rx.cond(
            S.drifts,
            rx.vstack(
                rx.heading("Accounts drifting from the server's own figures", size="3"),
                rx.text("Veles' figure and the MT5 server's (user/account/get_batch) differ by more than one "
                        "minor unit at two checks in a row.", size="2", color_scheme="gray"),
                record_table(("Connection", "Login", "Figure", "Veles", "MT5 server", "Difference"), S.drifts,
                             _drift_row, "drift-table"),
                width="100%",
            ),
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
