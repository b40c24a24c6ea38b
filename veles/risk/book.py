"""The dealing book: all accounts summed in USD, with exposure per symbol split A-book / B-book.

`Book.apply` subtracts an account's previous contribution and adds its new one, so an update costs
O(symbols of that account) whatever the number of accounts. Contributions are converted to USD
and rounded to integer cents (lots to integer 1e-8 lots) *before* they are summed: integer sums are
exact, so after any number of applies the book equals `book_from_accounts` of the latest figures
exactly - no drift, no periodic re-sum needed. The price of that exactness is that each account's
USD amount is rounded to the cent before summing (at most 0.5 cent per account per field).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from veles.risk.account import AccountFigures, SymbolExposure
from veles.risk.money import to_minor
from veles.risk.score import STATE_MARGIN_CALL, STATE_STOP_OUT

_CENTS = 100
_LOT_UNITS = 10**8
_MONEY_FIELDS = ("balance", "credit", "equity", "profit", "margin", "free_margin")


@dataclass(frozen=True, slots=True)
class BookExposure:
    """Net position of the whole book in one symbol, in total and per book (A / B)."""

    symbol: str
    net_lots: float
    usd_notional: float
    a_net_lots: float
    a_usd_notional: float
    b_net_lots: float
    b_usd_notional: float


@dataclass(frozen=True, slots=True)
class BookFigures:
    """Totals of all accounts in USD; exposure sorted by absolute USD notional, largest first."""

    accounts: int
    balance: float
    credit: float
    equity: float
    profit: float
    margin: float
    free_margin: float
    exposure: tuple[BookExposure, ...]
    margin_call: tuple[int, ...]
    stop_out: tuple[int, ...]
    top_risky: tuple[AccountFigures, ...]


class _Contribution:
    """One account's share of the totals: USD cents per money field, and per symbol the
    SymbolExposure it came from (AccountState reuses the object of an untouched symbol, so an
    identity check skips it) with its lot units and USD cents."""

    __slots__ = ("a_book", "exposure", "money")

    def __init__(self, figures: AccountFigures) -> None:
        rate = figures.usd_rate
        self.money = (
            to_minor(figures.balance * rate),
            to_minor(figures.credit * rate),
            to_minor(figures.equity * rate),
            to_minor(figures.profit * rate),
            to_minor(figures.margin * rate),
            to_minor(figures.free_margin * rate),
        )
        self.a_book = figures.book == "A"
        self.exposure: dict[str, tuple[SymbolExposure, int, int]] = {}


def _units(exposure: SymbolExposure) -> tuple[SymbolExposure, int, int]:
    return exposure, round(exposure.net_lots * _LOT_UNITS), to_minor(exposure.usd_notional)


class _Totals:
    """Integer running sums of contributions."""

    def __init__(self) -> None:
        self.money = [0] * len(_MONEY_FIELDS)
        # symbol -> [a lots, a cents, b lots, b cents]
        self.exposure: dict[str, list[int]] = {}

    def _bump(self, symbol: str, offset: int, lots: int, cents: int) -> None:
        entry = self.exposure.get(symbol)
        if entry is None:
            entry = self.exposure[symbol] = [0, 0, 0, 0]
        entry[offset] += lots
        entry[offset + 1] += cents
        if not (entry[0] or entry[1] or entry[2] or entry[3]):
            del self.exposure[symbol]

    def replace(self, old: _Contribution | None, new: _Contribution, figures: AccountFigures) -> None:
        """Swap `old` for `new` (built from `figures`), touching only what differs."""
        money = self.money
        if old is not None and old.a_book != new.a_book:
            self.remove(old)
            old = None
        previous = old.money if old is not None else (0, 0, 0, 0, 0, 0)
        for index, value in enumerate(new.money):
            money[index] += value - previous[index]
        offset = 0 if new.a_book else 2
        before = old.exposure if old is not None else {}
        after = new.exposure
        for exposure in figures.exposure:
            kept = before.get(exposure.symbol)
            if kept is not None and kept[0] is exposure:
                after[exposure.symbol] = kept
                continue
            current = after[exposure.symbol] = _units(exposure)
            if kept is None:
                self._bump(exposure.symbol, offset, current[1], current[2])
            elif current[1] != kept[1] or current[2] != kept[2]:
                self._bump(exposure.symbol, offset, current[1] - kept[1], current[2] - kept[2])
        if len(after) != len(before) or any(symbol not in after for symbol in before):
            for symbol, (_, lots, cents) in before.items():
                if symbol not in after:
                    self._bump(symbol, offset, -lots, -cents)

    def remove(self, old: _Contribution) -> None:
        for index, value in enumerate(old.money):
            self.money[index] -= value
        offset = 0 if old.a_book else 2
        for symbol, (_, lots, cents) in old.exposure.items():
            self._bump(symbol, offset, -lots, -cents)

    def figures(self, accounts: Iterable[AccountFigures], count: int, top_n: int) -> BookFigures:
        accounts = list(accounts)
        exposure = [
            BookExposure(
                symbol=symbol,
                net_lots=(a_lots + b_lots) / _LOT_UNITS,
                usd_notional=(a_cents + b_cents) / _CENTS,
                a_net_lots=a_lots / _LOT_UNITS,
                a_usd_notional=a_cents / _CENTS,
                b_net_lots=b_lots / _LOT_UNITS,
                b_usd_notional=b_cents / _CENTS,
            )
            for symbol, (a_lots, a_cents, b_lots, b_cents) in self.exposure.items()
        ]
        exposure.sort(key=lambda e: (-abs(e.usd_notional), e.symbol))
        balance, credit, equity, profit, margin, free_margin = (value / _CENTS for value in self.money)
        return BookFigures(
            accounts=count,
            balance=balance,
            credit=credit,
            equity=equity,
            profit=profit,
            margin=margin,
            free_margin=free_margin,
            exposure=tuple(exposure),
            margin_call=tuple(sorted(f.login for f in accounts if f.state == STATE_MARGIN_CALL)),
            stop_out=tuple(sorted(f.login for f in accounts if f.state == STATE_STOP_OUT)),
            top_risky=tuple(heapq.nlargest(top_n, accounts, key=lambda f: (f.risk_score, -f.login))),
        )


class Book:
    """Incrementally maintained totals of many accounts (see the module docstring)."""

    def __init__(self) -> None:
        self._totals = _Totals()
        self._contributions: dict[int, _Contribution] = {}
        self._figures: dict[int, AccountFigures] = {}

    def __len__(self) -> int:
        return len(self._figures)

    def apply(self, figures: AccountFigures) -> None:
        """Replace an account's contribution by its new figures: O(symbols of that account)."""
        new = _Contribution(figures)
        self._totals.replace(self._contributions.get(figures.login), new, figures)
        self._contributions[figures.login] = new
        self._figures[figures.login] = figures

    def remove(self, login: int) -> None:
        """Take an account out of the book (no-op when it is not in it)."""
        old = self._contributions.pop(login, None)
        if old is not None:
            self._totals.remove(old)
            del self._figures[login]

    def snapshot(self, top_n: int = 10) -> BookFigures:
        """The book now. O(accounts) for the state lists and the top-N ranking."""
        return self._totals.figures(self._figures.values(), len(self._figures), top_n)


def book_from_accounts(figures: Iterable[AccountFigures], top_n: int = 10) -> BookFigures:
    """The book computed from scratch from the latest figures of every account (for checks)."""
    latest = {f.login: f for f in figures}
    totals = _Totals()
    for account in latest.values():
        totals.replace(None, _Contribution(account), account)
    return totals.figures(latest.values(), len(latest), top_n)
