"""The live accounts table: numbers right-aligned with fixed decimals in each account's deposit
currency (its own column), sign and state in colour, each login a link to its page."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

_NUMERIC = {"text_align": "right", "font_variant_numeric": "tabular-nums"}


def _header(label: str, numeric: bool = False) -> rx.Component:
    return rx.table.column_header_cell(label, style=_NUMERIC if numeric else {})


def _row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["login"], href=row["href"], class_name="account-link")),
        rx.table.cell(row["group"]),
        rx.table.cell(row["book"]),
        rx.table.cell(row["currency"], class_name="currency"),
        rx.table.cell(row["balance"], style=_NUMERIC),
        rx.table.cell(row["equity"], style=_NUMERIC),
        rx.table.cell(rx.text(row["profit"], color_scheme=row["profit_color"]), style=_NUMERIC,
                      class_name="profit"),
        rx.table.cell(row["margin"], style=_NUMERIC),
        rx.table.cell(row["margin_level"], style=_NUMERIC),
        rx.table.cell(rx.badge(row["state"], color_scheme=row["state_color"])),
    )


def accounts_table(rows: ArrayVar[Any]) -> rx.Component:
    """One page of accounts."""
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                _header("Login"),
                _header("Group"),
                _header("Book"),
                _header("Currency"),
                _header("Balance", True),
                _header("Equity", True),
                _header("Floating P/L", True),
                _header("Margin", True),
                _header("Margin level", True),
                _header("State"),
            )
        ),
        rx.table.body(rx.foreach(rows, _row)),
        size="1",
        variant="surface",
        width="100%",
        id="accounts-table",
    )
