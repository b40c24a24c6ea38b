"""The dealer's desk: the figures a dealer asks for in the first minute of a shift, from the live
book, the engine and the deal log.

- who is closest to stop-out (`closest_to_stop_out`), ranked by margin level;
- P/L today, closed (the deal log) and floating (the book), A-book against B-book, deposits,
  withdrawals and traded volume today, per deposit currency (`today_by_currency`): accounts keep
  money in their own currency, so totals are never summed across currencies, and every total is
  an integer of minor units that says its currency;
- net exposure by symbol and by currency, and the accounts behind a symbol (`exposure_view`),
  from the aggregator's per-account entries (`ColumnBook.exposure_entries`): integer lot units
  and USD cents that add up to the symbol's net exactly, whatever the filters;
- each connection's freshness (age of its newest quote and deal, `connection_freshness`);
- any table as CSV, exactly as shown (`table_csv`).

Everything here is plain functions of plain data except the three readers at the bottom, which
block (the database) or await the engine: the portal runs the blocking one in a thread.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy import select as select_columns  # sqlmodel's select types at most four columns
from sqlmodel import col, select

from models.db import tenant_session
from models.deals import DealRecord
from veles.risk.money import to_minor

Row = dict[str, Any]
LOT_UNITS = 10**8  # the book's lot unit: 1e-8 lots
CLOSEST = 10  # accounts in the "closest to stop-out" panel
TRADES = ("buy", "sell")


def minor_text(minor: int, digits: int = 2) -> str:
    """Integer minor units as money, without passing through a float: 123456 -> '1,234.56'."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 10**digits)
    return f"{sign}{whole:,}.{cents:0{digits}d}" if digits else f"{sign}{whole:,}"


def lots_text(units: int) -> str:
    """Lot units (1e-8 lots) as lots to two decimals (MT5 volumes step by 0.01 lots)."""
    return minor_text(round(units / 10**6))


def closest_to_stop_out(rows: Iterable[Row], limit: int = CLOSEST) -> list[Row]:
    """The accounts with margin in use, lowest margin level first (the next to be stopped out);
    ties by login. Accounts without margin (no positions) cannot be stopped out and are left out."""
    using = [r for r in rows if r.get("margin_level") is not None]
    using.sort(key=lambda r: (r["margin_level"], r["login"]))
    return using[:limit]


CALLED = frozenset({"margin_call", "stop_out"})  # an account past its margin-call level


def margin_call_entries(before: frozenset[int] | None, rows: Iterable[Row]
                        ) -> tuple[frozenset[int], list[int]]:
    """The logins now at or past margin call, and those of them that entered since `before` (the
    set an earlier call returned), lowest login first. With no `before` (the first book a tab
    sees) nothing has entered: accounts already in margin call when the page opened are not news.
    An account that left margin call and comes back enters again; one going on from margin call to
    stop-out does not."""
    now = frozenset(r["login"] for r in rows if r.get("state") in CALLED)
    return now, [] if before is None else sorted(now - before)


@dataclass
class CurrencyDay:
    """One deposit currency's day, in its minor units: per book (A / B) closed and floating P/L,
    and the money moved and volume traded (lot units)."""

    currency: str
    closed: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})
    floating: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})
    deposits: int = 0
    withdrawals: int = 0  # negative (money out)
    volume: int = 0  # lot units
    accounts: int = 0

    def total(self, book: str) -> int:
        """Closed + floating of one book."""
        return self.closed[book] + self.floating[book]


