"""Net exposure by symbol: a stacked bar chart (USD, A-book and B-book) and the same symbols as a
table in lots and USD. Long is positive, short negative; colours follow the sign."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

from veles_ui.components.sortable_accounts import NUMERIC

_COLUMNS = ("Symbol", "Net lots", "Net USD", "A-book lots", "A-book USD", "B-book lots", "B-book USD")


def exposure_chart(data: ArrayVar[Any], height: rx.Var[int] | int = 240) -> rx.Component:
    """USD notional per symbol in millions, A-book and B-book stacked: one horizontal bar per
    symbol, every symbol labelled (`height` grows with their number)."""
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.x_axis(type_="number", unit="m"),
        rx.recharts.y_axis(data_key="symbol", type_="category", width=70, interval=0),
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        rx.recharts.reference_line(x=0, stroke="gray"),
        rx.recharts.bar(data_key="A-book", stack_id="book", fill=rx.color("indigo", 9),
                        is_animation_active=False),
        rx.recharts.bar(data_key="B-book", stack_id="book", fill=rx.color("amber", 9),
                        is_animation_active=False),
        data=data,
        layout="vertical",
        width="100%",
        height=height,
        id="exposure-chart",
    )


def _cell(row: ObjectVar[dict[str, str]], key: str, color: str) -> rx.Component:
    return rx.table.cell(rx.text(row[key], color_scheme=row[color]), style=NUMERIC)


def _row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["symbol"], href="/exposure?symbol=" + row["symbol"].to(str),
                              class_name="symbol-link")),
        _cell(row, "lots", "color"),
        _cell(row, "usd", "color"),
        _cell(row, "a_lots", "a_color"),
        _cell(row, "a_usd", "a_color"),
        _cell(row, "b_lots", "b_color"),
        _cell(row, "b_usd", "b_color"),
    )


def exposure_table(rows: ArrayVar[Any]) -> rx.Component:
    """The chart's symbols with their net lots and USD, in total and per book."""
    return rx.table.root(
        rx.table.header(rx.table.row(*(
            rx.table.column_header_cell(label, style=NUMERIC if i else {}) for i, label in enumerate(_COLUMNS)
        ))),
        rx.table.body(rx.foreach(rows, _row)),
        size="1",
        variant="surface",
        width="100%",
        id="exposure-table",
    )
