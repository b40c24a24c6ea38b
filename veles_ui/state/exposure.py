"""The exposure drill-down: net exposure by symbol and by currency over the accounts the filters
keep (server, group, book, deposit currency), and the accounts and positions behind one symbol.

Lots and USD come from the aggregator's per-account entries (`ColumnBook.exposure_entries`), all
read at one moment, so a symbol's account rows add up to its net exactly; volume, average prices
and P/L come from the accounts' own positions (`account_detail`), for the largest accounts of the
symbol. All engine calls are awaited (Ray), never run on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import reflex as rx
from reflex.event import EventSpec

from veles.config import get_settings
from veles.services import desk
from veles.services.desk_engine import desk_info, exposure_entries
from veles.services.live import TenantReplica, get_live_feed
from veles.services.permissions import Permission
from veles_ui.format import DASH, price, sign_color
from veles_ui.state.session import USER_ERRORS
from veles_ui.state.stream import PortalStream, book_stamp

log = logging.getLogger(__name__)

ANY = "all"  # a select's "no filter" value (Radix selects cannot hold an empty value)
ENTRIES_EVERY_S = 1.0
INFO_EVERY_S = 5.0
DETAILS_EVERY_S = 3.0
DETAILED = 40  # accounts of the chosen symbol whose positions are read (largest USD first)
ACCOUNT_COLUMNS = (
    ("Login", "login"), ("Group", "group"), ("Book", "book"), ("Currency", "currency"), ("Net lots", "lots"),
    ("Net USD", "usd"), ("Volume (lots)", "volume"), ("Avg buy", "buy_price"), ("Avg sell", "sell_price"),
    ("Positions", "positions"), ("P/L (deposit ccy)", "pnl"),
)


def _choice(value: str) -> str:
    return "" if value == ANY else value


class ExposureState(PortalStream):
    """What the drill-down shows; refreshed from the engine while the tab shows /exposure."""

    symbol: rx.Field[str] = rx.field("")
    server: rx.Field[str] = rx.field(ANY)
    group: rx.Field[str] = rx.field(ANY)
    book: rx.Field[str] = rx.field(ANY)
    currency: rx.Field[str] = rx.field(ANY)
    servers: rx.Field[list[str]] = rx.field(default_factory=list)
    groups: rx.Field[list[str]] = rx.field(default_factory=list)
    currencies: rx.Field[list[str]] = rx.field(default_factory=list)
    symbols: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    by_currency: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    accounts: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    net_lots: rx.Field[str] = rx.field(DASH)  # the chosen symbol over the filtered accounts
    net_usd: rx.Field[str] = rx.field(DASH)
    book_lots: rx.Field[str] = rx.field(DASH)  # the chosen symbol in the whole book (the aggregator's sums)
    book_usd: rx.Field[str] = rx.field(DASH)
    status: rx.Field[str] = rx.field("loading")  # "loading", "ready", "no engine"
    stamp: rx.Field[str] = rx.field("")

    def _shows(self, path: str) -> bool:
        return path == "/exposure"

    @rx.event
    def load(self) -> None:
        """Page load: the symbol from `?symbol=` (the dashboard's exposure table links here)."""
        self.symbol = self.router.url.query_parameters.get("symbol", "")

    def _filters(self) -> desk.Filters:
        return desk.Filters(_choice(self.server), _choice(self.group), _choice(self.book),
                            _choice(self.currency))

    def _show(self, replica: TenantReplica, read: Read) -> None:
        rows = replica.rows
        self.groups = sorted({r["group"] for r in rows.values()})
        self.currencies = sorted({r["currency"] for r in rows.values()})
        self.servers = sorted(c["connection_id"] for c in read.info.get("connections", []))
        self.stamp = book_stamp(replica)
        if not read.answer:
            return
        server_of = {login: c["connection_id"]
                     for c in read.info.get("connections", []) for login in c["logins"]}
        nets = desk.exposure_by_symbol(read.answer, rows, self._filters(), server_of)
        self.symbols = [self._symbol_view(n) for n in nets]
        self.by_currency = [
            {"currency": c, "usd": desk.minor_text(v), "usd_color": sign_color(v)}
            for c, v in desk.exposure_by_currency(nets, read.info.get("currencies", {}))
        ]
        chosen = next((n for n in nets if n.symbol == self.symbol), None)
        sums = read.answer["sums"].get(self.symbol, [0, 0, 0, 0])
        self.book_lots, self.book_usd = desk.lots_text(sums[0] + sums[2]), desk.minor_text(sums[1] + sums[3])
        self.net_lots = desk.lots_text(chosen.net_lots) if chosen else desk.lots_text(0)
        self.net_usd = desk.minor_text(chosen.net_cents) if chosen else desk.minor_text(0)
        details = read.details if read.detailed == self.symbol else {}
        self.accounts = [self._account_view(a, rows.get(a[0]), details.get(a[0]))
                         for a in (chosen.accounts if chosen else [])]
        self.status = "ready"

    def _symbol_view(self, net: desk.SymbolNet) -> dict[str, str]:
        view = {"symbol": net.symbol, "accounts": str(len(net.accounts)),
                "chosen": "1" if net.symbol == self.symbol else ""}
        for key, lots, cents in (("", net.net_lots, net.net_cents), ("a_", net.lots["A"], net.cents["A"]),
                                 ("b_", net.lots["B"], net.cents["B"])):
            view[f"{key}lots"] = desk.lots_text(lots)
            view[f"{key}usd"] = desk.minor_text(cents)
            view[f"{key}color"] = sign_color(cents)
        return view

    def _account_view(self, entry: list[Any], row: dict[str, Any] | None,
                      detail: dict[str, Any] | None) -> dict[str, str]:
        login, units, cents, book = entry
        digits = detail["digits"] if detail else None
        view = {
            "login": str(login), "href": f"/accounts/{login}", "group": row["group"] if row else DASH,
            "book": book, "currency": row["currency"] if row else DASH, "lots": desk.lots_text(units),
            "usd": desk.minor_text(cents), "usd_color": sign_color(cents),
            "volume": DASH, "buy_price": DASH, "sell_price": DASH, "positions": DASH, "pnl": DASH,
            "pnl_color": "gray",
        }
        if detail:
            view["volume"] = desk.lots_text(detail["volume"])
            view["buy_price"] = DASH if detail["buy_price"] is None else price(detail["buy_price"], digits)
            view["sell_price"] = DASH if detail["sell_price"] is None else price(detail["sell_price"], digits)
            view["positions"] = str(detail["positions"])
            view["pnl"], view["pnl_color"] = desk.minor_text(detail["pnl"]), sign_color(detail["pnl"])
        return view

    @rx.event
    def set_filter(self, name: str, value: str) -> None:
        """One of the four filters (server, group, book, currency); "all" for none. The stream
        shows the result at the book's next update (a quarter of a second)."""
        if name in ("server", "group", "book", "currency"):
            setattr(self, name, value)

    @rx.event
    def choose(self, symbol: str) -> None:
        """Drill into another symbol (its positions are read at the stream's next pass)."""
        self.symbol = symbol

    @rx.event
    async def export_csv(self) -> EventSpec | None:
        """The chosen symbol's account rows as shown (filters applied, largest USD first)."""
        try:
            await self.authorized(Permission.VIEW_RISK)
        except USER_ERRORS:
            return None
        data = desk.table_csv([c[0] for c in ACCOUNT_COLUMNS], [c[1] for c in ACCOUNT_COLUMNS], self.accounts)
        return rx.download(data=data, filename=f"exposure-{self.symbol or 'none'}.csv")

    @rx.event(background=True)
    async def stream(self) -> None:
        """Re-read the engine's entries (each second), connections (every 5 s) and the chosen
        symbol's positions (every 3 s) while the tab shows /exposure; what was read stays in this
        coroutine, only the views go into the tab's state."""
        settings = get_settings()
        read = Read()
        async for replica in self._follow():
            async with self:
                tenant_id, symbol = self.tenant_id, self.symbol
            try:
                await read.refresh(settings, tenant_id)
            except Exception:  # no engine yet, or restarting: keep what is shown
                log.debug("tenant %s: exposure entries unavailable", tenant_id, exc_info=True)
                if not read.answer:
                    async with self:
                        self.status = "no engine"
                continue
            async with self:
                self._show(replica, read)
                logins = [int(a["login"]) for a in self.accounts[:DETAILED]]
            if symbol and logins and read.details_due(symbol):
                read.details = await _read_details(tenant_id, symbol, logins)
                async with self:
                    self._show(replica, read)


class Read:
    """What a drill-down stream last read from the engine, and when."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.details: dict[int, dict[str, Any]] = {}
        self.detailed = ""  # the symbol `details` are of
        self._at = {"entries": -ENTRIES_EVERY_S, "info": -INFO_EVERY_S, "details": -DETAILS_EVERY_S}

    async def refresh(self, settings: Any, tenant_id: int) -> None:
        now = time.monotonic()
        if now - self._at["info"] >= INFO_EVERY_S:
            self._at["info"] = now
            self.info = await desk_info(settings, tenant_id)
        if now - self._at["entries"] >= ENTRIES_EVERY_S:
            self._at["entries"] = now
            self.answer = await exposure_entries(settings, tenant_id)

    def details_due(self, symbol: str) -> bool:
        now = time.monotonic()
        if symbol == self.detailed and now - self._at["details"] < DETAILS_EVERY_S:
            return False
        if symbol != self.detailed:
            self.details = {}
        self._at["details"], self.detailed = now, symbol
        return True


async def _read_details(tenant_id: int, symbol: str, logins: list[int]) -> dict[int, dict[str, Any]]:
    """Position summaries (`desk.position_summary`) of these accounts in `symbol`, asked of the
    engine at once; an account that does not answer is left out (its row shows dashes)."""
    feed = get_live_feed()
    found = await asyncio.gather(*(feed.account_detail(tenant_id, login) for login in logins),
                                 return_exceptions=True)
    details = {}
    for login, detail in zip(logins, found, strict=True):
        if detail is None or isinstance(detail, BaseException):
            continue
        summary = desk.position_summary(detail.positions, detail.profits, symbol)
        summary["digits"] = detail.digits.get(symbol)
        details[login] = summary
    return details
