"""The accounts portal's table: every column sortable by its header, each login a link to its page."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles_ui.state.accounts import AccountsState

# mypy reads `@rx.event` methods as the decorator's class; at runtime this takes the sort key.
_sort_by = cast(Callable[[str], EventSpec], AccountsState.sort_by)

NUMERIC = {"text_align": "right", "font_variant_numeric": "tabular-nums"}

# (header, sort key, numeric): the row view of AccountsState uses the same keys.
COLUMNS = (
    ("Login", "login", False),
    ("Name", "name", False),
    ("Country", "country", False),
    ("Server", "server", False),
    ("Group", "group", False),
    ("Book", "book", False),
    ("Currency", "currency", False),
    ("Leverage", "leverage", True),
    ("Balance", "balance", True),
    ("Equity", "equity", True),
    ("Margin level", "margin_level", True),
    ("Floating P/L", "profit", True),
    ("Drawdown", "drawdown", True),
    ("Margin risk", "risk_score", True),
    ("Toxicity", "toxicity", True),
    ("Flow", "flow_label", False),
    ("State", "state", False),
)


def _header(label: str, key: str, numeric: bool) -> rx.Component:
    sort, descending = AccountsState.sort, AccountsState.descending
    indicator = rx.cond(sort == key, rx.cond(descending, " ▼", " ▲"), "")
    return rx.table.column_header_cell(
        rx.text(label, indicator, as_="span"),
        on_click=_sort_by(key),
        cursor="pointer",
        user_select="none",
        id=f"sort-{key}",
        aria_sort=rx.cond(sort == key, rx.cond(descending, "descending", "ascending"), "none"),
        style=NUMERIC if numeric else {},
    )


def _row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["login"], href=row["href"], class_name="account-link")),
        rx.table.cell(row["name"], class_name="client-name"),
        rx.table.cell(row["country"], class_name="country"),
        rx.table.cell(row["server"], class_name="server"),
        rx.table.cell(row["group"], class_name="group"),
        rx.table.cell(row["book"]),
        rx.table.cell(row["currency"], class_name="currency"),
        rx.table.cell(row["leverage"], style=NUMERIC, class_name="leverage"),
        rx.table.cell(row["balance"], style=NUMERIC),
        rx.table.cell(row["equity"], style=NUMERIC, class_name="equity"),
        rx.table.cell(row["margin_level"], style=NUMERIC),
        rx.table.cell(rx.text(row["profit"], color_scheme=row["profit_color"]), style=NUMERIC),
        rx.table.cell(row["drawdown"], style=NUMERIC),
        rx.table.cell(row["risk_score"], style=NUMERIC),
        rx.table.cell(rx.link(row["toxicity"], href=row["flow_href"], class_name="toxicity-link"),
                      style=NUMERIC),
        rx.table.cell(rx.badge(row["flow_label"], color_scheme=row["flow_color"]), class_name="flow-label"),
        rx.table.cell(rx.badge(row["state"], color_scheme=row["state_color"])),
    )


def sortable_accounts() -> rx.Component:
    """AccountsState's page of accounts; clicking a header sorts by it, clicking again reverses."""
    return rx.table.root(
        rx.table.header(
            rx.table.row(*(_header(*column) for column in COLUMNS))
        ),
        rx.table.body(rx.foreach(AccountsState.rows, _row)),
        size="1",
        variant="surface",
        width="100%",
        id="portal-accounts",
    )
