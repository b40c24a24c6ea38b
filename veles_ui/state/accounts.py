"""The accounts portal: a sortable, filterable page of the book, and one account in detail.

Both follow the tenant's book like the dashboard does (one background stream per tab), but stop
as soon as the tab leaves their page, so a tab that wandered through the portal runs no streams
for screens it no longer shows. Per-session state holds only what is on screen.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import reflex as rx
from reflex.event import EventSpec

from actors.mt5_account import AccountDetail
from actors.wire import Row
from models.db import tenant_session
from veles.config import get_settings
from veles.risk.alerts import FLOW_LABELS
from veles.risk.events import DealKind
from veles.services.connection_names import connection_names
from veles.services.desk import minor_text, movements, table_csv
from veles.services.errors import NotFound
from veles.services.history import Resolution, account_history
from veles.services.live import TenantReplica, get_live_feed
from veles.services.permissions import Permission
from veles_ui.format import DASH, account_view, clock, money, percent, price, sign_color, state_color
from veles_ui.state.flow import flow_view
from veles_ui.state.session import USER_ERRORS
from veles_ui.state.stream import PortalStream, book_stamp

log = logging.getLogger(__name__)

PAGE_SIZE = 25
# The accounts table's columns (header, key of `account_view`), which its CSV export writes too.
CSV_COLUMNS = (
    ("Login", "login"), ("Name", "name"), ("Country", "country"), ("Server", "server"), ("Group", "group"),
    ("Book", "book"), ("Currency", "currency"),
    ("Leverage", "leverage"), ("Balance", "balance"), ("Equity", "equity"), ("Margin level", "margin_level"),
    ("Floating P/L", "profit"), ("Drawdown", "drawdown"), ("Risk score", "risk_score"), ("State", "state"),
)
SORTABLE = frozenset(
    {"login", "name", "country", "server", "group", "book", "currency", "leverage", "balance", "equity",
     "margin_level", "profit",
     "drawdown", "risk_score", "state", "toxicity", "flow_label"}
)
# The accounts list's margin-state filter (the dashboard's counts link here with `?state=`).
STATES = {"margin_call": "Margin call", "stop_out": "Stop-out"}
EN_DASH = "\u2013"
# Each account page asks its account actor at most this often, however fast the book moves.
DETAIL_INTERVAL = 0.5
# The history chart's windows: how far back, and the bucket width that keeps each under ~400
# points (the recorder stores one point a minute).
HISTORY_WINDOWS: dict[str, tuple[timedelta, Resolution]] = {
    "1h": (timedelta(hours=1), Resolution.MINUTE),
    "6h": (timedelta(hours=6), Resolution.MINUTE),
    "24h": (timedelta(hours=24), Resolution.FIVE_MINUTES),
    "7d": (timedelta(days=7), Resolution.HOUR),
}
DEFAULT_WINDOW = "6h"
HISTORY_REFRESH_S = 60.0  # the recorder adds a point a minute: re-reading more often shows nothing new


class AccountsState(PortalStream):
    """The visible page of accounts and how it is chosen (sort, filter, offset)."""

    sort: rx.Field[str] = rx.field("login")
    descending: rx.Field[bool] = rx.field(False)
    query: rx.Field[str] = rx.field("")
    state_filter: rx.Field[str] = rx.field("")  # "" (any), "margin_call" or "stop_out"
    label: rx.Field[str] = rx.field("")  # a toxic-flow label the rows must carry ("": any)
    offset: rx.Field[int] = rx.field(0)
    total: rx.Field[int] = rx.field(0)
    rows: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    stamp: rx.Field[str] = rx.field("")  # the book update shown (`book_stamp`)
    _servers: dict[str, str] = {}  # backend only: connection id -> name (`connection_names`)

    def _shows(self, path: str) -> bool:
        return path == "/accounts"

    @rx.var
    def range_label(self) -> str:
        """'26-50 of 120' (with an en dash): which rows of how many matching ones are shown."""
        if not self.total:
            return "0 of 0"
        last = min(self.offset + PAGE_SIZE, self.total)
        return f"{self.offset + 1}{EN_DASH}{last} of {self.total}"

    @rx.var
    def has_prev(self) -> bool:
        """Whether there is a page before this one."""
        return self.offset > 0

    @rx.var
    def has_next(self) -> bool:
        """Whether there is a page after this one."""
        return self.offset + PAGE_SIZE < self.total

    @rx.var
    def state_label(self) -> str:
        """The margin-state filter as the page names it ('' when none)."""
        return STATES.get(self.state_filter, "")

    def _show(self, replica: TenantReplica) -> None:
        page, self.total = replica.page(
            sort=self.sort, descending=self.descending, offset=self.offset, limit=PAGE_SIZE, query=self.query,
            state=self.state_filter, label=self.label, servers=self._servers,
        )
        if not page and self.offset:  # the book or the filter shrank under this page
            self.offset = max(0, (self.total - 1) // PAGE_SIZE * PAGE_SIZE)
            page, self.total = replica.page(
                sort=self.sort, descending=self.descending, offset=self.offset, limit=PAGE_SIZE,
                query=self.query, state=self.state_filter, label=self.label, servers=self._servers,
            )
        self.rows = [account_view(r, self._servers) | flow_view(r) for r in page]
        self.stamp = book_stamp(replica)

    async def _refresh(self) -> None:
        """Show the new choice now rather than at the next book change, to a session that still
        holds (an ended one gets nothing: its watch sends the tab to sign in)."""
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
        except USER_ERRORS:
            self.rows, self.total = [], 0
            return
        self._show(get_live_feed().replica(identity.tenant_id))

    @rx.event
    async def sort_by(self, key: str) -> None:
        """Click on a column header: sort by it, or reverse the order if it is already the key."""
        if key not in SORTABLE:
            return
        self.descending = not self.descending if key == self.sort else False
        self.sort = key
        await self._refresh()

    @rx.event
    async def set_query(self, query: str) -> None:
        """The filter box (a login or part of a group, client name, country or server); back to
        the first page."""
        self.query, self.offset = query, 0
        await self._refresh()

    @rx.event
    def load_filter(self) -> None:
        """Page load: the margin-state filter from `?state=` (an unknown value means none)."""
        chosen = self.router.url.query_parameters.get("state", "")
        self.state_filter = chosen if chosen in STATES else ""
        self.offset = 0

    @rx.event
    async def clear_state_filter(self) -> None:
        """Show every margin state again."""
        self.state_filter, self.offset = "", 0
        await self._refresh()

    @rx.event
    async def export_csv(self) -> EventSpec | None:
        """Every account the filters keep, in the table's sort order and its columns and figures
        as shown (not only this page), as a CSV download."""
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
        except USER_ERRORS:
            return None
        servers = self._servers
        rows, _ = get_live_feed().replica(identity.tenant_id).page(
            sort=self.sort, descending=self.descending, limit=None, query=self.query, state=self.state_filter,
            servers=servers)
        views = (account_view(row, servers) for row in rows)
        data = table_csv([c[0] for c in CSV_COLUMNS], [c[1] for c in CSV_COLUMNS], views)
        return rx.download(data=data, filename="accounts.csv")

    @rx.event
    async def set_label(self, label: str) -> None:
        """The toxic-flow label filter ("any" for every account); back to the first page."""
        self.label, self.offset = ("" if label == "any" or label not in (*FLOW_LABELS, "ordinary")
                                   else label), 0
        await self._refresh()

    @rx.event
    async def next_page(self) -> None:
        """The following PAGE_SIZE rows."""
        if self.offset + PAGE_SIZE < self.total:
            self.offset += PAGE_SIZE
            await self._refresh()

    @rx.event
    async def prev_page(self) -> None:
        """The preceding PAGE_SIZE rows."""
        self.offset = max(0, self.offset - PAGE_SIZE)
        await self._refresh()

    @rx.event(background=True)
    async def stream(self) -> None:
        """Refresh the visible page at the book's pace while the tab shows /accounts (filtered by
        the label in `?label=`, as the dashboard's toxic-flow panel links)."""
        async with self:
            wanted = str(self.router.page.params.get("label", ""))
            if wanted in (*FLOW_LABELS, "ordinary"):
                self.label, self.offset = wanted, 0
        servers: dict[str, str] = {}
        async for update in self._updates():
            try:  # read at most every few seconds per tenant in this process, in a thread
                servers = await connection_names(get_settings().database_url, update.tenant_id)
            except Exception:  # the database away: the names last read (or the ids) meanwhile
                log.warning("tenant %s: connection names not read", update.tenant_id, exc_info=True)
            async with self:
                if not self._still_current(update):
                    break
                self._servers = servers
                self._show(update.replica)


