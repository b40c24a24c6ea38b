"""Forgotten password: /forgot asks for a reset link by e-mail, /reset?token= chooses a new password.

Both are plain forms (Tab moves field to field to the button, Enter submits); errors show next to
their field and what was typed stays.
"""

from __future__ import annotations

import reflex as rx

from veles_ui.components.password_link import link_refused, password_field, password_set
from veles_ui.state.reset import ForgotState as F
from veles_ui.state.reset import ResetState as R


def _back_to_sign_in() -> rx.Component:
    return rx.text(rx.link("Back to sign in", href="/login", id="back-to-sign-in"), size="2")


def forgot_page() -> rx.Component:
    """One answer for every address (the page never tells whether an account exists)."""
    return rx.center(
        rx.card(
            rx.form(
                rx.vstack(
                    rx.heading("Forgot your password?", size="6"),
                    rx.text("Enter the email you sign in with; we will send you a link to choose a new "
                            "password.", color_scheme="gray", size="2"),
                    rx.text("Email", as_="label", html_for="forgot-email", size="2", weight="medium"),
                    rx.input(name="email", id="forgot-email", type="email", required=True, width="100%",
                             auto_focus=True, auto_complete="username"),
                    rx.cond(F.forgot_error != "",
                            rx.text(F.forgot_error, color_scheme="tomato", size="2", id="forgot-error-email",
                                    role="alert")),
                    rx.cond(F.forgot_sent != "",
                            rx.callout(F.forgot_sent, icon="mail", color_scheme="grass", id="forgot-sent",
                                       width="100%", role="status")),
                    rx.button("Send reset link", type="submit", width="100%", id="forgot-submit"),
                    _back_to_sign_in(),
                    spacing="3",
                    width="20em",
                ),
                on_submit=F.request_link,
                reset_on_submit=False,
            ),
        ),
        height="100vh",
    )


def _password_field(label: str, name: str, **props: object) -> rx.Component:
    return password_field("reset", label, name, R.reset_error_field, R.reset_error, **props)


def _new_password_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Choose a new password", size="6"),
            _password_field("New password (10 characters or more)", "password", auto_focus=True),
            _password_field("New password again", "confirm"),
            rx.button("Set password", type="submit", width="100%", id="reset-submit"),
            spacing="3",
            width="20em",
        ),
        on_submit=R.set_password,
        reset_on_submit=False,
    )


def _done() -> rx.Component:
    return password_set("reset", "Your password has been changed and your other sessions were signed out.")


def _link_refused() -> rx.Component:
    return link_refused("reset", "This link cannot be used", R.reset_link_error,
                        rx.link("Ask for a new link", href="/forgot", id="reset-ask-again"))


def reset_page() -> rx.Component:
    """The link is checked when the page opens, so a dead link is said before a password is typed."""
    return rx.center(
        rx.card(rx.cond(R.reset_done, _done(),
                        rx.cond(R.reset_link_error != "", _link_refused(), _new_password_form()))),
        height="100vh",
    )