def today_by_currency(rows: Iterable[Row], deals: Mapping[int, Mapping[str, int]]) -> list[CurrencyDay]:
    """Per deposit currency (largest number of accounts first): floating P/L of the book's rows,
    and today's deal sums (`deals_today`) of the logins in the book, split by book. Deals of logins
    no longer in the book are left out: their currency and book are unknown."""
    days: dict[str, CurrencyDay] = {}
    for row in rows:
        day = days.get(row["currency"]) or days.setdefault(row["currency"], CurrencyDay(row["currency"]))
        book = "A" if row["book"] == "A" else "B"
        day.accounts += 1
        day.floating[book] += to_minor(row["profit"])
        mine = deals.get(row["login"])
        if mine:
            day.closed[book] += mine["closed"]
            day.deposits += mine["deposits"]
            day.withdrawals += mine["withdrawals"]
            day.volume += mine["volume"]
    return sorted(days.values(), key=lambda d: (-d.accounts, d.currency))


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight UTC of today: where "today" starts for the desk."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def deals_today(database_url: str, tenant_id: int, since: datetime) -> dict[int, dict[str, int]]:
    """Per login, from the deal log since `since`: closed P/L (profit + swap + commission of trade
    deals), deposits and withdrawals (balance operations in and out) in minor units, and volume
    traded in lot units. Each deal is rounded to minor units before the sum (the server books them
    to the cent), so the sums are exact. Blocks on the database: call it in a thread."""
    trade = col(DealRecord.kind).in_(TRADES)
    balance = col(DealRecord.kind) == "balance"
    money = func.round((DealRecord.profit + DealRecord.swap + DealRecord.commission) * 100)
    amount = func.round(DealRecord.amount * 100)
    query = (
        select_columns(
            col(DealRecord.login),
            func.sum(case((trade, money), else_=0)),
            func.sum(case((and_(balance, col(DealRecord.amount) > 0), amount), else_=0)),
            func.sum(case((and_(balance, col(DealRecord.amount) < 0), amount), else_=0)),
            func.sum(case((trade, func.round(DealRecord.volume * 100)), else_=0)),
        )
        .where(col(DealRecord.tenant_id) == tenant_id, col(DealRecord.executed_at) >= since)
        .group_by(col(DealRecord.login))
    )
    with tenant_session(database_url, tenant_id) as db:
        found = db.execute(query).all()
    return {
        int(login): {"closed": int(closed or 0), "deposits": int(dep or 0), "withdrawals": int(wd or 0),
                     "volume": int(vol or 0) * 10**6}
        for login, closed, dep, wd, vol in found
    }


def movements(database_url: str, tenant_id: int, login: int, limit: int = 50) -> list[Row]:
    """An account's deposits and withdrawals (balance operations), newest first, from the deal log.
    Blocks on the database: call it in a thread."""
    query = (
        select(DealRecord)
        .where(DealRecord.tenant_id == tenant_id, DealRecord.login == login, DealRecord.kind == "balance")
        .order_by(col(DealRecord.executed_at).desc(), col(DealRecord.ticket).desc())
        .limit(limit)
    )
    with tenant_session(database_url, tenant_id) as db:
        return [
            {"ticket": d.ticket, "time": d.executed_at, "amount": to_minor(d.amount), "comment": d.comment}
            for d in db.exec(query).all()
        ]


@dataclass(frozen=True)
class Filters:
    """The drill-down's filters; empty means any."""

    server: str = ""
    group: str = ""
    book: str = ""
    currency: str = ""

    def keeps(self, row: Row | None, server_of: Mapping[int, str]) -> bool:
        """Whether an account (its book row) passes every filter."""
        if row is None:
            return False
        return ((not self.server or server_of.get(row["login"]) == self.server)
                and (not self.group or row["group"] == self.group)
                and (not self.book or row["book"] == self.book)
                and (not self.currency or row["currency"] == self.currency))


@dataclass
class SymbolNet:
    """A symbol's net exposure over the accounts kept: lot units and USD cents, per book."""

    symbol: str
    lots: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})
    cents: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0})
    accounts: list[list[Any]] = field(default_factory=list)  # [login, lot units, cents, book]

    @property
    def net_lots(self) -> int:
        return self.lots["A"] + self.lots["B"]

    @property
    def net_cents(self) -> int:
        return self.cents["A"] + self.cents["B"]


def exposure_by_symbol(answer: Mapping[str, Any], rows: Mapping[int, Row], filters: Filters,
                       server_of: Mapping[int, str]) -> list[SymbolNet]:
    """Net exposure per symbol over the accounts the filters keep (largest USD first), from the
    aggregator's entries (`ColumnBook.exposure_entries`). Integer sums: a symbol's accounts add up
    to its net exactly; with no filter the nets equal the book's own sums. Entries of nothing (no
    lots, no cents) are left out; a symbol whose accounts cancel out shows with a zero net.)"""
    nets: dict[str, SymbolNet] = {}
    for login, symbol, units, cents, book in answer["entries"]:
        if not (units or cents) or not filters.keeps(rows.get(login), server_of):
            continue
        net = nets.get(symbol) or nets.setdefault(symbol, SymbolNet(symbol))
        net.lots[book] += units
        net.cents[book] += cents
        net.accounts.append([login, units, cents, book])
    for net in nets.values():
        net.accounts.sort(key=lambda a: (-abs(a[2]), a[0]))
    return sorted(nets.values(), key=lambda n: (-abs(n.net_cents), n.symbol))


