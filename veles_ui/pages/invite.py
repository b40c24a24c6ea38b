"""/invite?token=: the invited person chooses a password and joins the broker that invited them.

A plain form like /reset (Tab moves field to field, Enter submits); errors show next to their
field, what was typed stays, and a dead link is said before a password is typed.
"""

from __future__ import annotations

import reflex as rx

from veles_ui.components.password_link import link_refused, password_field, password_set
from veles_ui.state.invite import InviteState as S


def _password_field(label: str, name: str, **props: object) -> rx.Component:
    return password_field("invite", label, name, S.invite_error_field, S.invite_error, **props)


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
    return password_set("invite", "Your account is ready: sign in with your e-mail address and the password "
                                  "you chose.")


def _link_refused() -> rx.Component:
    return link_refused("invite", "This invitation cannot be used", S.invite_link_error,
                        rx.link("Sign in", href="/login", id="invite-to-sign-in"))


def invite_page() -> rx.Component:
    """The link is checked when the page opens."""
    return rx.center(
        rx.card(rx.cond(S.invite_done, _done(),
                        rx.cond(S.invite_link_error != "", _link_refused(), _join_form()))),
        height="100vh",
    )
