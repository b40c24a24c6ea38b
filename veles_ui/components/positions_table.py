"""An account's open positions: numbers right-aligned in tabular digits, profit in its sign colour."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

from veles_ui.components.sortable_accounts import NUMERIC

_COLUMNS = (
    ("Ticket", False),
    ("Open time", False),
    ("Symbol", False),
    ("Side", False),
    ("Volume", True),
    ("Open price", True),
    ("S/L", True),
    ("T/P", True),
    ("Current price", True),
    ("Swap", True),
    ("Commission", True),
    ("Profit", True),
)


def _row(position: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(position["ticket"]),
        rx.table.cell(position["time"], class_name="open-time", white_space="nowrap"),
        rx.table.cell(position["symbol"]),
        rx.table.cell(position["side"]),
        rx.table.cell(position["volume"], style=NUMERIC),
        rx.table.cell(position["price_open"], style=NUMERIC, class_name="price-open"),
        rx.table.cell(position["sl"], style=NUMERIC, class_name="sl"),
        rx.table.cell(position["tp"], style=NUMERIC, class_name="tp"),
        rx.table.cell(position["price_current"], style=NUMERIC, class_name="price-current"),
        rx.table.cell(position["swap"], style=NUMERIC),
        rx.table.cell(position["commission"], style=NUMERIC, class_name="commission"),
        rx.table.cell(rx.text(position["profit"], color_scheme=position["profit_color"]), style=NUMERIC),
    )


def positions_table(positions: ArrayVar[Any]) -> rx.Component:
    """Every open position of one account."""
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *(rx.table.column_header_cell(label, style=NUMERIC if numeric else {})
                  for label, numeric in _COLUMNS)
            )
        ),
        rx.table.body(rx.foreach(positions, _row)),
        size="1",
        variant="surface",
        width="100%",
        id="positions-table",
    )
