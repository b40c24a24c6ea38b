"""The portal's top bar: where you can go, who you are, and the way out."""

from __future__ import annotations

import reflex as rx

from veles_ui.state.session import SessionState


def _link(label: str, href: str, test_id: str) -> rx.Component:
    return rx.link(label, href=href, id=test_id, size="3", weight="medium")


def top_nav() -> rx.Component:
    """Dashboard · Accounts · Sign out, on every signed-in page."""
    return rx.hstack(
        rx.heading("Veles", size="6"),
        _link("Dashboard", "/dashboard", "nav-dashboard"),
        rx.text("·", color_scheme="gray"),
        _link("Accounts", "/accounts", "nav-accounts"),
        rx.spacer(),
        rx.text(SessionState.email, color_scheme="gray", size="2"),
        rx.color_mode.button(),
        rx.button("Sign out", variant="soft", on_click=SessionState.logout, id="sign-out"),
        align="center",
        spacing="4",
        width="100%",
    )