def _position_view(detail: AccountDetail) -> list[dict[str, str]]:
    views = []
    for position in detail.positions:
        profit = detail.profits.get(position.ticket)
        quote = detail.quotes.get(position.symbol)
        digits = detail.digits.get(position.symbol)
        views.append(
            {
                "ticket": str(position.ticket),
                # the server's clock, as the deals table shows it; a dash where the feed had none
                "time": clock(datetime.fromtimestamp(position.time_msc / 1000, UTC)) if position.time_msc
                else DASH,
                "sl": price(position.sl, digits) if position.sl else DASH,
                "tp": price(position.tp, digits) if position.tp else DASH,
                "symbol": position.symbol,
                "side": position.side.value,
                "volume": money(position.volume),
                "price_open": price(position.price_open, detail.digits.get(position.symbol)),
                # the price the position would close at now: bid for a buy, ask for a sell
                "price_current": DASH if quote is None else price(
                    quote[0] if position.side.value == "buy" else quote[1],
                    detail.digits.get(position.symbol)),
                "swap": money(position.swap),
                "commission": money(position.commission),
                "profit": money(profit),
                "profit_color": sign_color(profit),
            }
        )
    return views


def _deal_view(detail: AccountDetail) -> list[dict[str, str]]:
    """The account's recent deals as the table shows them (newest first, as the engine keeps them).
    A balance or credit operation shows its amount as the profit, as MT5 does, and has no price."""
    views = []
    for deal in detail.deals:
        trade = deal.kind in (DealKind.BUY, DealKind.SELL)
        profit = deal.profit if trade else deal.amount
        views.append(
            {
                "ticket": str(deal.ticket),
                "time": clock(datetime.fromtimestamp(deal.time_msc / 1000, UTC)),
                "symbol": deal.symbol or DASH,
                "type": deal.kind.value,
                "entry": deal.entry.value if trade else DASH,
                "volume": money(deal.volume) if trade else DASH,
                "price": price(deal.price, detail.digits.get(deal.symbol)) if trade else DASH,
                "commission": money(deal.commission),
                "swap": money(deal.swap),
                "profit": money(profit),
                "profit_color": sign_color(profit),
            }
        )
    return views


