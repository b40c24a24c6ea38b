"""Sign-up: broker name, the first admin's email and password, and a plan to look at (every account
starts as a Starter trial); then "check your e-mail", and /verify-email for the link."""

from __future__ import annotations

import reflex as rx

from veles.plans import PLANS
from veles_ui.state.signup import SignupState as S
from veles_ui.state.signup import VerifyEmailState as V


def _field_error(field: str) -> rx.Component:
    return rx.cond(
        S.error_field == field,
        rx.text(S.error, color_scheme="tomato", size="2", id=f"signup-error-{field}", role="alert"),
    )


def _field(label: str, name: str, **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=f"signup-{name}", size="2", weight="medium"),
        rx.input(name=name, id=f"signup-{name}", width="100%", **props),
        _field_error(name),
        spacing="1",
        width="100%",
    )


def _sent() -> rx.Component:
    return rx.vstack(
        rx.heading("Check your e-mail", size="6"),
        rx.text(S.signup_sent, id="signup-sent", role="status"),
        rx.text("Already confirmed? ", rx.link("Sign in", href="/login"), size="2"),
        spacing="3",
        width="22em",
    )


def signup_page() -> rx.Component:
    """Everything is checked before anything is created; a refusal keeps what was typed."""
    return rx.center(
        rx.card(rx.cond(S.signup_sent != "", _sent(), _form())),
        height="100vh",
    )


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Create your Veles account", size="6"),
            rx.text("You become the administrator of your broker's portal.", color_scheme="gray"),
            _field("Broker name", "broker", required=True, auto_focus=True, max_length=120),
            _field("Work email", "email", type="email", required=True),
            _field("Password (10 characters or more, not easy to guess)", "password",
                   type="password", required=True, min_length=10),
            rx.vstack(
                rx.text("Plan", size="2", weight="medium"),
                rx.select.root(
                    rx.select.trigger(width="100%", id="signup-plan"),
                    rx.select.content(*(
                        rx.select.item(
                            f"{plan.name} · ${plan.monthly_usd}/month", value=key
                        ) for key, plan in PLANS.items()
                    )),
                    name="plan",
                    value=S.plan,
                    on_change=S.set_plan,
                ),
                _field_error("plan"),
                rx.text("Every new account starts as a free trial of Starter, whichever plan you "
                        "look at here; moving up to Professional or Enterprise comes with billing.",
                        size="1", color_scheme="gray", id="signup-trial"),
                spacing="1",
                width="100%",
            ),
            _field_error("form"),
            rx.button("Create account", type="submit", width="100%", id="signup-submit"),
            rx.text("Already have an account? ", rx.link("Sign in", href="/login"), size="2"),
            spacing="3",
            width="22em",
        ),
        on_submit=S.sign_up,
        reset_on_submit=False,
    )


def verify_email_page() -> rx.Component:
    """Where the e-mailed link lands: the tenant is started, or the page says why not."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("Confirm your e-mail", size="6"),
                rx.cond(
                    V.verified,
                    rx.text("Your address is confirmed and your portal is starting. Sign in to continue.",
                            id="verify-done", role="status"),
                    rx.cond(V.verify_error != "",
                            rx.text(V.verify_error, color_scheme="tomato", id="verify-error", role="alert"),
                            rx.text("Checking the link…", color_scheme="gray")),
                ),
                rx.link("Sign in", href="/login", id="verify-sign-in"),
                spacing="3",
                width="22em",
            ),
        ),
        height="100vh",
    )