def currency_legs(symbol: str, currencies: Mapping[str, Sequence[str]]) -> tuple[str, str | None]:
    """Which currencies a long position in `symbol` is long and short of. A currency pair (base
    and profit currencies set and different, XAUUSD too: XAU against USD) is long its base and short
    its profit currency; anything else (an index, a stock, a future: MT5 gives them their own
    name or their currency as base) is an asset priced in its profit currency: long that currency's
    worth, nothing short. Unknown symbols count as their own name."""
    base, profit = [*(currencies.get(symbol) or ()), "", ""][:2]
    if base and profit and base not in (profit, symbol):
        return base, profit
    return profit or symbol, None


def exposure_by_currency(nets: Iterable[SymbolNet], currencies: Mapping[str, Sequence[str]]
                         ) -> list[tuple[str, int]]:
    """Net exposure per currency in USD cents (largest first): each symbol's USD notional to the
    currency it is long, and its negative to the one it is short (`currency_legs`)."""
    total: dict[str, int] = defaultdict(int)
    for net in nets:
        long, short = currency_legs(net.symbol, currencies)
        total[long] += net.net_cents
        if short is not None:
            total[short] -= net.net_cents
    return sorted(((c, v) for c, v in total.items() if v), key=lambda cv: (-abs(cv[1]), cv[0]))


def position_summary(positions: Iterable[Any], profits: Mapping[int, float], symbol: str) -> Row:
    """One account's positions in `symbol`: gross volume (lot units), volume-weighted average open
    price of the buys and of the sells, floating P/L (deposit currency, minor units) and how many."""
    buy_units = sell_units = 0
    buy_value = sell_value = 0.0
    pnl = count = 0
    for p in positions:
        if p.symbol != symbol:
            continue
        units = round(p.volume * LOT_UNITS)
        if p.side.value == "buy":
            buy_units += units
            buy_value += units * p.price_open
        else:
            sell_units += units
            sell_value += units * p.price_open
        pnl += to_minor(profits.get(p.ticket, 0.0)) + to_minor(p.swap) + to_minor(p.commission)
        count += 1
    return {
        "volume": buy_units + sell_units,
        "buy_price": buy_value / buy_units if buy_units else None,
        "sell_price": sell_value / sell_units if sell_units else None,
        "pnl": pnl,
        "positions": count,
    }


def stop_out_distance(figures: Any, stop_out_equity: float | None,
                      quotes: Mapping[str, Sequence[float]]) -> Row | None:
    """How far the account's largest position (by USD notional) may move against it before the
    account is stopped out, other prices and the margin held as they are: the loss it can still
    take (equity above the stop-out equity), as a fraction of that symbol's notional, and the price
    that fraction away from the current mid (None when that is at or below zero: a long position
    that cannot lose enough to stop the account out on its own). None without margin, exposure
    or a quote."""
    if stop_out_equity is None or not figures.exposure:
        return None
    main = max(figures.exposure, key=lambda e: abs(e.usd_notional))
    quote = quotes.get(main.symbol)
    if not main.usd_notional or not quote:
        return None
    room = (figures.equity - stop_out_equity) * figures.usd_rate  # USD the account can still lose
    fraction = room / abs(main.usd_notional)
    mid = (quote[0] + quote[1]) / 2.0
    long = main.usd_notional > 0
    at = mid * (1.0 - fraction) if long else mid * (1.0 + fraction)
    return {"symbol": main.symbol, "fraction": fraction, "long": long, "price": at if at > 0 else None}


def connection_freshness(info: Mapping[str, Any]) -> list[Row]:
    """Per connection, seconds since its newest quote and its newest deal arrived (None: none yet),
    by the supervisor's clock (`TenantSupervisor.desk_info`), so this host's clock does not matter."""
    now = info.get("now", 0.0)

    def age(at: float) -> float | None:
        return max(0.0, now - at) if at else None

    return [
        {"connection_id": c["connection_id"], "quote_age": age(c["quote_at"]), "deal_age": age(c["deal_at"]),
         "accounts": c.get("accounts", len(c["logins"]))}
        for c in info.get("connections", [])
    ]


def table_csv(headers: Sequence[str], keys: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A table as CSV, exactly as shown: the given headers, then each row's shown text for `keys`
    in the rows' order (so the sort and the filters the screen applied are the file's)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(key, "") for key in keys])
    return out.getvalue()
