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
    """One account's share of the totals: USD cents per money field, and per exposure entry (same
    order as `figures.exposure`) its lot units and USD cents."""

    __slots__ = ("a_book", "figures", "money", "units")

    def __init__(self, figures: AccountFigures, money: tuple[int, ...], units: list[tuple[int, int]]) -> None:
        self.figures = figures
        self.a_book = figures.book == "A"
        self.money = money
        self.units = units

    @classmethod
    def of(cls, figures: AccountFigures) -> _Contribution:
        """Built from scratch."""
        rate = figures.usd_rate
        money = tuple(to_minor(getattr(figures, name) * rate) for name in _MONEY_FIELDS)
        return cls(figures, money, [_units(exposure) for exposure in figures.exposure])


def _units(exposure: SymbolExposure) -> tuple[int, int]:
    return round(exposure.net_lots * _LOT_UNITS), to_minor(exposure.usd_notional)


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

    def add(self, contribution: _Contribution, sign: int) -> None:
        money = self.money
        for index, value in enumerate(contribution.money):
            money[index] += sign * value
        offset = 0 if contribution.a_book else 2
        for exposure, (lots, cents) in zip(contribution.figures.exposure, contribution.units, strict=True):
            self._bump(exposure.symbol, offset, sign * lots, sign * cents)

    def replace(self, old: _Contribution | None, figures: AccountFigures) -> _Contribution:
        """Swap an account's old contribution for one built from `figures`; return the new one.

        The common case - same book, same USD rate, same symbols - is a diff: balance, credit and
        margin rarely move on a tick and their cents are reused when unchanged, and AccountState
        reuses the SymbolExposure object of every untouched symbol, so only the touched symbols
        are converted and bumped.
        """
        rate = figures.usd_rate
        if old is None:
            new = _Contribution.of(figures)
            self.add(new, +1)
            return new
        previous = old.figures
        if (
            previous.usd_rate != rate
            or old.a_book != (figures.book == "A")
            or len(previous.exposure) != len(figures.exposure)
        ):
            new = _Contribution.of(figures)
            self.add(old, -1)
            self.add(new, +1)
            return new
        cents = old.money
        money = (
            cents[0] if figures.balance == previous.balance else to_minor(figures.balance * rate),
            cents[1] if figures.credit == previous.credit else to_minor(figures.credit * rate),
            to_minor(figures.equity * rate),
            to_minor(figures.profit * rate),
            cents[4] if figures.margin == previous.margin else to_minor(figures.margin * rate),
            to_minor(figures.free_margin * rate),
        )
        totals = self.money
        for index in range(6):
            totals[index] += money[index] - cents[index]
        before = previous.exposure
        units = old.units
        if figures.exposure is not before:
            units = units.copy()
            offset = 0 if old.a_book else 2
            for index, exposure in enumerate(figures.exposure):
                was = before[index]
                if exposure is was:
                    continue
                if exposure.symbol != was.symbol:  # holdings reordered: redo the exposure part
                    return self._swap_exposure(before, units, offset, figures, money)
                old_lots, old_cents = units[index]
                lots, cents_now = units[index] = _units(exposure)
                if lots != old_lots or cents_now != old_cents:
                    self._bump(exposure.symbol, offset, lots - old_lots, cents_now - old_cents)
        return _Contribution(figures, money, units)

    def _swap_exposure(
        self,
        before: tuple[SymbolExposure, ...],
        units: list[tuple[int, int]],
        offset: int,
        figures: AccountFigures,
        money: tuple[int, ...],
    ) -> _Contribution:
        """Exposure part of a replace when entries do not line up (rare): remove what the totals
        hold for this account (`units`, already updated for the aligned prefix), add the new."""
        for exposure, (lots, cents) in zip(before, units, strict=True):
            self._bump(exposure.symbol, offset, -lots, -cents)
        new = _Contribution(figures, money, [_units(e) for e in figures.exposure])
        for exposure, (lots, cents) in zip(figures.exposure, new.units, strict=True):
            self._bump(exposure.symbol, offset, lots, cents)
        return new

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
        self._contributions[figures.login] = self._totals.replace(
            self._contributions.get(figures.login), figures
        )
        self._figures[figures.login] = figures

    def remove(self, login: int) -> None:
        """Take an account out of the book (no-op when it is not in it)."""
        old = self._contributions.pop(login, None)
        if old is not None:
            self._totals.add(old, -1)
            del self._figures[login]

    def snapshot(self, top_n: int = 10) -> BookFigures:
        """The book now. O(accounts) for the state lists and the top-N ranking."""
        return self._totals.figures(self._figures.values(), len(self._figures), top_n)


def book_from_accounts(figures: Iterable[AccountFigures], top_n: int = 10) -> BookFigures:
    """The book computed from scratch from the latest figures of every account (for checks)."""
    latest = {f.login: f for f in figures}
    totals = _Totals()
    for account in latest.values():
        totals.add(_Contribution.of(account), +1)
    return totals.figures(latest.values(), len(latest), top_n)
