"""An account's equity and margin level over time: two lines on one time axis, equity in the
deposit currency on the left (a solid indigo line), margin level in percent on the right (a
dashed amber line, told apart without colour too; a gap where no margin was in use), with the
window (1 hour to 7 days) chosen above it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ArrayVar


def history_chart(data: ArrayVar[Any], window: rx.Var[str], windows: Iterable[str],
                  choose: Callable[[str | list[str]], EventSpec]) -> rx.Component:
    """The chart of `data` (points of time, equity, margin_level) under a window picker."""
    return rx.vstack(
        rx.segmented_control.root(
            *(rx.segmented_control.item(name, value=name, id=f"history-{name}") for name in windows),
            value=window,
            on_change=choose,
            size="1",
            id="history-window",
        ),
        rx.cond(
            data.length() > 0,
            rx.recharts.line_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
                rx.recharts.x_axis(data_key="time", min_tick_gap=40),
                rx.recharts.y_axis(y_axis_id="equity", width=90, domain=["auto", "auto"]),
                rx.recharts.y_axis(y_axis_id="level", orientation="right", width=80, unit="%",
                                   domain=["auto", "auto"]),
                rx.recharts.graphing_tooltip(),
                rx.recharts.legend(),
                rx.recharts.line(data_key="equity", name="Equity", y_axis_id="equity",
                                 stroke=rx.color("indigo", 9), stroke_width=2, dot=False,
                                 is_animation_active=False),
                rx.recharts.line(data_key="margin_level", name="Margin level (%)", y_axis_id="level",
                                 stroke=rx.color("amber", 9), stroke_dasharray="6 3", stroke_width=2,
                                 dot=False, is_animation_active=False),
                data=data,
                width="100%",
                height=260,
                id="account-history-chart",
            ),
            rx.text("No history in this window yet: a point is recorded every minute.",
                    color_scheme="gray", size="2", id="history-empty"),
        ),
        spacing="2",
        width="100%",
    )
