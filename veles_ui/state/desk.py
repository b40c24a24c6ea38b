"""The dealer's desk on the dashboard: the views of `veles.services.desk`'s figures, and the
reader that refreshes the slower ones (today's deals from the database, the connections' freshness
from the engine) at their own pace beside the book's stream, off the event loop.

One reader per tenant per portal process (`tenant_desk`), one read under way at a time: however
many dashboards of a broker are open, the day's deal log is summed once per `TODAY_EVERY_S`, in a
thread. (A separate per-process cache of the day's sums did that before the reader became the
tenant's; it held the same answer twice.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from veles.config import get_settings
from veles.services import desk
from veles.services.connection_names import connection_names
from veles.services.desk_engine import desk_info
from veles.services.live import TenantReplica, get_live_feed
from veles_ui.format import DASH, money, percent, price, sign_color, state_color

log = logging.getLogger(__name__)

TODAY_EVERY_S = 5.0  # the deal log is written every ~0.5 s; the day's sums need no fresher answer
FRESH_EVERY_S = 1.0
DISTANCE_EVERY_S = 3.0  # the closest accounts' positions, for their distance to stop-out
AMBER_S, RED_S = 5.0, 30.0  # a connection's newest quote older than these looks stale
TENANT_READERS = 1024  # tenants whose desk reader a portal process keeps (least recently used go)


def closest_view(replica: TenantReplica, distances: dict[int, dict[str, Any]] | None = None
                 ) -> list[dict[str, str]]:
    """The "closest to stop-out" panel's rows, each login a link to its page, with how far its
    largest position may move against it before stop-out (`desk.stop_out_distance`)."""
    distances = distances or {}
    views = []
    for r in desk.closest_to_stop_out(replica.rows.values()):
        view = {"login": str(r["login"]), "href": f"/accounts/{r['login']}", "group": r["group"],
                "book": r["book"], "currency": r["currency"], "equity": money(r["equity"]),
                "margin": money(r["margin"]), "margin_level": percent(r["margin_level"]),
                "state": r["state"].replace("_", " "), "state_color": state_color(r["state"]),
                "distance": DASH}
        d = distances.get(r["login"])
        if d is not None:
            move = "-" if d["long"] else "+"
            reach = "below zero: not on its own" if d["price"] is None else price(d["price"], d["digits"])
            view["distance"] = f"{d['symbol']} {move}{max(d['fraction'], 0.0) * 100:,.2f}% → {reach}"
        views.append(view)
    return views


def _money_cell(view: dict[str, str], key: str, minor: int) -> None:
    view[key] = desk.minor_text(minor)
    view[f"{key}_color"] = sign_color(minor)


def today_view(replica: TenantReplica, deals: dict[int, dict[str, int]]) -> list[dict[str, str]]:
    """One row per deposit currency: P/L today (closed + floating) per book, deposits,
    withdrawals and volume, each an exact sum of minor units in that currency."""
    views = []
    for day in desk.today_by_currency(replica.rows.values(), deals):
        view = {"currency": day.currency, "accounts": str(day.accounts), "volume": desk.lots_text(day.volume)}
        for book in ("A", "B"):
            b = book.lower()
            _money_cell(view, f"closed_{b}", day.closed[book])
            _money_cell(view, f"floating_{b}", day.floating[book])
            _money_cell(view, f"total_{b}", day.total(book))
        _money_cell(view, "deposits", day.deposits)
        _money_cell(view, "withdrawals", day.withdrawals)
        views.append(view)
    return views


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "none yet"
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.0f} min"


def freshness_view(info: dict[str, Any], servers: dict[str, str] | None = None) -> list[dict[str, str]]:
    """A badge per connection, by its name where `servers` names it (`connection_names`): age of
    its newest quote and deal, coloured by the quote's age."""
    views, servers = [], servers or {}
    for c in desk.connection_freshness(info):
        age = c["quote_age"]
        color = "gray" if age is None else "grass" if age < AMBER_S else "amber" if age < RED_S else "tomato"
        cid = c["connection_id"]
        views.append({"connection_id": cid, "name": servers.get(cid, cid), "quote": _age(age),
                      "deal": _age(c["deal_age"]), "color": color})
    return views


Deals = dict[int, dict[str, int]]  # login -> the day's sums (`desk.deals_today`)


def read_deals_today(tenant_id: int, day: datetime) -> Deals:
    """The tenant's deal sums since `day` from the deal log. Blocks on the database: the reader
    runs it in a thread."""
    return desk.deals_today(get_settings().database_url, tenant_id, day)


