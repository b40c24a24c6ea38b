"""The live overview: the book's headline figures, its net exposure by symbol and its accounts,
updating several times a second."""

from __future__ import annotations

import reflex as rx

from veles_ui.components.accounts_table import accounts_table
from veles_ui.components.desk import closest_panel, connection_badges, today_panel
from veles_ui.components.exposure import exposure_chart, exposure_table
from veles_ui.components.freshness import freshness
from veles_ui.components.margin_sound import margin_sound
from veles_ui.components.metrics import metric
from veles_ui.components.nav import top_nav
from veles_ui.components.toxic_flow import toxic_flow_panel
from veles_ui.state.dashboard import DashboardState as S


def dashboard_page() -> rx.Component:
    """Totals first, then exposure (chart beside table), then the accounts; all from the tab's stream."""
    return rx.vstack(
        top_nav(),
        rx.flex(
            metric("Equity (USD)", S.equity, test_id="total-equity"),
            metric("Balance", S.balance, test_id="total-balance"),
            metric("Credit", S.credit),
            metric("Floating P/L", S.profit, S.profit_color, test_id="total-profit"),
            metric("Margin", S.margin),
            metric("Free margin", S.free_margin),
            metric("Margin level", S.margin_level, test_id="margin-level"),
            rx.link(metric("Margin call", S.margin_call.to_string(), "amber", test_id="margin-call-count"),
                    href="/accounts?state=margin_call", id="margin-call-link", underline="none"),
            rx.link(metric("Stop-out", S.stop_out.to_string(), "tomato", test_id="stop-out-count"),
                    href="/accounts?state=stop_out", id="stop-out-link", underline="none"),
            wrap="wrap",
            spacing="2",
        ),
        rx.hstack(
            rx.text(S.accounts, " accounts", size="2", color_scheme="gray"),
            rx.text("version ", S.version, size="2", color_scheme="gray", id="book-version"),
            rx.text("gateway → screen ", S.latency_ms, size="2", color_scheme="gray", id="latency"),
            rx.el.span(S.stamp, id="book-stamp", hidden=True),
            rx.el.span(S.today_version, id="today-version", hidden=True),
            freshness(S.stamp),
            connection_badges(S.connections),
            margin_sound(S.alarm_seq, S.alarm_logins),
            spacing="4",
            align="center",
            wrap="wrap",
        ),
        rx.grid(
            closest_panel(S.closest),
            today_panel(S.today),
            columns="1",
            spacing="3",
            width="100%",
        ),
        rx.hstack(
            rx.heading("Net exposure by symbol (USD)", size="4"),
            rx.link("Drill down by account, currency, group…", href="/exposure", id="exposure-drill-link",
                    size="2"),
            align="baseline",
            spacing="4",
        ),
        rx.grid(
            rx.card(exposure_chart(S.exposure_chart, S.exposure_height)),
            exposure_table(S.exposure),
            columns="2",
            spacing="3",
            width="100%",
        ),
        toxic_flow_panel(),
        rx.heading("Accounts", size="4"),
        accounts_table(S.rows),
        padding="1em",
        spacing="3",
        width="100%",
    )
