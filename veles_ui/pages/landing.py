"""The public front page: what Veles does, the three plans and their limits, and the way in."""

from __future__ import annotations

import reflex as rx

from veles.plans import PLANS, PlanLimits


def _limit(value: int | None, unit: str) -> str:
    return f"Unlimited {unit}" if value is None else f"{value:,} {unit}"


def _plan_card(key: str, plan: PlanLimits) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(plan.name, size="5"),
            rx.text(f"${plan.monthly_usd:,} / month", size="4", weight="bold"),
            rx.text(_limit(plan.max_servers, "MT5 server(s)")),
            rx.text(_limit(plan.max_accounts, "trading accounts")),
            rx.link(rx.button(f"Start with {plan.name}", width="100%"), href=f"/signup?plan={key}",
                    width="100%", id=f"plan-{key}"),
            spacing="2",
            align="start",
        ),
        width="16em",
    )


_FEATURES = (
    ("Live book", "Equity, margin, floating P/L and net exposure per symbol, A-book and B-book, "
                  "refreshed several times a second."),
    ("Every account", "Margin level, drawdown and a risk score for each MT5 account, sortable and "
                      "filterable, with its positions and history."),
    ("Alerts", "Margin call, stop-out, drawdown and exposure rules with acknowledgement, by screen, "
               "e-mail and SMS."),
)


def landing_page() -> rx.Component:
    """Readable without signing in; the call to action is the sign-up form."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Veles", size="7"),
            rx.spacer(),
            rx.color_mode.button(id="theme-toggle"),
            rx.link(rx.button("Sign in", variant="soft"), href="/login", id="landing-sign-in"),
            rx.link(rx.button("Sign up"), href="/signup", id="landing-sign-up"),
            width="100%",
            align="center",
        ),
        rx.heading("Real-time risk management for MetaTrader 5 brokers", size="8"),
        rx.text("Veles watches every trading account of your MT5 servers and merges them into your "
                "book, live: know your exposure and who is near stop-out before the market moves again.",
                size="4", color_scheme="gray", max_width="48em"),
        rx.flex(
            *(rx.card(rx.heading(title, size="4"), rx.text(body, size="2"), width="20em")
              for title, body in _FEATURES),
            wrap="wrap",
            spacing="4",
        ),
        rx.heading("Plans", size="6"),
        rx.flex(*(_plan_card(key, plan) for key, plan in PLANS.items()), wrap="wrap", spacing="4",
                id="plans"),
        padding="2em",
        spacing="5",
        max_width="72em",
        margin_x="auto",
    )