class DeskReader:
    """Reads today's deals and the connections' freshness, each at most every its interval; what
    it could not read (the database or the engine away) keeps its last answer, except that sums
    from before midnight UTC are not today's. `read_deals` and `today` are the deal log and the
    clock (a test's own, so nothing waits for midnight)."""

    def __init__(self, read_deals: Callable[[int, datetime], Deals] = read_deals_today,
                 today: Callable[[], datetime] = desk.start_of_day) -> None:
        self._today_at = -TODAY_EVERY_S
        self._fresh_at = -FRESH_EVERY_S
        self._distance_at = -DISTANCE_EVERY_S
        self._read_deals = read_deals
        self._today = today
        self.deals: Deals = {}
        self.deals_day: datetime | None = None  # the day `deals` sums
        self.deal_reads = 0  # reads of the deal log started (a test or a metric counts them)
        self.info: dict[str, Any] = {}
        self.servers: dict[str, str] = {}  # connection id -> name (`connection_names`)
        self.distances: dict[int, dict[str, Any]] = {}
        # How many reads brought something new: a dashboard shows the desk again when it moved.
        self.generation = 0
        self._reading: asyncio.Task[bool] | None = None

    def _due(self, closest: list[int] | None) -> bool:
        now = time.monotonic()
        return ((bool(closest) and now - self._distance_at >= DISTANCE_EVERY_S)
                or now - self._today_at >= TODAY_EVERY_S or now - self._fresh_at >= FRESH_EVERY_S)

    def poke(self, tenant_id: int, closest: list[int] | None = None) -> None:
        """Start reading what is due, unless a read is already under way: every dashboard of the
        tenant in this process pokes on each book update and all of them share the one read
        (`tenant_desk`). Each read is bounded by the engine's and the database's own timeouts."""
        if (self._reading is None or self._reading.done()) and self._due(closest):
            self._reading = asyncio.create_task(self._read(tenant_id, closest))

    async def _read(self, tenant_id: int, closest: list[int] | None) -> bool:
        changed = await self.refresh(tenant_id, closest)
        if changed:
            self.generation += 1
        return changed

    async def _distances(self, tenant_id: int, logins: list[int]) -> dict[int, dict[str, Any]]:
        feed = get_live_feed()
        found = await asyncio.gather(*(feed.account_detail(tenant_id, login) for login in logins),
                                     return_exceptions=True)
        distances = {}
        for login, detail in zip(logins, found, strict=True):
            if detail is None or isinstance(detail, BaseException):
                continue
            d = desk.stop_out_distance(detail.figures, detail.stop_out_equity, detail.quotes)
            if d is not None:
                d["digits"] = detail.digits.get(d["symbol"])
                distances[login] = d
        return distances

    async def _read_today(self, tenant_id: int) -> bool:
        """The day's deal sums, read in a thread; whether `deals` changed. A failed read keeps the
        last sums if they are today's, and drops them if midnight passed since."""
        day = self._today()
        self.deal_reads += 1
        try:
            self.deals = await asyncio.to_thread(self._read_deals, tenant_id, day)
        except Exception:
            log.warning("tenant %s: today's deals unavailable", tenant_id, exc_info=True)
            if self.deals_day == day or not self.deals:
                return False
            self.deals = {}  # yesterday's sums shown as today's would be wrong, not late
        self.deals_day = day
        return True

    async def refresh(self, tenant_id: int, closest: list[int] | None = None) -> bool:
        """Read what is due; whether anything new was read."""
        now, changed, settings = time.monotonic(), False, get_settings()
        if closest and now - self._distance_at >= DISTANCE_EVERY_S:
            self._distance_at = now
            try:
                self.distances = await self._distances(tenant_id, closest)
                changed = True
            except Exception:
                log.debug("tenant %s: distances to stop-out unavailable", tenant_id, exc_info=True)
        if now - self._today_at >= TODAY_EVERY_S:
            self._today_at = now
            changed = await self._read_today(tenant_id) or changed
        if now - self._fresh_at >= FRESH_EVERY_S:
            self._fresh_at = now
            try:
                self.info = await desk_info(settings, tenant_id, logins=False)
                changed = True
            except Exception:  # no engine (no connection yet) or a supervisor restarting
                log.debug("tenant %s: connection freshness unavailable", tenant_id, exc_info=True)
                self.info = {}
            try:  # the badges' names: read in a thread, at most every few seconds per tenant here
                if self.info.get("connections"):
                    self.servers = await connection_names(settings.database_url, tenant_id)
            except Exception:  # the database away: the names last read (or the ids) meanwhile
                log.debug("tenant %s: connection names unavailable", tenant_id, exc_info=True)
        return changed


@lru_cache(maxsize=TENANT_READERS)
def tenant_desk(tenant_id: int) -> DeskReader:
    """The one desk reader of `tenant_id` in this portal process. Today's deals, the connections'
    freshness and the closest accounts' distances are the tenant's, not a tab's: a reader per
    dashboard made each of N open dashboards ask the engine and the database for the same figures
    (N Ray calls a second, N queries every 5 s), which at 100 dashboards was most of the portal's
    work and kept its event loop and thread pool from the book updates themselves."""
    return DeskReader()
