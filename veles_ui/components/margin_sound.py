"""The dashboard's margin-call sound: the hidden count the server moves when an account enters
margin call, and the mute toggle. `assets/margin_sound.js` (loaded in every page's head) rings
once per move of the count, only when the dealer turned the sound on; muted by default, and the
browser's autoplay policy needs a click on the page first, which the button says."""

from __future__ import annotations

import reflex as rx

SCRIPT = "/margin_sound.js"


def margin_sound_script() -> rx.Component:
    """The ringer, for the app's head (`rx.App(head_components=...)`)."""
    return rx.script(src=SCRIPT)


def margin_sound(seq: rx.Var[int], logins: rx.Var[str]) -> rx.Component:
    """The toggle (its label written by the script, which knows the stored choice and whether the
    browser lets the page play sound yet) and the count it follows."""
    return rx.hstack(
        rx.button(
            rx.icon("bell-ring", size=14),
            rx.el.span(id="sound-label"),  # empty for React: the script owns its text
            variant="soft", size="1", color_scheme="amber", id="sound-toggle",
            title="A short sound when an account enters margin call (muted by default)",
        ),
        rx.el.span(logins, id="margin-alarm", hidden=True, custom_attrs={"data-seq": seq}),
        align="center",
    )
