"""Alert rules: everyone sees them; roles with the edit_rules permission add, switch and remove."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from models.alerts import AlertKind, Severity
from models.billing import BillingStatus
from veles.services.alerts import KIND_UNITS, OFFERED_KINDS
from veles.services.permissions import Permission
from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.alerts import RulesState as S
from veles_ui.state.billing_banner import BillingBanner

_toggle = cast(Callable[[Any, Any], EventSpec], S.toggle)
_remove = cast(Callable[[Any], EventSpec], S.remove)
_CAN_EDIT = S.permissions.contains(Permission.EDIT_RULES.value)
# Billing holds the tenant read-only: the banner above says so and what to do, once; a form (or a
# "your role cannot" callout) under it would be a second read-only notice, and its changes refused.
_BILLING_READ_ONLY = BillingBanner.billing_state == BillingStatus.READ_ONLY.value
_MAY_CHANGE = _CAN_EDIT & ~_BILLING_READ_ONLY


def _row(rule: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["kind"]),
        rx.table.cell(rule["threshold"], style=NUMERIC),
        rx.table.cell(rx.badge(rule["severity"], color_scheme=rule["severity_color"])),
        rx.table.cell(rule["symbol"]),
        rx.table.cell(rule["label"], class_name="rule-label"),
        rx.table.cell(rule["enabled"], class_name="rule-enabled"),
        rx.table.cell(rule["status"], class_name="rule-status"),
        rx.table.cell(rx.cond(_MAY_CHANGE, rx.hstack(
            rx.button(rx.cond(rule["enabled"] == "yes", "Disable", "Enable"), size="1", variant="soft",
                      on_click=_toggle(rule["id"], rule["enabled"] != "yes"), class_name="rule-toggle"),
            rx.button("Remove", size="1", variant="soft", color_scheme="tomato",
                      on_click=_remove(rule["id"]), class_name="rule-remove"),
            spacing="2",
        ))),
    )


def _built_in_row(rule: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["watches"]),
        rx.table.cell(rx.badge(rule["severity"], color_scheme=rule["severity_color"])),
        rx.table.cell(rule["status"], class_name="built-in-status"),
    )


def _form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.select([k.value for k in OFFERED_KINDS], name="kind",
                      default_value=AlertKind.MARGIN_LEVEL.value, id="rule-kind"),
            rx.input(name="threshold", placeholder="Threshold", id="rule-threshold", required=True,
                     width="9em"),
            rx.select([s.value for s in Severity], name="severity", default_value=Severity.WARNING.value,
                      id="rule-severity"),
            rx.input(name="symbol", placeholder="Symbol (blank: all)", id="rule-symbol", width="12em"),
            rx.input(name="label", placeholder="Flow label (toxic_flow; blank: any)", id="rule-label",
                     width="16em"),
            rx.button("Add rule", type="submit", id="rule-add"),
            spacing="2",
            align="center",
        ),
        rx.text("Thresholds: " + "; ".join(f"{k.value}: {unit}" for k, unit in KIND_UNITS.items()) + ".",
                size="1", color_scheme="gray"),
        on_submit=S.add,
        reset_on_submit=False,
        id="rule-form",
    )


def rules_page() -> rx.Component:
    """Read-only for viewers, and for everyone while billing holds the tenant read-only (then only
    the billing banner says so): no form, no buttons (and the handlers refuse them anyway)."""
    return rx.vstack(
        top_nav(),
        rx.heading("Alert rules", size="5"),
        rx.cond(_BILLING_READ_ONLY, rx.fragment(), rx.cond(
            _CAN_EDIT, _form(),
            rx.callout("Your role can view the rules but not change them.", icon="info",
                       id="rules-read-only"))),
        error_callout(S.error, "rules-error"),
        notice_callout(S.notice, "rules-notice"),
        record_table(
            ("Watches", "Threshold", "Severity", "Symbol", "Label", "Enabled", "Engine", ""),
            S.rules, _row, "rules-table",
        ),
        rx.cond(S.rules.length() == 0, rx.text("No rules of your own yet.", color_scheme="gray")),
        rx.heading("Built-in rules", size="4"),
        rx.text("The engine runs these without being told; your rules add to them.", color_scheme="gray"),
        record_table(("Watches", "Severity", "Runs"), S.built_ins, _built_in_row, "built-in-rules-table"),
        padding="1em",
        spacing="3",
        width="100%",
    )
