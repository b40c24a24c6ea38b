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


def _edit_position(p: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(p["ticket"]), rx.table.cell(p["symbol"]), rx.table.cell(p["type"]),
        rx.table.cell(p["price_open"], style=NUMERIC),
        rx.table.cell(rx.input(name="volume-" + p["ticket"].to(str), default_value=p["volume"], size="1",
                               width="7em", class_name="calc-volume", aria_label="Volume in lots")),
        key=p["ticket"] + "-" + S.revision.to_string(),
    )


def _edit_quote(q: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(q["symbol"]),
        rx.table.cell(rx.input(name="bid-" + q["symbol"].to(str), default_value=q["bid"], size="1",
                               width="9em", class_name="calc-bid", aria_label="Bid")),
        rx.table.cell(rx.input(name="ask-" + q["symbol"].to(str), default_value=q["ask"], size="1",
                               width="9em", class_name="calc-ask", aria_label="Ask")),
        key=q["symbol"] + "-" + S.revision.to_string(),
    )


def live_account() -> rx.Component:
    """Load a live account, then change its volumes (0 closes a position) and prices."""
    return rx.card(
        rx.vstack(
            rx.form(
                rx.hstack(
                    rx.text("Live account", weight="medium"),
                    rx.input(name="login", placeholder="Login", id="calc-login", width="10em"),
                    rx.button("Load", type="submit", id="calc-load", variant="soft"),
                    align="center", spacing="2",
                ),
                on_submit=S.load_account, reset_on_submit=False,
            ),
            error_callout(S.load_error, "calc-load-error"),
            rx.cond(
                S.edit_positions.length() + S.edit_quotes.length() > 0,
                rx.form(
                    rx.vstack(
                        rx.text("Account ", S.loaded, ": change volumes (0 closes the position) or prices, "
                                "then recalculate.", size="2", color_scheme="gray"),
                        rx.grid(
                            rx.table.root(
                                rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in (
                                    "Ticket", "Symbol", "Side", "Open price", "Volume")))),
                                rx.table.body(rx.foreach(S.edit_positions, _edit_position)),
                                size="1", variant="surface", width="100%", id="calc-edit-positions",
                            ),
                            rx.table.root(
                                rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in (
                                    "Symbol", "Bid", "Ask")))),
                                rx.table.body(rx.foreach(S.edit_quotes, _edit_quote)),
                                size="1", variant="surface", width="100%", id="calc-edit-quotes",
                            ),
                            columns="2", spacing="3", width="100%",
                        ),
                        rx.button("Recalculate with changes", type="submit", id="calc-apply"),
                        width="100%",
                    ),
                    on_submit=S.apply_changes, reset_on_submit=False,
                ),
            ),
            width="100%",
        ),
        width="100%",
    )


def calculator_page() -> rx.Component:
    """The document on the left, the answer on the right; a refusal names the field."""
    return rx.vstack(
        top_nav(),
        rx.heading("What-if calculator", size="5"),
        rx.text("Load a live account and change its positions or prices, or edit the account snapshot as "
                "JSON (the format of `veles risk calc`): see margin, equity and margin level as MT5 "
                "computes them.", color_scheme="gray"),
        live_account(),
        rx.grid(
            rx.form(
                rx.vstack(
                    rx.text_area(name="document", default_value=S.document, id="calc-document", rows="18",
                                 key=S.revision.to_string(),
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
