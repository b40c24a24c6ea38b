"""The socket's health, on every signed-in page: when it drops the page says so, and the notice
goes away by itself once the socket is back (the client reconnects on its own)."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.core.banner import has_connection_errors


def connection_status() -> rx.Component:
    """A badge that is only there while the live connection is down."""
    return rx.cond(
        has_connection_errors,
        rx.badge(
            rx.icon("wifi-off", size=14),
            "Connection lost — reconnecting…",
            color_scheme="tomato",
            variant="solid",
            size="2",
            id="connection-lost",
            role="status",
        ),
    )
