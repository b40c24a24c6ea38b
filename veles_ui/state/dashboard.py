"""The live dashboard: book totals and a page of accounts, streamed from the engine."""

from __future__ import annotations

import time
from typing import cast

import reflex as rx

from veles.services.live import TenantReplica
from veles_ui.format import DASH, account_view, exposure_view, money, percent, sign_color
from veles_ui.state.stream import PortalStream

PAGE_SIZE = 50
# Symbols shown in the exposure chart and table: the largest by absolute USD (the wire's order).
EXPOSURE_SYMBOLS = 12


class DashboardState(PortalStream):
    """What the dashboard shows; refreshed by `stream` each time the book changes."""

    equity: rx.Field[str] = rx.field(DASH)
    balance: rx.Field[str] = rx.field(DASH)
    credit: rx.Field[str] = rx.field(DASH)
    profit: rx.Field[str] = rx.field(DASH)
    profit_color: rx.Field[str] = rx.field("gray")
    margin: rx.Field[str] = rx.field(DASH)
    free_margin: rx.Field[str] = rx.field(DASH)
    margin_level: rx.Field[str] = rx.field(DASH)
    accounts: rx.Field[int] = rx.field(0)
    margin_call: rx.Field[int] = rx.field(0)
    stop_out: rx.Field[int] = rx.field(0)
    version: rx.Field[int] = rx.field(-1)
    latency_ms: rx.Field[str] = rx.field(DASH)
    # "<gateway ms> <published ms>" (epoch): rendered hidden so `veles bench ui` can time each
    # update from the engine to the page.
    stamp: rx.Field[str] = rx.field("")
    rows: rx.Field[list[dict[str, str]]] = rx.field(cast(list[dict[str, str]], []))
    exposure: rx.Field[list[dict[str, str]]] = rx.field(cast(list[dict[str, str]], []))
    # Numbers for the chart (millions of USD per book); the table above shows the same symbols formatted.
    exposure_chart: rx.Field[list[dict[str, str | float]]] = rx.field(cast(list[dict[str, str | float]], []))

    def _show(self, replica: TenantReplica) -> None:
        totals = replica.totals
        self.equity = money(totals.get("equity"))
        self.balance = money(totals.get("balance"))
        self.credit = money(totals.get("credit"))
        self.profit = money(totals.get("profit"))
        self.profit_color = sign_color(totals.get("profit"))
        self.margin = money(totals.get("margin"))
        self.free_margin = money(totals.get("free_margin"))
        self.margin_level = percent(totals.get("margin_level"))
        self.accounts = int(totals.get("accounts", 0))
        self.margin_call = int(totals.get("margin_call", 0))
        self.stop_out = int(totals.get("stop_out", 0))
        self.version = replica.version
        self.stamp = f"{replica.sent_at * 1000:.0f} {replica.published_at * 1000:.0f}"
        if replica.sent_at:
            self.latency_ms = f"{(time.time() - replica.sent_at) * 1000:,.0f} ms"
        top = totals.get("exposure", [])[:EXPOSURE_SYMBOLS]
        self.exposure = [exposure_view(e) for e in top]
        self.exposure_chart = [
            {"symbol": e["symbol"], "A-book": round(e["a_usd"] / 1e6, 3),
             "B-book": round(e["b_usd"] / 1e6, 3)}
            for e in top
        ]
        page, _total = replica.page(sort="login", limit=PAGE_SIZE)
        self.rows = [account_view(r) for r in page]

    def _shows(self, path: str) -> bool:
        return path == "/dashboard"

    @rx.event(background=True)
    async def stream(self) -> None:
        """Follow the tenant's book while this tab shows the dashboard (one stream per tab)."""
        async for replica in self._follow():
            async with self:
                self._show(replica)
