"""The what-if calculator page: edit the snapshot, calculate, read the figures."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from veles_ui.components.feedback import error_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.calculator import CalculatorState as S


def _figure(f: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(rx.table.cell(f["label"]), rx.table.cell(f["value"], style=NUMERIC))


def _position(p: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(p["ticket"]), rx.table.cell(p["symbol"]), rx.table.cell(p["type"]),
        rx.table.cell(p["volume"], style=NUMERIC), rx.table.cell(p["margin"], style=NUMERIC),
        rx.table.cell(rx.text(p["profit"], color_scheme=p["profit_color"]), style=NUMERIC),
    )


def calculator_page() -> rx.Component:
    """The document on the left, the answer on the right; a refusal names the field."""
    return rx.vstack(
        top_nav(),
        rx.heading("What-if calculator", size="5"),
        rx.text("An account snapshot as JSON (the format of `veles risk calc`): change volumes, prices "
                "or leverage and see margin, equity and margin level as MT5 computes them.",
                color_scheme="gray"),
        rx.grid(
            rx.form(
                rx.vstack(
                    rx.text_area(name="document", default_value=S.document, id="calc-document", rows="18",
                                 width="100%", style={"font_family": "monospace"}),
                    rx.button("Calculate", type="submit", id="calc-submit"),
                    width="100%",
                ),
                on_submit=S.calculate,
                reset_on_submit=False,
            ),
            rx.vstack(
                error_callout(S.error, "calc-error"),
                rx.table.root(rx.table.body(rx.foreach(S.figures, _figure)), size="1", variant="surface",
                              id="calc-figures", width="100%"),
                rx.table.root(
                    rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in (
                        "Ticket", "Symbol", "Side", "Volume", "Margin", "Profit")))),
                    rx.table.body(rx.foreach(S.positions, _position)),
                    size="1", variant="surface", width="100%", id="calc-positions",
                ),
                width="100%",
            ),
            columns="2",
            spacing="4",
            width="100%",
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
