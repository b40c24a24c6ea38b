"""One account: its figures and open positions, live; "Account not found" for any other login."""

from __future__ import annotations

import reflex as rx

from veles_ui.components.metrics import metric
from veles_ui.components.nav import top_nav
from veles_ui.components.positions_table import positions_table
from veles_ui.state.accounts import AccountDetailState as S


def _figures() -> rx.Component:
    return rx.flex(
        metric("Balance", S.balance),
        metric("Credit", S.credit),
        metric("Equity", S.equity, test_id="account-equity"),
        metric("Margin", S.margin),
        metric("Free margin", S.free_margin),
        metric("Margin level", S.margin_level),
        metric("Floating P/L", S.profit, S.profit_color, test_id="account-profit"),
        metric("Drawdown", S.drawdown),
        wrap="wrap",
        spacing="3",
    )


def _found() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Account ", S.account, size="5", id="account-title"),
            rx.badge(S.margin_state, color_scheme=S.state_color),
            rx.text(S.group, " · ", S.currency, color_scheme="gray", size="2"),
            align="center",
            spacing="3",
        ),
        _figures(),
        rx.heading("Open positions", size="4"),
        positions_table(S.positions),
        spacing="4",
        width="100%",
    )


def _missing() -> rx.Component:
    return rx.callout(
        "Account not found: this login is not one of your accounts.",
        color_scheme="amber",
        icon="circle_alert",
        id="account-not-found",
    )


def account_page() -> rx.Component:
    """The tab's AccountDetailState stream re-reads the account whenever it changes in the book."""
    return rx.vstack(
        top_nav(),
        rx.link("← All accounts", href="/accounts", size="2"),
        rx.match(
            S.status,
            ("found", _found()),
            ("missing", _missing()),
            rx.text("Loading…", color_scheme="gray", id="account-loading"),
        ),
        padding="1.5em",
        spacing="4",
        width="100%",
    )
