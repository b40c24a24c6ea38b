"""/invite?token=: the invited person chooses a password and joins the broker that invited them.

A plain form like /reset (Tab moves field to field, Enter submits); errors show next to their
field, what was typed stays, and a dead link is said before a password is typed.
"""

from __future__ import annotations

import reflex as rx

from veles_ui.state.invite import InviteState as S


def _password_field(label: str, name: str, **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=f"invite-{name}", size="2", weight="medium"),
        rx.input(name=name, id=f"invite-{name}", type="password", required=True, width="100%",
                 auto_complete="new-password", **props),
        rx.cond(S.invite_error_field == name,
                rx.text(S.invite_error, color_scheme="tomato", size="2", id=f"invite-error-{name}",
                        role="alert")),
        spacing="1",
        width="100%",
    )


def _join_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Join ", S.invite_tenant, size="6", id="invite-heading"),
            rx.text("You are invited as ", rx.text.strong(S.invite_role), " with ",
                    rx.text.strong(S.invite_email, id="invite-address"), ". Choose your password to join.",
                    size="2"),
            _password_field("Password (10 characters or more)", "password", auto_focus=True),
            _password_field("Password again", "confirm"),
            rx.cond((S.invite_error != "") & (S.invite_error_field == ""),
                    rx.text(S.invite_error, color_scheme="tomato", size="2", id="invite-error",
                            role="alert")),
            rx.button("Join", type="submit", width="100%", id="invite-submit"),
            spacing="3",
            width="20em",
        ),
        on_submit=S.join,
        reset_on_submit=False,
    )


def _done() -> rx.Component:
    return rx.vstack(
        rx.callout("Your account is ready: sign in with your e-mail address and the password you chose.",
                   icon="circle_check", color_scheme="grass", id="invite-done", width="100%", role="status"),
        rx.button("Sign in", on_click=rx.redirect("/login"), width="100%", id="invite-sign-in"),
        spacing="3",
        width="20em",
    )


def _link_refused() -> rx.Component:
    return rx.vstack(
        rx.heading("This invitation cannot be used", size="6"),
        rx.callout(S.invite_link_error, icon="triangle_alert", color_scheme="tomato", id="invite-link-error",
                   width="100%", role="alert"),
        rx.text(rx.link("Sign in", href="/login", id="invite-to-sign-in"), size="2"),
        spacing="3",
        width="20em",
    )


def invite_page() -> rx.Component:
    """The link is checked when the page opens."""
    return rx.center(
        rx.card(rx.cond(S.invite_done, _done(),
                        rx.cond(S.invite_link_error != "", _link_refused(), _join_form()))),
        height="100vh",
    )
