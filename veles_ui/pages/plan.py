"""The tenant's plan: where it stands with billing (status, trial end, renewal), usage against its
limits, the plans with "Upgrade" / "Change plan" (Stripe Checkout or the Billing Portal), "Manage
billing" and the invoices with their PDFs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles.plans import PLANS, PlanLimits
from veles_ui.components.feedback import error_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.state.plan import PlanState as S

_choose = cast(Callable[[Any], EventSpec], S.choose)
STATUS_COLORS = {"active": "grass", "trialing": "blue", "past_due": "amber", "read_only": "tomato",
                 "suspended": "tomato"}


def _usage(label: str, text: rx.Var[str], pct: rx.Var[int], test_id: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(label, weight="medium"), rx.spacer(), rx.text(text, id=test_id), width="100%"),
        rx.progress(value=pct, width="100%"),
        width="100%",
        spacing="1",
    )


def _plan_row(key: str, plan: PlanLimits) -> rx.Component:
    """One plan with the way to it: nothing for the plan paid for now, else Upgrade (no
    subscription yet: Checkout) or Change plan (the Billing Portal)."""
    action = rx.cond(
        (S.plan_key == key) & S.subscribed,
        rx.badge("Current plan", color_scheme="grass"),
        rx.button(rx.cond(S.opening == key, "Opening Stripe…",
                          rx.cond(S.subscribed, "Change plan", "Upgrade")),
                  size="1", on_click=_choose(key), loading=S.opening == key, disabled=S.opening != "",
                  id=f"choose-{key}"),
    )
    return rx.table.row(
        rx.table.cell(plan.name),
        rx.table.cell(f"{plan.monthly_usd:,}"),
        rx.table.cell("unlimited" if plan.max_servers is None else f"{plan.max_servers:,}"),
        rx.table.cell("unlimited" if plan.max_accounts is None else f"{plan.max_accounts:,}"),
        rx.table.cell(f"{plan.history_days:,} days"),
        rx.table.cell(action),
        id=f"plan-row-{key}",
    )


def _invoice(i: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(i["date"]),
        rx.table.cell(i["number"]),
        rx.table.cell(i["status"]),
        rx.table.cell(i["amount"], style={"text-align": "right", "font-variant-numeric": "tabular-nums"}),
        rx.table.cell(rx.cond(i["pdf"] != "", rx.link("PDF", href=i["pdf"], is_external=True,
                                                      class_name="invoice-pdf"), "—")),
        class_name="invoice-row",
    )


def plan_page() -> rx.Component:
    """Usage bars fill towards the limit; over a limit, the page says what happens."""
    return rx.vstack(
        top_nav(),
        rx.hstack(
            rx.heading("Your plan: ", S.plan, size="5", id="plan-name"),
            rx.badge(S.billing_status, id="plan-billing-status",
                     color_scheme=rx.match(S.billing_status, *STATUS_COLORS.items(), "gray")),
            rx.cond(S.trial_ends != "", rx.text("Trial ends ", S.trial_ends, id="plan-trial-ends")),
            rx.cond(S.renews != "", rx.text("Renews ", S.renews, color_scheme="gray", id="plan-renews")),
            rx.spacer(),
            rx.button(rx.cond(S.opening == "portal", "Opening Stripe…", "Manage billing"), variant="soft",
                      on_click=S.manage, loading=S.opening == "portal", disabled=S.opening != "",
                      id="manage-billing"),
            align="center",
            spacing="3",
            width="100%",
        ),
        error_callout(S.error, "plan-error"),
        error_callout(S.billing_error, "billing-error"),
        rx.card(
            rx.vstack(
                _usage("MT5 servers", S.servers, S.servers_pct, "plan-servers"),
                _usage("Trading accounts", S.accounts, S.accounts_pct, "plan-accounts"),
                spacing="4",
                width="100%",
            ),
            width="32em",
        ),
        rx.cond(S.over_limit, rx.callout(
            "You are over a limit of your plan: connections that would exceed it are refused until you "
            "upgrade.", color_scheme="amber", icon="circle_alert")),
        rx.heading("Plans", size="4"),
        rx.table.root(
            rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in (
                "Plan", "USD / month", "MT5 servers", "Accounts", "History kept", "")))),
            rx.table.body(*(_plan_row(key, plan) for key, plan in PLANS.items())),
            size="1",
            variant="surface",
            id="plans",
        ),
        rx.heading("Invoices", size="4"),
        error_callout(S.invoices_error, "invoices-error"),
        rx.cond(
            S.invoices.length() > 0,
            record_table(("Date", "Number", "Status", "Amount", "PDF"), S.invoices, _invoice, "invoices"),
            rx.text("No invoices yet.", color_scheme="gray", id="no-invoices"),
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
