"""The exposure drill-down: filters, net exposure by symbol and by currency, and the accounts and
positions behind the chosen symbol, whose rows add up to its net (shown beside them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ArrayVar, ObjectVar

from veles_ui.components.desk import NUMERIC
from veles_ui.components.freshness import freshness
from veles_ui.components.nav import top_nav
from veles_ui.state.exposure import ACCOUNT_COLUMNS, ANY
from veles_ui.state.exposure import ExposureState as S

_set_filter = cast(Callable[[str, str], EventSpec], S.set_filter)
_choose = cast(Callable[[Any], EventSpec], S.choose)


def _filter(name: str, label: str, options: ArrayVar[Any] | list[str], value: rx.Var[str]) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.select.root(
            rx.select.trigger(id=f"filter-{name}", min_width="9em"),
            rx.select.content(
                rx.select.item("All", value=ANY),
                rx.foreach(options, lambda o: rx.select.item(o, value=o)),
            ),
            value=value,
            on_change=lambda v: _set_filter(name, v),
            size="1",
        ),
        spacing="1",
    )


def _filters() -> rx.Component:
    return rx.hstack(
        _filter("server", "Server (connection)", S.servers, S.server),
        _filter("group", "Group", S.groups, S.group),
        _filter("book", "Book", ["A", "B"], S.book),
        _filter("currency", "Deposit currency", S.currencies, S.currency),
        rx.spacer(),
        freshness(S.stamp),
        align="end",
        width="100%",
        wrap="wrap",
    )


def _num(row: ObjectVar[dict[str, str]], key: str, color: str = "", class_name: str = "") -> rx.Component:
    text = rx.text(row[key], color_scheme=row[color]) if color else row[key]
    return rx.table.cell(text, style=NUMERIC, class_name=class_name or key.replace("_", "-"))


def _symbol_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["symbol"], on_click=_choose(row["symbol"].to(str)), cursor="pointer",
                              class_name="drill-symbol",
                              weight=rx.cond(row["chosen"] == "1", "bold", "regular"))),
        _num(row, "accounts"),
        _num(row, "lots", "color", "net-lots"),
        _num(row, "usd", "color", "net-usd"),
        _num(row, "b_lots", "b_color"),
        _num(row, "b_usd", "b_color"),
        _num(row, "a_lots", "a_color"),
        _num(row, "a_usd", "a_color"),
        data_symbol=row["symbol"],
        class_name="symbol-row",
    )


def _head(*labels: str, numeric_from: int = 1) -> rx.Component:
    return rx.table.header(rx.table.row(*(
        rx.table.column_header_cell(label, style=NUMERIC if i >= numeric_from else {})
        for i, label in enumerate(labels)
    )))


def _by_symbol() -> rx.Component:
    return rx.table.root(
        _head("Symbol", "Accounts", "Net lots", "Net USD", "B lots", "B USD", "A lots", "A USD"),
        rx.table.body(rx.foreach(S.symbols, _symbol_row)),
        size="1",
        variant="surface",
        width="100%",
        id="drill-symbols",
    )


def _currency_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(rx.table.cell(row["currency"]), _num(row, "usd", "usd_color"))


def _by_currency() -> rx.Component:
    return rx.table.root(
        _head("Currency", "Net USD"),
        rx.table.body(rx.foreach(S.by_currency, _currency_row)),
        size="1",
        variant="surface",
        width="100%",
        id="drill-currencies",
    )


def _account_row(row: ObjectVar[dict[str, str]]) -> rx.Component:
    cells = [rx.table.cell(rx.link(row["login"], href=row["href"], class_name="account-link"))]
    for _label, key in ACCOUNT_COLUMNS[1:]:
        if key in ("group", "book", "currency"):
            cells.append(rx.table.cell(row[key], class_name=key))
        elif key in ("usd", "pnl"):
            cells.append(_num(row, key, f"{key}_color", f"acc-{key}"))
        else:
            cells.append(_num(row, key, class_name=f"acc-{key.replace('_', '-')}"))
    return rx.table.row(*cells)


def _accounts() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Accounts behind ", rx.el.span(S.symbol, id="drill-symbol"), size="4"),
            rx.text("net of these rows ", rx.el.span(S.net_lots, id="drill-net-lots"), " lots, USD ",
                    rx.el.span(S.net_usd, id="drill-net-usd"), size="2"),
            rx.text("(whole book ", rx.el.span(S.book_lots, id="drill-book-lots"), " lots, USD ",
                    rx.el.span(S.book_usd, id="drill-book-usd"), ")", size="2", color_scheme="gray"),
            rx.spacer(),
            rx.button(rx.icon("download", size=14), "CSV", variant="soft", size="1", on_click=S.export_csv,
                      id="drill-csv"),
            align="baseline",
            spacing="3",
            width="100%",
            wrap="wrap",
        ),
        rx.table.root(
            _head(*(label for label, _ in ACCOUNT_COLUMNS), numeric_from=4),
            rx.table.body(rx.foreach(S.accounts, _account_row)),
            size="1",
            variant="surface",
            width="100%",
            id="drill-accounts",
        ),
        rx.text("Volume, average prices and P/L are read from the positions of the 40 largest accounts; "
                "P/L is in each account's deposit currency, with swap and commission.", size="1",
                color_scheme="gray"),
        spacing="2",
        width="100%",
    )


def exposure_page() -> rx.Component:
    """The tab's ExposureState stream keeps it current while it is shown."""
    return rx.vstack(
        top_nav(),
        rx.heading("Exposure drill-down", size="5"),
        _filters(),
        rx.match(
            S.status,
            ("no engine", rx.text("No engine is running for this broker yet: add a connection.",
                                  color_scheme="gray", id="drill-no-engine")),
            rx.fragment(),
        ),
        rx.grid(
            rx.vstack(rx.heading("By symbol (click one)", size="3"), _by_symbol(), width="100%"),
            rx.vstack(rx.heading("By currency", size="3"), _by_currency(), width="100%"),
            grid_template_columns="3fr 1fr",
            spacing="3",
            width="100%",
        ),
        rx.cond(S.symbol != "", _accounts(),
                rx.text("Choose a symbol to see the accounts behind it.", color_scheme="gray", size="2")),
        padding="1.5em",
        spacing="4",
        width="100%",
    )
