"""Headline figures as cards: a label, a big number, an optional colour for its sign."""

from __future__ import annotations

import reflex as rx


def metric(label: str, value: rx.Var | str, color: rx.Var | str = "gray", test_id: str = "") -> rx.Component:
    """One labelled figure, right-aligned in tabular digits so changing numbers don't jitter."""
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.text(
                value,
                size="5",
                weight="bold",
                color_scheme=color,
                style={"font_variant_numeric": "tabular-nums"},
                id=test_id or None,
            ),
            align="end",
            spacing="1",
        ),
        min_width="9.5em",
    )
