"""An account's most recent deals (newest first), MT5's columns, numbers right-aligned."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

from veles_ui.components.sortable_accounts import NUMERIC

_COLUMNS = (
    ("Ticket", False),
    ("Time (UTC)", False),
    ("Symbol", False),
    ("Type", False),
    ("Entry", False),
    ("Volume", True),
    ("Price", True),
    ("Commission", True),
    ("Swap", True),
    ("Profit", True),
)


def _row(deal: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(deal["ticket"]),
        rx.table.cell(deal["time"]),
        rx.table.cell(deal["symbol"]),
        rx.table.cell(deal["type"]),
        rx.table.cell(deal["entry"]),
        rx.table.cell(deal["volume"], style=NUMERIC),
        rx.table.cell(deal["price"], style=NUMERIC),
        rx.table.cell(deal["commission"], style=NUMERIC),
        rx.table.cell(deal["swap"], style=NUMERIC),
        rx.table.cell(rx.text(deal["profit"], color_scheme=deal["profit_color"]), style=NUMERIC),
    )


def deals_table(deals: ArrayVar[Any]) -> rx.Component:
    """The deals the engine applied to one account most recently."""
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *(rx.table.column_header_cell(label, style=NUMERIC if numeric else {})
                  for label, numeric in _COLUMNS)
            )
        ),
        rx.table.body(rx.foreach(deals, _row)),
        size="1",
        variant="surface",
        width="100%",
        id="deals-table",
    )