def read_history(tenant_id: int, login: int, window: str) -> list[dict[str, Any]]:
    """The account's equity and margin level over the window up to now, as the chart plots them
    (UTC times; margin level None where no margin was in use, which the chart leaves as a gap).
    Blocks on the database: the stream runs it in a thread."""
    span, resolution = HISTORY_WINDOWS[window]
    end = datetime.now(UTC) + timedelta(minutes=1)
    query = {"start": end - span, "end": end, "resolution": resolution}
    try:
        with tenant_session(get_settings().database_url, tenant_id) as db:
            points = account_history(db, tenant_id, login, query)
    except NotFound:  # not recorded yet (or not this tenant's): an empty chart
        return []
    stamp = "%m-%d %H:%M" if span > timedelta(days=1) else "%H:%M"
    return [
        {"time": p.ts.astimezone(UTC).strftime(stamp), "equity": round(p.equity, 2),
         "margin_level": None if p.margin_level is None else round(p.margin_level, 2)}
        for p in points
    ]


def read_movements(tenant_id: int, login: int) -> tuple[list[dict[str, str]], str, str]:
    """The account's deposits and withdrawals from the deal log (newest first, at most 50) and
    the sums of those shown, in and out, exact in minor units. Blocks on the database: the stream
    runs it in a thread."""
    found = movements(get_settings().database_url, tenant_id, login)
    views = [
        {"ticket": str(m["ticket"]), "time": clock(m["time"]),
         "kind": "deposit" if m["amount"] > 0 else "withdrawal",
         "amount": minor_text(m["amount"]), "amount_color": sign_color(m["amount"]), "comment": m["comment"]}
        for m in found
    ]
    deposits = sum(m["amount"] for m in found if m["amount"] > 0)
    withdrawals = sum(m["amount"] for m in found if m["amount"] < 0)
    return views, minor_text(deposits), minor_text(withdrawals)


