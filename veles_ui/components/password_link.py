"""The parts of a page reached by an e-mailed link on which someone chooses a password (/reset,
/invite): the password field with its own error beside it, the outcome, and the refused link.

One place, so that both pages keep the same keyboard behaviour, error placement and element ids
(`{prefix}-password`, `{prefix}-error-password`, `{prefix}-done`, ...) that screen readers and
the browser tests rely on.
"""

from __future__ import annotations

import reflex as rx


def password_field(prefix: str, label: str, name: str, error_field: rx.Var[str], error: rx.Var[str],
                   **props: object) -> rx.Component:
    """A new-password input labelled for `label`; `error` shows beside it while `error_field` names it."""
    return rx.vstack(
        rx.text(label, as_="label", html_for=f"{prefix}-{name}", size="2", weight="medium"),
        rx.input(name=name, id=f"{prefix}-{name}", type="password", required=True, width="100%",
                 auto_complete="new-password", **props),
        rx.cond(error_field == name,
                rx.text(error, color_scheme="tomato", size="2", id=f"{prefix}-error-{name}", role="alert")),
        spacing="1",
        width="100%",
    )


def password_set(prefix: str, message: str) -> rx.Component:
    """The outcome: the password is set, and the way on is signing in with it."""
    return rx.vstack(
        rx.callout(message, icon="circle_check", color_scheme="grass", id=f"{prefix}-done", width="100%",
                   role="status"),
        rx.button("Sign in", on_click=rx.redirect("/login"), width="100%", id=f"{prefix}-sign-in"),
        spacing="3",
        width="20em",
    )


def link_refused(prefix: str, heading: str, reason: rx.Var[str], way_on: rx.Component) -> rx.Component:
    """The link cannot be used: why, said before a password is typed, and where to go instead."""
    return rx.vstack(
        rx.heading(heading, size="6"),
        rx.callout(reason, icon="triangle_alert", color_scheme="tomato", id=f"{prefix}-link-error",
                   width="100%", role="alert"),
        rx.text(way_on, size="2"),
        spacing="3",
        width="20em",
    )
