"""The alerts feed: newest first, filtered by state and severity, acknowledged and resolved here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles.services.permissions import Permission
from veles_ui.components.feedback import error_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.alerts import ALL
from veles_ui.state.alerts import AlertsState as S

# mypy reads `@rx.event` methods as the decorator's class; at runtime these take the alert id.
_ack = cast(Callable[[Any], EventSpec], S.acknowledge)
_resolve = cast(Callable[[Any], EventSpec], S.resolve)
_CAN_ACK = S.permissions.contains(Permission.ACK_ALERTS.value)


def _actions(alert: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.cond(
        _CAN_ACK,
        rx.hstack(
            rx.cond(alert["state"] == "open",
                    rx.button("Acknowledge", size="1", variant="soft", on_click=_ack(alert["id"]),
                              class_name="ack")),
            rx.cond(alert["state"] != "resolved",
                    rx.button("Resolve", size="1", variant="soft", color_scheme="grass",
                              on_click=_resolve(alert["id"]), class_name="resolve")),
            spacing="2",
        ),
    )


def _row(alert: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(alert["created"], white_space="nowrap"),
        rx.table.cell(rx.badge(alert["severity"], color_scheme=alert["severity_color"])),
        rx.table.cell(alert["subject"]),
        rx.table.cell(alert["value"], style=NUMERIC),
        rx.table.cell(rx.hstack(
            rx.text(alert["message"]),
            rx.cond(alert["repeats"] != "", rx.badge(alert["repeats"], class_name="repeats")),
            spacing="2", align="center",
        )),
        rx.table.cell(alert["state"], class_name="alert-state"),
        rx.table.cell(_actions(alert)),
        id="alert-" + alert["id"],
    )


def _filter(label: str, value: rx.Var[str], choices: list[str], on_change: object, test_id: str
            ) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2"),
        rx.select(choices, value=value, on_change=on_change, id=test_id, size="2"),
        align="center",
        spacing="2",
    )


def alerts_page() -> rx.Component:
    """Refreshed by the tab's stream; acknowledge and resolve for roles that may."""
    return rx.vstack(
        top_nav(),
        rx.heading("Alerts", size="5"),
        rx.hstack(
            _filter("State", S.state_filter, ["open", "acknowledged", "resolved", ALL], S.filter_state,
                    "filter-state"),
            _filter("Severity", S.severity_filter, ["critical", "warning", "info", ALL], S.filter_severity,
                    "filter-severity"),
            spacing="5",
        ),
        error_callout(S.error, "alerts-error"),
        record_table(
            ("Raised (UTC)", "Severity", "Subject", "Value", "Message", "State", ""),
            S.alerts, _row, "alerts-table",
        ),
        rx.cond(S.alerts.length() == 0, rx.text("No alerts match.", color_scheme="gray", id="alerts-empty")),
        padding="1em",
        spacing="3",
        width="100%",
    )
