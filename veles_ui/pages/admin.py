"""Platform admin: tenants (plan, status, usage against limits, suspend/resume), engine health
per tenant, and the audit log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.admin import AdminState as S

_suspend = cast(Callable[[Any], EventSpec], S.suspend)
_resume = cast(Callable[[Any], EventSpec], S.resume)


def _tenant(t: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(t["id"]),
        rx.table.cell(t["name"], class_name="tenant-name"),
        rx.table.cell(t["plan"]),
        rx.table.cell(rx.badge(t["status"], color_scheme=t["status_color"]), class_name="tenant-status"),
        rx.table.cell(t["users"], style=NUMERIC),
        rx.table.cell(rx.text(t["servers"], color_scheme=t["usage_color"]), style=NUMERIC),
        rx.table.cell(rx.text(t["accounts"], color_scheme=t["usage_color"]), style=NUMERIC),
        rx.table.cell(rx.cond(
            t["status"] == "active",
            rx.button("Suspend", size="1", variant="soft", color_scheme="tomato", on_click=_suspend(t["id"]),
                      class_name="tenant-suspend"),
            rx.button("Resume", size="1", variant="soft", color_scheme="grass", on_click=_resume(t["id"]),
                      class_name="tenant-resume"),
        )),
        id="tenant-" + t["id"],
    )


def _health(h: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(h["tenant"]),
        rx.table.cell(h["running"]),
        *(rx.table.cell(h[key], style=NUMERIC) for key in
          ("actors", "connections", "restarts", "merged", "recovering", "lag", "uptime")),
        rx.table.cell(h["failed"]),
        rx.table.cell(h["refused"]),
    )


def _audit(a: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(*(rx.table.cell(a[key]) for key in ("at", "tenant", "actor", "action", "target",
                                                          "details")))


def _mix(m: ObjectVar[dict[str, str]]) -> rx.Component:
    figures = ("tenants", "paying", "trialing", "mrr")
    return rx.table.row(rx.table.cell(m["plan"]), *(rx.table.cell(m[key], style=NUMERIC) for key in figures))


def _behind(b: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(b["id"]), rx.table.cell(b["name"]), rx.table.cell(b["plan"]),
        rx.table.cell(rx.badge(b["status"],
                               color_scheme=rx.cond(b["status"] == "past_due", "amber", "tomato"))),
        rx.table.cell(b["since"]), rx.table.cell(b["monthly"], style=NUMERIC),
        id="behind-" + b["id"],
    )


def revenue_section() -> rx.Component:
    """MRR (subscriptions Stripe bills, at their plan's price), the plan mix and who is behind."""
    return rx.vstack(
        rx.heading("Revenue", size="4"),
        rx.hstack(
            rx.card(rx.vstack(rx.text("MRR", size="1", color_scheme="gray"),
                              rx.text(S.mrr, size="6", weight="bold", id="admin-mrr"), spacing="1")),
            rx.card(rx.vstack(rx.text("Of it, past due", size="1", color_scheme="gray"),
                              rx.text(S.at_risk, size="6", weight="bold", id="admin-at-risk"), spacing="1")),
            spacing="3",
        ),
        record_table(("Plan", "Tenants", "Paying", "Trialing", "MRR"), S.plan_mix, _mix, "admin-plan-mix"),
        rx.heading("Behind on payment", size="3"),
        rx.cond(
            S.behind.length() > 0,
            record_table(("Id", "Broker", "Plan", "Billing", "Since (UTC)", "USD / month"), S.behind, _behind,
                         "admin-behind"),
            rx.text("No tenant is behind on payment.", color_scheme="gray", id="admin-none-behind"),
        ),
        spacing="3",
        width="100%",
    )


def admin_page() -> rx.Component:
    """Everything a platform operator needs on one page, newest audit rows first."""
    return rx.vstack(
        top_nav(),
        rx.heading("Platform admin", size="5"),
        error_callout(S.error, "admin-error"),
        notice_callout(S.notice, "admin-notice"),
        rx.heading("Tenants", size="4"),
        record_table(("Id", "Broker", "Plan", "Status", "Users", "MT5 servers", "Accounts", ""),
                     S.tenants, _tenant, "admin-tenants"),
        revenue_section(),
        rx.heading("Engine health", size="4"),
        record_table(("Tenant", "State", "Actors", "Connections", "Restarts", "Merged batches", "Recovering",
                      "Lag", "Uptime", "Failed", "Refused connections"), S.health, _health, "admin-health"),
        rx.hstack(
            rx.heading("Audit log", size="4"),
            rx.input(placeholder="Action starts with…", value=S.audit_action, on_change=S.filter_audit,
                     debounce_timeout=300, id="audit-filter", width="14em"),
            align="center",
            spacing="4",
        ),
        record_table(("At (UTC)", "Tenant", "Actor", "Action", "Target", "Details"), S.audit, _audit,
                     "admin-audit"),
        padding="1em",
        spacing="3",
        width="100%",
    )
