"""The live dashboard: book totals and a page of accounts, streamed from the engine."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, cast

import reflex as rx

from veles.services.desk import closest_to_stop_out, margin_call_entries
from veles.services.live import TenantReplica
from veles_ui.format import DASH, account_view, exposure_view, money, percent, sign_color
from veles_ui.state.desk import closest_view, freshness_view, tenant_desk, today_view
from veles_ui.state.stream import PortalStream

PAGE_SIZE = 50
# the per-currency day sums go over every account: at most this often (the book moves 4x a second)
DESK_EVERY_S = 1.0
BAR_PX = 22  # the exposure chart's height per symbol: every symbol has its own labelled bar


def _book_view(replica: TenantReplica) -> dict[str, Any]:
    """The dashboard's fields for one book update, formatted."""
    totals = replica.totals
    every = totals.get("exposure", [])
    page, _total = replica.page(sort="login", limit=PAGE_SIZE)
    return {
        "equity": money(totals.get("equity")),
        "balance": money(totals.get("balance")),
        "credit": money(totals.get("credit")),
        "profit": money(totals.get("profit")),
        "profit_color": sign_color(totals.get("profit")),
        "margin": money(totals.get("margin")),
        "free_margin": money(totals.get("free_margin")),
        "margin_level": percent(totals.get("margin_level")),
        "accounts": int(totals.get("accounts", 0)),
        "margin_call": int(totals.get("margin_call", 0)),
        "stop_out": int(totals.get("stop_out", 0)),
        "version": replica.version,
        "stamp": f"{replica.sent_at * 1000:.0f} {replica.published_at * 1000:.0f}",
        "exposure": [exposure_view(e) for e in every],
        "exposure_chart": [
            {"symbol": e["symbol"], "A-book": round(e["a_usd"] / 1e6, 3),
             "B-book": round(e["b_usd"] / 1e6, 3)}
            for e in every
        ],
        "exposure_height": 60 + BAR_PX * len(every),
        "rows": [account_view(r) for r in page],
    }


class BookViews:
    """The dashboard's formatted fields per tenant, for the book update last formatted: every
    dashboard of a tenant shows the same figures of the same update, and formatting them once per
    tab made the portal's work per update grow with its tabs. The views are shared and never
    changed in place (a tab's state gets a new one with each update). Bounded: the least recently
    shown tenants go."""

    def __init__(self, tenants: int = 1024) -> None:
        self._tenants = tenants
        self._views: OrderedDict[int, tuple[tuple[int, int, float], dict[str, Any]]] = OrderedDict()

    def view(self, tenant_id: int, replica: TenantReplica) -> dict[str, Any]:
        """The fields of `replica` as it is now (its epoch, version and stamp name the update)."""
        key = (replica.epoch, replica.version, replica.sent_at)
        cached = self._views.get(tenant_id)
        if cached is None or cached[0] != key:
            cached = (key, _book_view(replica))
            self._views[tenant_id] = cached
        self._views.move_to_end(tenant_id)
        while len(self._views) > self._tenants:
            self._views.popitem(last=False)
        return cached[1]


BOOK_VIEWS = BookViews()


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
    exposure_height: rx.Field[int] = rx.field(120)
    # the dealer's desk (`veles_ui.state.desk`)
    closest: rx.Field[list[dict[str, str]]] = rx.field(cast(list[dict[str, str]], []))
    today: rx.Field[list[dict[str, str]]] = rx.field(cast(list[dict[str, str]], []))
    connections: rx.Field[list[dict[str, str]]] = rx.field(cast(list[dict[str, str]], []))
    today_version: rx.Field[int] = rx.field(-1)  # the book version `today` was summed from
    # how many times an account entered margin call while this tab watched (`margin_call_entries`),
    # and the last ones: assets/margin_sound.js rings once each time the count moves
    alarm_seq: rx.Field[int] = rx.field(0)
    alarm_logins: rx.Field[str] = rx.field("")

    def _show(self, replica: TenantReplica, view: dict[str, Any]) -> None:
        for name, value in view.items():
            setattr(self, name, value)
        if replica.sent_at:
            self.latency_ms = f"{(time.time() - replica.sent_at) * 1000:,.0f} ms"

    def _shows(self, path: str) -> bool:
        return path == "/dashboard"

    @rx.event(background=True)
    async def stream(self) -> None:
        """Follow the tenant's book while this tab shows the dashboard (one stream per tab): one
        hold of the tab's state per update, which checks the stream is still current and shows it."""
        shown, summed = -1, 0.0  # the desk reader's generation last shown, and when
        called: frozenset[int] | None = None  # in margin call at the last update (None: none seen yet)
        async for update in self._updates():
            replica, desk = update.replica, tenant_desk(update.tenant_id)
            # the desk's slower reads, shared by the tenant's dashboards and never in the book's way
            desk.poke(update.tenant_id, [r["login"] for r in closest_to_stop_out(replica.rows.values())])
            today: list[dict[str, str]] | None = None
            if desk.generation != shown or time.monotonic() - summed >= DESK_EVERY_S:
                shown, summed = desk.generation, time.monotonic()
                today, connections = today_view(replica, desk.deals), freshness_view(desk.info)
            entered: list[int] = []
            if replica.rows:  # the first book this tab sees is the baseline, not news
                called, entered = margin_call_entries(called, replica.rows.values())
            closest = closest_view(replica, desk.distances)
            view = BOOK_VIEWS.view(update.tenant_id, replica)
            async with self:
                if not self._still_current(update):
                    break
                self._show(replica, view)
                if entered:
                    self.alarm_seq += 1
                    self.alarm_logins = ", ".join(map(str, entered))
                self.closest = closest
                if today is not None:  # summed from this very update: the version says so
                    self.today, self.connections, self.today_version = today, connections, replica.version
