"""The live dashboard: the book's headline figures and its accounts, updating several times a second."""

from __future__ import annotations

import reflex as rx

from veles_ui.components.accounts_table import accounts_table
from veles_ui.components.metrics import metric
from veles_ui.components.nav import top_nav
from veles_ui.state.dashboard import DashboardState


def dashboard_page() -> rx.Component:
    """Totals first, then the accounts; numbers come from the tab's DashboardState stream."""
    return rx.vstack(
        top_nav(),
        rx.flex(
            metric("Equity (USD)", DashboardState.equity, test_id="total-equity"),
            metric(
                "Floating P/L", DashboardState.profit, DashboardState.profit_color, test_id="total-profit"
            ),
            metric("Margin level", DashboardState.margin_level, test_id="margin-level"),
            metric("Margin", DashboardState.margin),
            metric("Free margin", DashboardState.free_margin),
            metric("Margin call / stop-out",
                   DashboardState.margin_call.to_string() + " / " + DashboardState.stop_out.to_string()),
            wrap="wrap",
            spacing="3",
        ),
        rx.hstack(
            rx.text(DashboardState.accounts, " accounts", size="2", color_scheme="gray"),
            rx.text("version ", DashboardState.version, size="2", color_scheme="gray", id="book-version"),
            rx.text("gateway → screen ", DashboardState.latency_ms, size="2", color_scheme="gray"),
            spacing="4",
        ),
        accounts_table(DashboardState.rows),
        padding="1.5em",
        spacing="4",
        width="100%",
    )
