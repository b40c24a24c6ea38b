"""Sign-in page."""

from __future__ import annotations

import reflex as rx

from veles_ui.state.session import SessionState


def login_page() -> rx.Component:
    """Email and password; errors are shown under the form, the password is never echoed."""
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Sign in to Veles", size="6"),
                    rx.text("Real-time risk for your MetaTrader 5 book.", color_scheme="gray"),
                    rx.input(placeholder="Email", name="email", type="email", required=True,
                             id="email", width="100%", auto_focus=True),
                    rx.input(placeholder="Password", name="password", type="password", required=True,
                             id="password", width="100%"),
                    rx.cond(
                        SessionState.login_error != "",
                        rx.callout(SessionState.login_error, color_scheme="tomato", icon="triangle_alert",
                                   id="login-error", width="100%"),
                    ),
                    rx.button("Sign in", type="submit", width="100%", id="sign-in"),
                    spacing="3",
                    width="20em",
                ),
                on_submit=SessionState.login,
                reset_on_submit=False,
            ),
        ),
        height="100vh",
    )
