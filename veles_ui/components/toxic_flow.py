"""Toxic flow on screen: the dashboard's panel and the trader profile's charts and tables."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ArrayVar, ObjectVar

from veles.risk.alerts import FLOW_LABELS
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.accounts import AccountsState
from veles_ui.state.flow import FlowDeskState as D


def label_filter() -> rx.Component:
    """The accounts page's toxic-flow label filter."""
    return rx.select(
        ["any", *FLOW_LABELS, "ordinary"],
        value=rx.cond(AccountsState.label == "", "any", AccountsState.label),
        on_change=AccountsState.set_label,
        id="accounts-label",
        aria_label="Toxic-flow label",
    )


def _head(*labels: str, numeric_from: int = 1) -> rx.Component:
    return rx.table.header(rx.table.row(*(
        rx.table.column_header_cell(label, style=NUMERIC if i >= numeric_from else {})
        for i, label in enumerate(labels)
    )))


def _top_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["login"], href=row["href"], class_name="flow-link")),
        rx.table.cell(rx.badge(row["label"], color_scheme=row["color"])),
        rx.table.cell(row["score"], style=NUMERIC, class_name="flow-score"),
        rx.table.cell(row["book"]),
        rx.table.cell(row["advice"], class_name="flow-advice"),
        rx.table.cell(row["saved"], style=NUMERIC),
    )


def _pnl_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["label"]),
        rx.table.cell(row["accounts"], style=NUMERIC),
        rx.table.cell(rx.text(row["pnl"], color_scheme=row["color"]), style=NUMERIC, class_name="flow-pnl"),
        rx.table.cell(row["saved"], style=NUMERIC),
        id="flow-pnl-" + row["key"],
    )


def toxic_flow_panel() -> rx.Component:
    """Accounts per label, the most toxic ones with their A/B-book advice, and the B-book's P/L
    by label (the broker's side, USD) with what the A-book advice would have saved."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Toxic flow", size="4"),
                rx.text(D.toxic, " of ", D.accounts, " accounts labelled", size="2", color_scheme="gray",
                        id="flow-toxic-count"),
                rx.spacer(),
                rx.text("A-book advice would have saved ", rx.text.strong(D.savings, id="flow-savings"),
                        size="2"),
                width="100%",
                align="center",
            ),
            rx.flex(
                rx.foreach(D.labels, lambda item: rx.link(
                    rx.badge(item["label"], ": ", item["count"], color_scheme=item["color"], size="2"),
                    href="/accounts?label=" + item["key"])),
                wrap="wrap",
                spacing="2",
                id="flow-labels",
            ),
            rx.grid(
                rx.table.root(
                    _head("Login", "Label", "Score", "Book", "Advice", "Would save", numeric_from=2),
                    rx.table.body(rx.foreach(D.top, _top_row)),
                    size="1", variant="surface", width="100%", id="flow-top",
                ),
                rx.vstack(
                    rx.table.root(
                        _head("B-book by label", "Accounts", "Broker P/L", "Would save"),
                        rx.table.body(rx.foreach(D.pnl, _pnl_row)),
                        size="1", variant="surface", width="100%", id="flow-pnl",
                    ),
                    width="100%",
                ),
                columns="2",
                spacing="3",
                width="100%",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        id="toxic-flow-panel",
    )


def markout_chart(data: ArrayVar[Any]) -> rx.Component:
    """The mean mid-price move in the client's favour after its fills, in spreads, at 1/5/60 s."""
    return rx.recharts.line_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.x_axis(data_key="horizon"),
        rx.recharts.y_axis(width=50),
        rx.recharts.graphing_tooltip(),
        rx.recharts.reference_line(y=0, stroke="gray"),
        rx.recharts.line(data_key="spreads", stroke=rx.color("tomato", 9), is_animation_active=False,
                         dot=True),
        data=data, width="100%", height=200, id="markout-chart",
    )


def holds_chart(data: ArrayVar[Any]) -> rx.Component:
    """Closed trades per holding time."""
    return rx.recharts.bar_chart(
        rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
        rx.recharts.x_axis(data_key="bin"),
        rx.recharts.y_axis(width=40, allow_decimals=False),
        rx.recharts.graphing_tooltip(),
        rx.recharts.bar(data_key="trips", fill=rx.color("cyan", 9), is_animation_active=False),
        data=data, width="100%", height=200, id="holds-chart",
    )
