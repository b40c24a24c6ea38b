"""Sign-in page: email and password (and a new password when the one typed was temporary), then
the SMS code for users who sign in with one; a link to the password reset (/forgot)."""

from __future__ import annotations

import reflex as rx

from veles_ui.state.session import SessionState as S


def _error() -> rx.Component:
    return rx.cond(
        S.login_error != "",
        rx.callout(S.login_error, color_scheme="tomato", icon="triangle_alert", id="login-error",
                   width="100%", role="alert"),
    )


def _password_step() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Sign in to Veles", size="6"),
            rx.text("Real-time risk for your MetaTrader 5 book.", color_scheme="gray"),
            rx.input(placeholder="Email", name="email", type="email", required=True, id="email", width="100%",
                     auto_focus=True, auto_complete="username"),
            rx.input(placeholder="Password", name="password", type="password", required=True, id="password",
                     width="100%", auto_complete="current-password"),
            rx.cond(
                S.password_change,
                rx.vstack(
                    rx.text("New password (10 characters or more, not easy to guess)", as_="label",
                            html_for="new-password", size="2", weight="medium"),
                    rx.input(name="new_password", type="password", required=True, id="new-password",
                             width="100%", auto_complete="new-password", min_length=10),
                    spacing="1",
                    width="100%",
                ),
            ),
            _error(),
            rx.button("Sign in", type="submit", width="100%", id="sign-in"),
            rx.text(rx.link("Forgot password?", href="/forgot", id="forgot-password"), size="2"),
            rx.text("New broker? ", rx.link("Create an account", href="/signup"), size="2"),
            spacing="3",
            width="20em",
        ),
        on_submit=S.login,
        reset_on_submit=False,
    )


def _code_step() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Enter your sign-in code", size="6"),
            rx.text("We sent a code by SMS to your phone ending ", S.phone_hint, ".", color_scheme="gray"),
            rx.input(placeholder="Code", name="code", required=True, id="code", width="100%", auto_focus=True,
                     auto_complete="one-time-code", input_mode="numeric"),
            _error(),
            rx.button("Verify", type="submit", width="100%", id="verify-code"),
            rx.link("Start again", on_click=S.restart_login, size="2", id="restart-login", href="#"),
            spacing="3",
            width="20em",
        ),
        on_submit=S.verify,
        reset_on_submit=True,
    )


def login_page() -> rx.Component:
    """Errors show under the form; the password is never echoed back."""
    return rx.center(
        rx.card(rx.cond(S.challenge != "", _code_step(), _password_step())),
        height="100vh",
    )
