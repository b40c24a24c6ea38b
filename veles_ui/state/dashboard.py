"""The live dashboard: book totals and a page of accounts, streamed from the engine."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, cast

import reflex as rx

from veles.services.desk import closest_to_stop_out, margin_call_entries
from veles.services.live import TenantReplica
from veles_ui.format import DASH, account_view, exposure_view, money, percent, sign_color
from veles_ui.state.desk import closest_view, freshness_view, tenant_desk, today_view
from veles_ui.state.flow import PANEL_INTERVAL, FlowDeskState, flow_panel_view
from veles_ui.state.stream import PortalStream
from veles_ui.state.tenant_push import TenantRooms, field_key, send

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


@dataclass
class TenantDesk:
    """What every dashboard of a tenant is pushed, as of the book update last seen (`key`): the
    dashboard's fields and the flow panel's (refreshed at most once per PANEL_INTERVAL), and the
    accounts in margin call, against which each tab finds its own alarms."""

    key: tuple[int, int, float] = (-1, -1, 0.0)
    dashboard: dict[str, Any] = field(default_factory=dict)
    panel: dict[str, Any] = field(default_factory=dict)
    panel_due: bool = False  # the panel was refreshed with this update: the push carries it
    called: frozenset[int] = frozenset()
    desk_shown: int = -1  # the desk reader's generation last summed, and when
    desk_summed: float = 0.0
    panel_at: float = 0.0
    today: dict[str, Any] = field(default_factory=dict)
    pushed: tuple[int, int, float] | None = None  # the update last pushed to the tenant's room

    def claim(self) -> bool:
        """Whether the caller is the first of the tenant's tab streams to push this update (and now
        the one who must). Claimed before anything is awaited, so a second stream woken by the same
        update finds it taken."""
        if self.pushed == self.key:
            return False
        self.pushed = self.key
        return True

    def delta(self, everything: bool) -> dict[str, dict[str, Any]]:
        """The push as Reflex's frontend takes it; `everything`: with the panel even when not due
        (a tab that has just joined has none)."""
        delta = {_DASHBOARD: {field_key(k): v for k, v in self.dashboard.items()}}
        if everything or self.panel_due:
            delta[_PANEL] = {field_key(k): v for k, v in self.panel.items()}
        return delta


class TenantDesks:
    """One TenantDesk per tenant, brought up to date by the first of its tabs' streams to see each
    book update; the rest find it done. Bounded: the least recently updated tenants go."""

    def __init__(self, tenants: int = 1024) -> None:
        self._tenants = tenants
        self._desks: OrderedDict[int, TenantDesk] = OrderedDict()

    def update(self, tenant_id: int, replica: TenantReplica) -> TenantDesk:
        """The tenant's desk as of `replica` (built now if this update is new to it)."""
        key = (replica.epoch, replica.version, replica.sent_at)
        shared = self._desks.get(tenant_id)
        if shared is None:
            shared = self._desks[tenant_id] = TenantDesk()
        self._desks.move_to_end(tenant_id)
        while len(self._desks) > self._tenants:
            self._desks.popitem(last=False)
        if shared.key != key:
            _refresh(shared, tenant_id, replica)
            shared.key = key
        return shared


def _refresh(shared: TenantDesk, tenant_id: int, replica: TenantReplica) -> None:
    """Rebuild the pushed fields for a new book update: once per tenant, not once per tab."""
    desk = tenant_desk(tenant_id)
    # the desk's slower reads, shared by the tenant's dashboards and never in the book's way
    desk.poke(tenant_id, [r["login"] for r in closest_to_stop_out(replica.rows.values())])
    now = time.monotonic()
    if desk.generation != shared.desk_shown or now - shared.desk_summed >= DESK_EVERY_S:
        shared.desk_shown, shared.desk_summed = desk.generation, now
        # summed from this very update: the version says so
        shared.today = {"today": today_view(replica, desk.deals),
                        "connections": freshness_view(desk.info, desk.servers),
                        "today_version": replica.version}
    shared.panel_due = not shared.panel or now - shared.panel_at >= PANEL_INTERVAL
    if shared.panel_due:
        shared.panel, shared.panel_at = flow_panel_view(replica), now
    shared.called, _ = margin_call_entries(None, replica.rows.values())
    latency = f"{(time.time() - replica.sent_at) * 1000:,.0f} ms" if replica.sent_at else DASH
    shared.dashboard = {**_book_view(replica), "latency_ms": latency,
                        "closest": closest_view(replica, desk.distances), **shared.today}


TENANT_DESKS = TenantDesks()
ROOMS = TenantRooms("dashboard")
# Seconds between two looks, per tab, at whether it still shows the dashboard (a hold of the tab's
# state: with Redis a lease round trip). A tab that moved on leaves its tenant's room by then.
CHECK_EVERY_S = 1.0


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

    def _shows(self, path: str) -> bool:
        return path == "/dashboard"

    @rx.event(background=True)
    async def stream(self) -> None:
        """Follow the tenant's book while this tab shows the dashboard (one stream per tab). The
        figures go to the tenant's room, once per update for all its tabs (`tenant_push`); the
        tab's own state is held only once per CHECK_EVERY_S, to see it still shows the
        dashboard, and when one of its alarms rings."""
        sid, tenant_id, membership = "", 0, object()
        called: frozenset[int] | None = None  # in margin call at the last update (None: none seen yet)
        checked = time.monotonic()
        try:
            async for update in self._updates():
                fresh = not sid
                if fresh:
                    async with self:
                        if not self._still_current(update):
                            break
                        sid, tenant_id = self.router.session.session_id, update.tenant_id
                    membership = await ROOMS.join(sid, tenant_id)
                shared = TENANT_DESKS.update(tenant_id, update.replica)
                if shared.claim():
                    await ROOMS.broadcast(tenant_id, shared.delta(everything=False))
                elif fresh:  # this update went out before the tab joined
                    await send(sid, shared.delta(everything=True))
                entered: list[int] = []
                if update.replica.rows:  # the first book this tab sees is the baseline, not news
                    entered = [] if called is None else sorted(shared.called - called)
                    called = shared.called
                if entered or time.monotonic() - checked >= CHECK_EVERY_S:
                    checked = time.monotonic()
                    async with self:
                        if not self._still_current(update):
                            break
                        if entered:
                            self.alarm_seq += 1
                            self.alarm_logins = ", ".join(map(str, entered))
        finally:
            if sid:
                await ROOMS.leave(sid, tenant_id, membership)


# How the frontend names the two states a dashboard push updates.
_DASHBOARD = DashboardState.get_full_name()
_PANEL = FlowDeskState.get_full_name()
