"""How old the figures on a live page are, shown so that a frozen screen never looks live.

The issue it answers: with the browser offline for 45 s the dashboard's numbers froze, still
showing "26 ms" from gateway to screen, and nothing on the page said so (the socket notices a dead
link only at its next ping timeout). `freshness` renders an element carrying the stamp of the
update on screen; `assets/freshness.js`, loaded once in every page's head, counts the time since
that stamp last changed in the browser itself, ten times a second, and writes "updated 0.3 s ago",
amber past 2 s and red past 10 s. Nothing in that count waits for the socket or the server.

The age is counted from when this browser received the update, not from the server's clock, so a
client whose clock is off still shows the truth; how long the update took to arrive is the page's
"gateway → screen" figure.
"""

from __future__ import annotations

import reflex as rx

SCRIPT = "/freshness.js"


def freshness_script() -> rx.Component:
    """The ticker, for the app's head (`rx.App(head_components=...)`)."""
    return rx.script(src=SCRIPT)


def freshness(stamp: rx.Var[str], test_id: str = "book-age") -> rx.Component:
    """The age of the update whose stamp is `stamp` (it must change with every update), and a
    "Connection lost" notice while the browser is offline."""
    return rx.hstack(
        rx.text(size="2", weight="medium", id=test_id, custom_attrs={"data-freshness": stamp},
                role="status", aria_live="off"),
        rx.el.span(
            rx.badge(rx.icon("wifi-off", size=14), "Connection lost: these figures are not updating",
                     color_scheme="tomato", variant="solid", size="2"),
            id="offline-notice",
            hidden=True,
            custom_attrs={"data-offline-notice": ""},
            role="alert",
        ),
        spacing="2",
        align="center",
    )