def _parse_login(path: str) -> int:
    """The login in '/accounts/<login>'; 0 (never a real login) if it is not a number."""
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class AccountDetailState(PortalStream):
    """One account's figures, open positions and recent deals, as its own tenant's supervisor
    reports them."""

    account: rx.Field[int] = rx.field(0)
    # "loading" until the first answer, then "found" or "missing" (unknown or another tenant's).
    status: rx.Field[str] = rx.field("loading")
    currency: rx.Field[str] = rx.field("")
    group: rx.Field[str] = rx.field("")
    margin_state: rx.Field[str] = rx.field("")
    state_color: rx.Field[str] = rx.field("gray")
    balance: rx.Field[str] = rx.field(DASH)
    credit: rx.Field[str] = rx.field(DASH)
    equity: rx.Field[str] = rx.field(DASH)
    margin: rx.Field[str] = rx.field(DASH)
    free_margin: rx.Field[str] = rx.field(DASH)
    margin_level: rx.Field[str] = rx.field(DASH)
    profit: rx.Field[str] = rx.field(DASH)
    profit_color: rx.Field[str] = rx.field("gray")
    drawdown: rx.Field[str] = rx.field(DASH)
    positions: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    deals: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    history: rx.Field[list[dict[str, Any]]] = rx.field(default_factory=list)
    movements: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)  # deposits, withdrawals
    deposits: rx.Field[str] = rx.field(DASH)
    withdrawals: rx.Field[str] = rx.field(DASH)
    history_window: rx.Field[str] = rx.field(DEFAULT_WINDOW)
    stamp: rx.Field[str] = rx.field("")  # the newest book update this page followed (`book_stamp`)

    def _shows(self, path: str) -> bool:
        return path.startswith("/accounts/")

    @rx.event
    async def set_history_window(self, choice: str | list[str]) -> None:
        """Show another window of the history chart (a crafted unknown window is ignored). The
        segmented control sends one value; Radix's type allows a list, which is never sent here."""
        window = choice if isinstance(choice, str) else next(iter(choice), "")
        if window not in HISTORY_WINDOWS:
            return
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
            history = await asyncio.to_thread(read_history, identity.tenant_id, self.account, window) \
                if self.account else []
        except USER_ERRORS:
            return  # the session ended: the page guard sends the tab to sign in
        except Exception:  # the database is away: an empty chart; the stream reads again in a minute
            log.warning("account %s history unavailable", self.account, exc_info=True)
            history = []
        self.history_window, self.history = window, history

    @rx.event
    def load(self) -> None:
        """Page load: forget the previous account so its figures never show under this login; a login
        outside the tenant's book, once this process holds the book, is not found at once."""
        self.account = _parse_login(self.router.url.path)
        self._show(None)
        self.history, self.movements, self.deposits, self.withdrawals = [], [], DASH, DASH
        replica = get_live_feed().replica(self.tenant_id) if self.tenant_id else None
        if replica is None or replica.version < 0 or self.account in replica.rows:
            self.status = "loading"  # the stream fills it in (or says missing once the book is here)

    def _show(self, detail: AccountDetail | None) -> None:
        self.status = "missing" if detail is None else "found"
        self.positions = [] if detail is None else _position_view(detail)
        self.deals = [] if detail is None else _deal_view(detail)
        f = detail.figures if detail is not None else None
        self.group, self.currency = (f.group, f.currency) if f else ("", "")
        self.margin_state = f.state.replace("_", " ") if f else ""
        self.state_color = state_color(f.state if f else "")
        self.balance = money(f.balance if f else None)
        self.credit = money(f.credit if f else None)
        self.equity = money(f.equity if f else None)
        self.margin = money(f.margin if f else None)
        self.free_margin = money(f.free_margin if f else None)
        self.margin_level = percent(f.margin_level if f else None)
        self.profit = money(f.profit if f else None)
        self.profit_color = sign_color(f.profit if f else None)
        self.drawdown = percent(f.drawdown * 100.0 if f else None)

    @rx.event(background=True)
    async def stream(self) -> None:
        """Re-ask for the account whenever its row in the book changes, at most every DETAIL_INTERVAL."""
        feed = get_live_feed()
        asked: tuple[int, Row | None] | None = None
        last = 0.0
        charted: tuple[int, float] | None = None  # the login whose history was read, and when
        async for replica in self._follow():
            async with self:  # the book moved: the page's figures are as fresh as this update
                login, tenant_id, window = self.account, self.tenant_id, self.history_window
                self.stamp = book_stamp(replica)
            row = replica.rows.get(login)
            if row is not None and (charted is None or charted[0] != login
                                    or time.monotonic() - charted[1] >= HISTORY_REFRESH_S):
                charted = (login, time.monotonic())
                try:
                    history = await asyncio.to_thread(read_history, tenant_id, login, window)
                    moved = await asyncio.to_thread(read_movements, tenant_id, login)
                except Exception:  # the database is away: keep the chart, try again next minute
                    log.warning("account %s history unavailable", login, exc_info=True)
                else:
                    async with self:
                        if self.account == login:
                            self.movements, self.deposits, self.withdrawals = moved
                        if self.account == login and self.history_window == window:
                            self.history = history
            if asked is not None and asked[0] == login and asked[1] is row:
                continue  # this account did not change
            await asyncio.sleep(max(0.0, last + DETAIL_INTERVAL - time.monotonic()))
            last = time.monotonic()
            asked = (login, row)
            try:
                # the book holds every account of this tenant: a login missing from it is not theirs
                detail = await feed.account_detail(tenant_id, login) if login and row is not None else None
            except Exception:  # a supervisor being restarted: keep the figures, ask again next change
                log.warning("account %s detail unavailable", login, exc_info=True)
                asked = None
                continue
            async with self:
                if self.account == login:
                    self._show(detail)
