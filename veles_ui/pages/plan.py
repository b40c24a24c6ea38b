"""The tenant's plan and usage against its limits, with the other plans for comparison."""

from __future__ import annotations

import reflex as rx

from veles.plans import PLANS
from veles_ui.components.feedback import error_callout
from veles_ui.components.nav import top_nav
from veles_ui.state.plan import PlanState as S


def _usage(label: str, text: rx.Var[str], pct: rx.Var[int], test_id: str) -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.text(label, weight="medium"), rx.spacer(), rx.text(text, id=test_id), width="100%"),
        rx.progress(value=pct, width="100%"),
        width="100%",
        spacing="1",
    )


def plan_page() -> rx.Component:
    """Usage bars fill towards the limit; over a limit, the page says what happens."""
    return rx.vstack(
        top_nav(),
        rx.heading("Your plan: ", S.plan, size="5", id="plan-name"),
        error_callout(S.error, "plan-error"),
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
                "Plan", "USD / month", "MT5 servers", "Accounts")))),
            rx.table.body(*(
                rx.table.row(
                    rx.table.cell(p.name),
                    rx.table.cell(f"{p.monthly_usd:,}"),
                    rx.table.cell("unlimited" if p.max_servers is None else f"{p.max_servers:,}"),
                    rx.table.cell("unlimited" if p.max_accounts is None else f"{p.max_accounts:,}"),
                ) for p in PLANS.values()
            )),
            size="1",
            variant="surface",
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
