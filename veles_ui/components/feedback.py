"""The outcome of the last action on a page: an error in red or a notice in green, only when set."""

from __future__ import annotations

import reflex as rx


def error_callout(message: rx.Var[str], test_id: str) -> rx.Component:
    """Shown while `message` is not empty; announced to screen readers."""
    return rx.cond(message != "", rx.callout(message, color_scheme="tomato", icon="triangle_alert",
                                             id=test_id, role="alert"))


def notice_callout(message: rx.Var[str], test_id: str) -> rx.Component:
    """A confirmation, shown while `message` is not empty."""
    return rx.cond(message != "", rx.callout(message, color_scheme="grass", icon="check", id=test_id))
