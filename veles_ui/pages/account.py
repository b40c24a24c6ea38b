"""One account: its figures, equity and margin-level history, open positions and recent deals,
live; "Account not found" for any other login."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import reflex as rx
from reflex.event import EventSpec

from veles_ui.components.deals_table import deals_table
from veles_ui.components.desk import movements_table
from veles_ui.components.freshness import freshness
from veles_ui.components.history_chart import history_chart
from veles_ui.components.metrics import metric
from veles_ui.components.nav import top_nav
from veles_ui.components.positions_table import positions_table
from veles_ui.state.accounts import HISTORY_WINDOWS
from veles_ui.state.accounts import AccountDetailState as S

_choose_window = cast(Callable[[str | list[str]], EventSpec], S.set_history_window)


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
            freshness(S.stamp),
            align="center",
            spacing="3",
        ),
        _figures(),
        rx.heading("Equity and margin level (UTC)", size="4"),
        history_chart(S.history, S.history_window, HISTORY_WINDOWS, _choose_window),
        rx.heading("Open positions", size="4"),
        positions_table(S.positions),
        rx.hstack(
            rx.heading("Deposits and withdrawals", size="4"),
            rx.text("in ", S.currency, ": in ", rx.el.span(S.deposits, id="account-deposits"), " · out ",
                    rx.el.span(S.withdrawals, id="account-withdrawals"), size="2", color_scheme="gray"),
            align="baseline",
            spacing="3",
        ),
        rx.cond(
            S.movements.length() > 0,
            movements_table(S.movements),
            rx.text("No deposit or withdrawal in the deal log.", color_scheme="gray", size="2",
                    id="movements-empty"),
        ),
        rx.heading("Recent deals", size="4"),
        rx.cond(
            S.deals.length() > 0,
            deals_table(S.deals),
            rx.text("No deals since the engine began following this account.", color_scheme="gray",
                    size="2", id="deals-empty"),
        ),
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
