"""The dealer's desk panels of the dashboard: who is closest to stop-out, the day per currency and
book, and each connection's freshness. Numbers right-aligned in tabular digits; logins are links."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

NUMERIC = {"text_align": "right", "font_variant_numeric": "tabular-nums"}


def _head(*labels: str, numeric_from: int = 1, numeric_to: int = 99) -> rx.Component:
    return rx.table.header(rx.table.row(*(
        rx.table.column_header_cell(label, style=NUMERIC if numeric_from <= i < numeric_to else {})
        for i, label in enumerate(labels)
    )))


def _num(row: ObjectVar[dict[str, str]], key: str, colored: bool = False,
         class_name: str = "") -> rx.Component:
    text = rx.text(row[key], color_scheme=row[f"{key}_color"]) if colored else row[key]
    return rx.table.cell(text, style=NUMERIC, class_name=class_name or key.replace("_", "-"))


def _closest_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["login"], href=row["href"], class_name="account-link")),
        rx.table.cell(row["group"]),
        rx.table.cell(row["book"]),
        rx.table.cell(row["currency"], class_name="currency"),
        _num(row, "equity"),
        _num(row, "margin"),
        _num(row, "margin_level"),
        rx.table.cell(row["distance"], class_name="distance", style={"font_variant_numeric": "tabular-nums"}),
        rx.table.cell(rx.badge(row["state"], color_scheme=row["state_color"])),
    )


def closest_panel(rows: ArrayVar[Any]) -> rx.Component:
    """Accounts with margin in use, lowest margin level first: the next to be stopped out; how far
    each one's largest position may move against it first (other prices and margin as now)."""
    return rx.card(
        rx.vstack(
            rx.heading("Closest to stop-out", size="3"),
            rx.cond(
                rows.length() > 0,
                rx.table.root(
                    _head("Login", "Group", "Book", "Currency", "Equity", "Margin", "Margin level",
                          "Largest position to stop-out", "State", numeric_from=4, numeric_to=7),
                    rx.table.body(rx.foreach(rows, _closest_row)),
                    size="1",
                    width="100%",
                    id="closest-table",
                ),
                rx.text("No account has margin in use.", size="2", color_scheme="gray"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _today_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(row["currency"], weight="bold"), class_name="currency"),
        _num(row, "closed_b", True),
        _num(row, "floating_b", True),
        _num(row, "total_b", True),
        _num(row, "closed_a", True),
        _num(row, "floating_a", True),
        _num(row, "total_a", True),
        _num(row, "deposits", True),
        _num(row, "withdrawals", True),
        _num(row, "volume"),
    )


def today_panel(rows: ArrayVar[Any]) -> rx.Component:
    """The day so far (since 00:00 UTC) per deposit currency: clients' P/L per book (the broker's
    B-book result is its negative), money in and out, lots traded. Never summed across currencies."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Today (UTC), per deposit currency", size="3"),
                rx.text("clients' P/L: the broker's B-book result is its opposite", size="1",
                        color_scheme="gray"),
                align="baseline",
                spacing="3",
            ),
            rx.table.root(
                _head("Currency", "B closed", "B floating", "B total", "A closed", "A floating", "A total",
                      "Deposits", "Withdrawals", "Volume (lots)"),
                rx.table.body(rx.foreach(rows, _today_row)),
                size="1",
                width="100%",
                id="today-table",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _badge(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.badge(
        rx.icon("radio", size=12), row["name"], ": quote ", row["quote"], " · deal ", row["deal"],
        color_scheme=row["color"], variant="soft", size="1", class_name="conn-freshness",
    )


def connection_badges(rows: ArrayVar[Any]) -> rx.Component:
    """Per connection: how long ago its newest quote and deal arrived."""
    return rx.flex(rx.foreach(rows, _badge), wrap="wrap", spacing="2", id="connection-freshness")


def _movement_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["time"]),
        rx.table.cell(row["ticket"]),
        rx.table.cell(row["kind"]),
        _num(row, "amount", True),
        rx.table.cell(row["comment"]),
    )


def movements_table(rows: ArrayVar[Any]) -> rx.Component:
    """An account's deposits and withdrawals, newest first."""
    return rx.table.root(
        _head("Time (UTC)", "Deal", "Kind", "Amount", "Comment", numeric_from=3, numeric_to=4),
        rx.table.body(rx.foreach(rows, _movement_row)),
        size="1",
        variant="surface",
        width="100%",
        id="movements-table",
    )
