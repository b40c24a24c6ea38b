"""The stress page: shock the live book, see who MT5 would stop out and what the broker absorbs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.state.stress import StressState as S

_pick = cast(Callable[[Any], EventSpec], S.pick)
_delete = cast(Callable[[Any], EventSpec], S.delete)

HELP = ("Shocks separated by commas: a symbol (XAUUSD -3%), an asset class (metal -5%), every symbol "
        "(all -2%) or a currency against everything (USD +2% against all). Each account then goes "
        "through MT5's stop-out: largest loss closed first, recomputed, until above stop-out or flat.")


def _figure(f: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(f["label"], size="2", color_scheme="gray"),
            rx.text(f["value"], size="4", weight="bold", id=f["id"],
                    style={"font_variant_numeric": "tabular-nums"}),
            spacing="1", align="end",
        ),
        min_width="12em",
    )


def _stopped(a: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(a["login"], href=a["href"])), rx.table.cell(a["group"]),
        rx.table.cell(a["book"]),
        rx.table.cell(a["currency"]),
        rx.table.cell(a["equity_before"], style=NUMERIC), rx.table.cell(a["equity_after"], style=NUMERIC),
        rx.table.cell(rx.text(a["change"], color_scheme=a["change_color"]), style=NUMERIC),
        rx.table.cell(a["level_before"], style=NUMERIC), rx.table.cell(a["closed"], style=NUMERIC),
        rx.table.cell(a["absorbed"], style=NUMERIC),
        class_name="stopped-row",
    )


def _exposure(e: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(e["symbol"]),
        rx.table.cell(rx.text(e["lots"], color_scheme=e["color"]), style=NUMERIC),
        rx.table.cell(rx.text(e["usd"], color_scheme=e["color"]), style=NUMERIC),
        rx.table.cell(rx.text(e["b_lots"], color_scheme=e["b_color"]), style=NUMERIC),
        rx.table.cell(rx.text(e["b_usd"], color_scheme=e["b_color"]), style=NUMERIC),
        class_name="exposure-after-row",
    )


def _saved(r: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.hstack(
        rx.button(r["name"], size="1", variant="soft", on_click=_pick(r["scenario"]), title=r["scenario"],
                  class_name="saved-scenario"),
        rx.icon_button(rx.icon("x", size=12), size="1", variant="ghost", color_scheme="gray",
                       on_click=_delete(r["id"]), aria_label="Delete saved scenario", title="Delete"),
        spacing="1", align="center",
    )


def _var(f: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(f["method"]), rx.table.cell(f["confidence"], style=NUMERIC),
        rx.table.cell(rx.text(f["var"], id=f["id"], weight="bold"), style=NUMERIC), rx.table.cell(f["date"]),
    )


def _contribution(c: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(c["symbol"]),
        rx.table.cell(rx.text(c["exposure"], color_scheme=c["color"]), style=NUMERIC),
        *(rx.table.cell(c[key], style=NUMERIC) for key in ("hist95", "hist99", "para95", "para99")),
        class_name="var-contribution-row",
    )


def var_panel() -> rx.Component:
    """1-day VaR of the B-book: the four figures, then each symbol's share of them."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Value at Risk of the B-book, 1 day", size="4"),
            rx.button("Recompute", size="1", variant="soft", on_click=S.compute_var, loading=S.var_running,
                      id="var-run"),
            align="center", spacing="3",
        ),
        rx.text("The broker's exposure (minus its B-book clients' net USD notional) against the daily closes "
                "the engine keeps: historical simulation (a loss that happened) and variance-covariance "
                "(normal, for comparison). Contributions sum to each VaR.", size="2", color_scheme="gray"),
        error_callout(S.var_error, "var-error"),
        rx.cond(
            S.var_history != "",
            rx.vstack(
                rx.text(S.var_history, size="2", color_scheme="gray", id="var-history"),
                rx.grid(
                    rx.table.root(_head("Method", "Confidence", "VaR (USD)", "Day of history"),
                                  rx.table.body(rx.foreach(S.var_figures, _var)),
                                  size="1", variant="surface", width="100%", id="var-table"),
                    rx.table.root(_head("Symbol", "Exposure USD", "Hist 95%", "Hist 99%", "VCV 95%",
                                        "VCV 99%"),
                                  rx.table.body(rx.foreach(S.var_contributions, _contribution)),
                                  size="1", variant="surface", width="100%", id="var-contributions"),
                    columns="2", spacing="3", width="100%",
                ),
                width="100%",
            ),
        ),
        width="100%", spacing="2",
    )


def _head(*labels: str) -> rx.Component:
    return rx.table.header(rx.table.row(*(rx.table.column_header_cell(h) for h in labels)))


def stress_page() -> rx.Component:
    """Scenario and saved scenarios on top, the outcome below: headline figures, the accounts the
    cascade stopped out, exposure after the shock."""
    return rx.vstack(
        top_nav(),
        rx.heading("Stress test of the live book", size="5"),
        rx.text(HELP, color_scheme="gray", size="2"),
        rx.form(
            rx.hstack(
                rx.input(name="scenario", value=S.scenario, on_change=S.set_scenario, debounce_timeout=150,
                         id="stress-scenario", width="32em", placeholder="XAUUSD -3%, USD +2% against all"),
                rx.button("Run stress", type="submit", id="stress-run", loading=S.running),
                align="center", spacing="2",
            ),
            on_submit=S.run,
            reset_on_submit=False,
        ),
        error_callout(S.error, "stress-error"),
        rx.hstack(
            rx.text("Saved:", size="2", color_scheme="gray"),
            rx.foreach(S.saved, _saved),
            rx.form(
                rx.hstack(
                    rx.input(name="name", placeholder="Name", id="stress-save-name", size="1", width="12em"),
                    rx.button("Save scenario", type="submit", size="1", variant="outline", id="stress-save"),
                    spacing="1",
                ),
                on_submit=S.save,
                reset_on_submit=True,
            ),
            wrap="wrap", spacing="2", align="center",
        ),
        error_callout(S.save_error, "stress-save-error"),
        notice_callout(S.save_notice, "stress-save-notice"),
        rx.cond(
            S.ran != "",
            rx.vstack(
                rx.text("Scenario applied: ", rx.code(S.ran, id="stress-ran"), size="2"),
                rx.flex(rx.foreach(S.summary, _figure), wrap="wrap", spacing="2"),
                rx.heading("Accounts stopped out", size="4"),
                rx.table.root(
                    _head("Login", "Group", "Book", "Currency", "Equity before", "Equity after", "Change",
                          "Level before", "Closed", "Negative balance"),
                    rx.table.body(rx.foreach(S.stopped, _stopped)),
                    size="1", variant="surface", width="100%", id="stress-stopped-table",
                ),
                rx.heading("Net exposure after the shock", size="4"),
                rx.table.root(
                    _head("Symbol", "Net lots", "USD notional", "B-book lots", "B-book USD"),
                    rx.table.body(rx.foreach(S.exposure, _exposure)),
                    size="1", variant="surface", width="100%", id="stress-exposure-table",
                ),
                width="100%", spacing="3",
            ),
        ),
        rx.divider(),
        var_panel(),
        padding="1em",
        spacing="3",
        width="100%",
    )
