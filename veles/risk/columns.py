"""Account figures as columns: what a host sends the aggregator, and the book kept from them.

Why. A tenant's aggregator merges every changed account of every batch (thousands at 10,000
accounts). As `AccountFigures` objects that cost a pickle per object in the host, an unpickle and
an object build per account in the aggregator, then per-account Python to merge them into the
book. As columns (`FigureColumns`: one numpy array per field, a row per account) a host's whole
answer crosses as a few buffers, and `ColumnBook` merges it with array operations.

Exactness. The money the book sums is converted exactly as `Book` converts it
(`to_minor(amount * usd_rate)` USD cents, `round(net_lots * 1e8)` lot units, `to_minor(usd)`
exposure cents), vectorised with the same float operations in the same order, and summed as
int64 integers: `ColumnBook` equals `book_from_accounts` of the latest figures exactly (the tests
compare them). The figures an account row shows are the same float64 values the figures hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veles.risk.account import AccountFigures
from veles.risk.book import BookExposure, BookFigures
from veles.risk.money import MONEY_DIGITS
from veles.risk.score import STATE_MARGIN_CALL, STATE_STOP_OUT

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# The float values an account row shows, in this order (column index = position).
VALUE_FIELDS = ("balance", "credit", "equity", "profit", "margin", "free_margin", "margin_level",
                "drawdown", "risk_score", "usd_rate", "leverage")
MONEY_FIELDS = ("balance", "credit", "equity", "profit", "margin", "free_margin")  # summed, USD cents
# strings, as codes into a label table (the client's name, country and server appended last)
LABEL_FIELDS = ("group", "book", "currency", "state", "name", "country", "server")
BALANCE, CREDIT, EQUITY, PROFIT, MARGIN, FREE_MARGIN, MARGIN_LEVEL, DRAWDOWN, RISK_SCORE, USD_RATE = range(10)
LEVERAGE = 10  # the account's leverage (1:N), for the accounts list
GROUP, BOOK, CURRENCY, STATE, NAME, COUNTRY, SERVER = range(7)
_LOT_UNITS = 10**8
_CENTS = 10**MONEY_DIGITS
_TIE_EPSILON = 1e-6  # money.to_minor's
_EXACT_LIMIT = 2.0**62  # beyond this a float no longer converts to int64 exactly


def to_minor_array(amounts: F64) -> I64:
    """`money.to_minor` of every element: the same float operations, so the same integers."""
    scaled = amounts * _CENTS
    if scaled.size and not np.all(np.abs(scaled) < _EXACT_LIMIT):
        raise ValueError("amount out of range for exact minor units")
    up = np.trunc(scaled + 0.5 + _TIE_EPSILON)
    down = -np.trunc(-scaled + 0.5 + _TIE_EPSILON)
    return np.where(scaled >= 0.0, up, down).astype(np.int64)


def _coded(values: Iterable[str], table: dict[str, int]) -> list[int]:
    return [table.setdefault(value, len(table)) for value in values]


@dataclass(frozen=True, slots=True, eq=False)
class FigureColumns:
    """Some accounts' figures, one row per account (no login twice), in the order given.

    `codes` index `labels` (group, book, currency, state per row); exposure entries are rows of
    their own (`exp_row` is the account's row, `exp_symbol` indexes `symbols`), in each account's
    order. `money` holds the USD cents the book sums (MONEY_FIELDS), `values` the row's floats
    (VALUE_FIELDS; margin level only where `has_level`)."""

    login: I64
    labels: tuple[str, ...]
    codes: npt.NDArray[np.int32]
    values: F64
    has_level: Bools
    money: I64
    positions: I64
    updated_msc: I64
    complete: Bools  # no missing quotes: figures alerts may judge
    symbols: tuple[str, ...]
    exp_row: I64
    exp_symbol: I64
    exp_lots: I64
    exp_cents: I64

    def __len__(self) -> int:
        return len(self.login)

    @classmethod
    def of(cls, figures: Sequence[AccountFigures]) -> FigureColumns:
        """Columns of these figures (each login at most once)."""
        labels: dict[str, int] = {}
        codes = np.array([_coded((f.group, f.book, f.currency, f.state, f.name, f.country, f.server), labels)
                          for f in figures],
                         dtype=np.int32).reshape(len(figures), len(LABEL_FIELDS))
        values = np.array(
            [(f.balance, f.credit, f.equity, f.profit, f.margin, f.free_margin,
              0.0 if f.margin_level is None else f.margin_level, f.drawdown, f.risk_score, f.usd_rate,
              f.leverage)
             for f in figures], dtype=np.float64).reshape(len(figures), len(VALUE_FIELDS))
        rate = values[:, USD_RATE:USD_RATE + 1]
        symbols: dict[str, int] = {}
        exp_row: list[int] = []
        exp_symbol: list[int] = []
        lots: list[float] = []
        usd: list[float] = []
        for row, f in enumerate(figures):
            for exposure in f.exposure:
                exp_row.append(row)
                exp_symbol.append(symbols.setdefault(exposure.symbol, len(symbols)))
                lots.append(exposure.net_lots)
                usd.append(exposure.usd_notional)
        return cls(
            login=np.array([f.login for f in figures], dtype=np.int64),
            labels=tuple(labels),
            codes=codes,
            values=values,
            has_level=np.array([f.margin_level is not None for f in figures], dtype=np.bool_),
            money=to_minor_array(values[:, :len(MONEY_FIELDS)] * rate),
            positions=np.array([f.positions for f in figures], dtype=np.int64),
            updated_msc=np.array([f.updated_msc for f in figures], dtype=np.int64),
            complete=np.array([not f.missing_quotes for f in figures], dtype=np.bool_),
            symbols=tuple(symbols),
            exp_row=np.array(exp_row, dtype=np.int64),
            exp_symbol=np.array(exp_symbol, dtype=np.int64),
            exp_lots=np.rint(np.array(lots, dtype=np.float64) * _LOT_UNITS).astype(np.int64),
            exp_cents=to_minor_array(np.array(usd, dtype=np.float64)),
        )

    @classmethod
    def runs(cls, figures: Sequence[AccountFigures]) -> list[FigureColumns]:
        """Columns of figures that may name a login more than once: consecutive runs without a
        repeat, so applying them in order is applying the figures one by one."""
        out: list[FigureColumns] = []
        start, seen = 0, set[int]()
        for index, f in enumerate(figures):
            if f.login in seen:
                out.append(cls.of(figures[start:index]))
                start, seen = index, set[int]()
            seen.add(f.login)
        if start < len(figures) or not out:
            out.append(cls.of(figures[start:]))
        return out

    def rows(self, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Each account's figures as an on-screen row with these fields (`rows_of`)."""
        return rows_of(fields, self.login, self.labels, self.codes, self.values, self.has_level,
                       self.positions)


def rows_of(fields: Sequence[str], login: I64, labels: Sequence[str], codes: npt.NDArray[np.int32],
            values: F64, has_level: Bools, positions: I64) -> list[dict[str, Any]]:
    """Rows (dicts of plain Python numbers and strings) from columns, built column-wise."""
    columns: list[list[Any]] = []
    for name in fields:
        if name == "login":
            columns.append(login.tolist())
        elif name == "positions":
            columns.append(positions.tolist())
        elif name in LABEL_FIELDS:
            table = list(labels)
            columns.append([table[c] for c in codes[:, LABEL_FIELDS.index(name)].tolist()])
        elif name == "margin_level":
            level = values[:, MARGIN_LEVEL].tolist()
            columns.append([v if has else None for v, has in zip(level, has_level.tolist(), strict=True)])
        elif name in VALUE_FIELDS:
            columns.append(values[:, VALUE_FIELDS.index(name)].tolist())
        else:
            raise ValueError(f"{name}: not a column of account figures")
    return list(map(_row_builder(tuple(fields)), *columns))


@functools.lru_cache(maxsize=8)
def _row_builder(fields: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function taking one value per field and returning the row dict: a diff builds thousands
    of rows, and a dict display is several times faster than `dict(zip(...))` per row."""
    if not all(name.isidentifier() for name in fields):
        raise ValueError(f"row fields must be identifiers: {fields!r}")
    args = ", ".join(f"v{n}" for n in range(len(fields)))
    body = ", ".join(f"{name!r}: v{n}" for n, name in enumerate(fields))
    builder: Callable[..., dict[str, Any]] = eval(f"lambda {args}: {{{body}}}")  # noqa: S307 (names checked)
    return builder


class _Grown:
    """Arrays of one row per account, grown by doubling."""

    def __init__(self) -> None:
        self.size = 0
        self.login = np.zeros(0, np.int64)
        self.codes = np.zeros((0, len(LABEL_FIELDS)), np.int32)
        self.values = np.zeros((0, len(VALUE_FIELDS)), np.float64)
        self.has_level = np.zeros(0, np.bool_)
        self.money = np.zeros((0, len(MONEY_FIELDS)), np.int64)
        self.positions = np.zeros(0, np.int64)
        self.a_book = np.zeros(0, np.bool_)

    _ARRAYS = ("login", "codes", "values", "has_level", "money", "positions", "a_book")

    def reserve(self, size: int) -> None:
        capacity = len(self.login)
        if size <= capacity:
            return
        capacity = max(size, 2 * capacity, 64)
        for name in self._ARRAYS:
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)

    def keep(self, rows: npt.NDArray[np.int64]) -> None:
        """Only these rows, in this order (after accounts left)."""
        for name in self._ARRAYS:
            setattr(self, name, getattr(self, name)[rows].copy())
        self.size = len(rows)


class ColumnBook:
    """The tenant's book kept from `FigureColumns`: each account's latest row and contribution,
    integer USD totals and per-symbol A/B exposure sums. Applying columns replaces the
    contributions of the accounts they hold (a login seen for the first time joins), so the totals
    always equal a from-scratch sum of the latest figures."""

    def __init__(self) -> None:
        self._slot: dict[int, int] = {}  # login -> row, in the order accounts joined
        self._rows = _Grown()
        self._labels: dict[str, int] = {}
        self._symbols: dict[str, int] = {}
        self._money = np.zeros(len(MONEY_FIELDS), np.int64)
        self._exposure = np.zeros((0, 4), np.int64)  # per symbol: A lots, A cents, B lots, B cents
        # exposure entries of the accounts: row, symbol, lots, cents, side (0 A, 2 B)
        self._entries = np.zeros((0, 5), np.int64)

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, login: int) -> bool:
        return login in self._slot

    def apply(self, columns: FigureColumns) -> npt.NDArray[np.int64]:
        """Replace the contributions of these accounts by their new figures; their rows here."""
        rows = self._rows
        slot = self._slot
        at = np.fromiter((slot.setdefault(login, len(slot)) for login in columns.login.tolist()),
                         np.int64, len(columns))
        rows.reserve(len(slot))
        rows.size = len(slot)
        labels = np.array(_coded(columns.labels, self._labels), np.int32)
        codes = labels[columns.codes] if len(columns) else columns.codes
        a_book = np.array([label == "A" for label in self._labels], np.bool_)[codes[:, BOOK]] \
            if len(columns) else np.zeros(0, np.bool_)
        self._money += columns.money.sum(axis=0) - rows.money[at].sum(axis=0)
        rows.login[at] = columns.login
        rows.codes[at] = codes
        rows.values[at] = columns.values
        rows.has_level[at] = columns.has_level
        rows.money[at] = columns.money
        rows.positions[at] = columns.positions
        rows.a_book[at] = a_book
        symbols = np.array(_coded(columns.symbols, self._symbols), np.int64)
        if len(self._exposure) < len(self._symbols):
            grown = np.zeros((len(self._symbols), 4), np.int64)
            grown[:len(self._exposure)] = self._exposure
            self._exposure = grown
        touched = np.zeros(len(slot), np.bool_)
        touched[at] = True
        old = touched[self._entries[:, 0]]
        self._bump(self._entries[old], -1)
        new = np.empty((len(columns.exp_row), 5), np.int64)
        new[:, 0] = at[columns.exp_row]
        new[:, 1] = symbols[columns.exp_symbol] if len(symbols) else columns.exp_symbol
        new[:, 2] = columns.exp_lots
        new[:, 3] = columns.exp_cents
        new[:, 4] = np.where(a_book[columns.exp_row], 0, 2)
        self._bump(new, +1)
        self._entries = np.concatenate([self._entries[~old], new])
        return at

    def _bump(self, entries: I64, sign: int) -> None:
        if not len(entries):
            return
        np.add.at(self._exposure, (entries[:, 1], entries[:, 4]), sign * entries[:, 2])
        np.add.at(self._exposure, (entries[:, 1], entries[:, 4] + 1), sign * entries[:, 3])

    def remove(self, logins: Iterable[int]) -> None:
        """Take accounts out of the book (those not in it are ignored)."""
        gone = {self._slot[login] for login in logins if login in self._slot}
        if not gone:
            return
        rows = self._rows
        size = rows.size
        leaving = np.zeros(size, np.bool_)
        leaving[list(gone)] = True
        self._money -= rows.money[:size][leaving].sum(axis=0)
        old = leaving[self._entries[:, 0]]
        self._bump(self._entries[old], -1)
        kept = np.flatnonzero(~leaving)
        renumber = np.full(size, -1, np.int64)
        renumber[kept] = np.arange(len(kept))
        entries = self._entries[~old]
        entries[:, 0] = renumber[entries[:, 0]]
        self._entries = entries
        rows.keep(kept)
        self._slot = {login: n for n, login in enumerate(rows.login[:rows.size].tolist())}

    def rows(self, fields: Sequence[str], logins: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """On-screen rows of these accounts (all, in the order they joined, when None)."""
        rows = self._rows
        at = (np.arange(rows.size) if logins is None
              else np.array([self._slot[login] for login in logins], np.int64))
        return rows_of(fields, rows.login[at], tuple(self._labels), rows.codes[at], rows.values[at],
                       rows.has_level[at], rows.positions[at])

    def exposure_entries(self) -> dict[str, Any]:
        """The accounts behind every symbol's net exposure, at one moment: per symbol its A/B sums
        (lot units of 1e-8 lots and USD cents, as `figures` reports them) and per account entry
        `[login, symbol, lot units, cents, book]`. The entries of a symbol add up to its sums
        exactly (the same integers): the dealer's exposure drill-down (`veles.services.desk`)
        filters and sums them, and shows both."""
        names = list(self._symbols)
        entries = self._entries
        logins = self._rows.login[entries[:, 0]].tolist()
        return {
            "sums": {names[i]: self._exposure[i].tolist() for i in range(len(self._exposure))
                     if self._exposure[i].any()},
            "entries": [
                [login, names[symbol], lots, cents, "A" if side == 0 else "B"]
                for login, symbol, lots, cents, side in zip(
                    logins, entries[:, 1].tolist(), entries[:, 2].tolist(), entries[:, 3].tolist(),
                    entries[:, 4].tolist(), strict=True)
            ],
        }

    def figures(self) -> BookFigures:
        """The book now: totals in USD, exposure per symbol (largest USD first), the logins in
        margin call and in stop out. `top_risky` is left empty: rows carry every account's risk
        score, and screens rank them from there."""
        names = list(self._symbols)
        exposure = [
            BookExposure(
                symbol=names[index],
                net_lots=(a_lots + b_lots) / _LOT_UNITS,
                usd_notional=(a_cents + b_cents) / _CENTS,
                a_net_lots=a_lots / _LOT_UNITS,
                a_usd_notional=a_cents / _CENTS,
                b_net_lots=b_lots / _LOT_UNITS,
                b_usd_notional=b_cents / _CENTS,
            )
            for index in np.flatnonzero(self._exposure.any(axis=1)).tolist()
            for a_lots, a_cents, b_lots, b_cents in [self._exposure[index].tolist()]
        ]
        exposure.sort(key=lambda e: (-abs(e.usd_notional), e.symbol))
        money = self._money.tolist()
        balance, credit, equity, profit, margin, free_margin = (value / _CENTS for value in money)
        rows = self._rows
        state = rows.codes[:rows.size, STATE]
        logins = rows.login[:rows.size]
        return BookFigures(
            accounts=len(self._slot),
            balance=balance,
            credit=credit,
            equity=equity,
            profit=profit,
            margin=margin,
            free_margin=free_margin,
            exposure=tuple(exposure),
            margin_call=self._logins_in(logins, state, STATE_MARGIN_CALL),
            stop_out=self._logins_in(logins, state, STATE_STOP_OUT),
            top_risky=(),
        )

    def _logins_in(self, logins: I64, state: npt.NDArray[np.int32], name: str) -> tuple[int, ...]:
        code = self._labels.get(name)
        if code is None:
            return ()
        return tuple(np.sort(logins[state == code]).tolist())

