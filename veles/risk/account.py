"""Live state of one MT5 account: positions, balance, margin, equity, kept current tick by tick.

Cost model. Positions are grouped by symbol into holdings. A price update touches only the
holdings whose figures depend on the updated quote (their own symbol, or a conversion pair of their
margin/profit currency); each touched holding recomputes its positions' profit (MT5 rounds and
converts every position separately, so that loop is needed) and, only if a conversion rate it uses
moved, its margin from a plan precomputed at the last deal (`margin.MarginPlan`). Untouched
positions cost nothing: a tick never scans the whole account.

Peak equity, drawdown (fraction of peak lost) and realised P/L are tracked here too; deposits and
withdrawals move the peak with them, so money flows are not counted as performance.

Money. Every rounded amount (position profit, symbol margin, balance, swaps) is held as integer
minor units (see `veles.risk.money`), so account totals maintained by subtract-old/add-new are
exactly equal to a from-scratch sum: there is no float drift to tolerate. Only a single formula
evaluation uses floats, with the rounding tolerance documented in `money.py`.

MT5 conventions followed here (see margin.py, profit.py, conversion.py for the formulas):

* equity = balance + credit + floating profit, where floating profit includes each position's
  accumulated swap and any not-yet-booked commission (Position.commission);
* free margin = equity - margin by default; `FreeMarginMode` mirrors the group option of counting
  only profits, only losses, or neither;
* margin level = equity / margin * 100, None without margin;
* margin call / stop out when the level (percent mode) or the equity (money mode) is at or below the
  group's level, and only while margin is charged;
* deals: the server's `deal.profit + commission + swap` is booked to the balance (MT5 is the source
  of truth for realised money); a position's accumulated swap and commission leave the floating
  profit in proportion to the volume closed (the swap in whole cents, `closed_swap`);
* rollover swaps: MT5 accumulates them in the position's swap field, which the server reports
  (`PositionSwap`, applied by `apply_swap`); equity includes them until a closing deal books them;
* a position's margin conversion rate is fixed when it opens (MT5's "Margin rate" field): positions
  opened through `apply_deal` take the then-current rate; snapshot positions without one use the
  current rate.

Stale, duplicate and invalid events raise `RejectedEvent` and leave the state exactly as it was:
every check runs before the first mutation.

Quotes missing at start (a conversion pair nobody has sent yet) do not raise: the parts that need
them count as zero and `AccountFigures.missing_quotes` names the pairs until they arrive. Peak
equity is only updated while figures are complete, so a half-known equity never becomes a peak.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from operator import attrgetter
from typing import Any, cast

from veles.risk.conversion import USD, Conversion, resolve
from veles.risk.errors import MissingQuoteError, RejectedEvent
from veles.risk.events import (
    AccountSnapshot,
    Deal,
    DealEntry,
    DealKind,
    MarginMode,
    Position,
    PositionSwap,
    Quote,
    Side,
    StopoutMode,
)
from veles.risk.instruments import SymbolSpec
from veles.risk.margin import LegSums, MarginPlan, margin_plan
from veles.risk.money import MONEY_DIGITS, from_minor, round_money, to_minor
from veles.risk.profit import raw_profit, value_per_price_unit
from veles.risk.score import STATE_MARGIN_CALL, STATE_OK, STATE_STOP_OUT, risk_score

VOLUME_EPSILON = 1e-9  # lots; volumes are multiples of 0.01 or 0.0001, far above this
_VOLUME_DIGITS = 8
_MINOR = 10**MONEY_DIGITS
_HALF_UP = 0.5 + 1e-6  # money.to_minor's rounding, inlined in the tick path

ANALYTICS_KEYS = (
    "updated_msc",
    "peak_equity",
    "realized_pnl",
    "deposits",
    "withdrawals",
    "credit_in",
    "credit_out",
    "deals_applied",
)


class FreeMarginMode(StrEnum):
    """MT5 group option "Free margin: use unrealized profit/loss"."""

    BOTH = "both"  # default: free margin = equity - margin
    NONE = "none"
    PROFIT = "profit"
    LOSS = "loss"


@dataclass(frozen=True, slots=True)
class SymbolExposure:
    """One symbol's net position of an account: lots (buy positive) and USD notional (signed).

    Notional = net lots * mid price * value of a 1.0 price move per lot (contract size; tick value
    / tick size for Futures), converted from the profit currency to USD at mid.
    """

    symbol: str
    net_lots: float
    usd_notional: float


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """Everything a screen, an alert or the book needs about one account at one moment.

    Money is in the deposit currency, rounded to its digits; `usd_rate` converts it to USD (mid).
    `profit` is the floating P/L including swaps and unbooked commissions, as in MT5's equity.
    `state` is "ok", "margin_call" or "stop_out"; `risk_score` (0-100) is defined in score.py.
    `missing_quotes` names the quotes still needed for complete figures (empty normally).
    """

    login: int
    group: str
    book: str
    currency: str
    leverage: int
    balance: float
    credit: float
    equity: float
    profit: float
    margin: float
    free_margin: float
    margin_level: float | None
    state: str
    realized_pnl: float
    peak_equity: float
    drawdown: float
    positions: int
    exposure: tuple[SymbolExposure, ...]
    usd_rate: float
    risk_score: float
    updated_msc: int
    missing_quotes: tuple[str, ...] = ()
    name: str = ""  # the client's name, country and connection (server): the accounts list's labels
    country: str = ""
    server: str = ""


def _positional_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen slotted dataclass that skips the frozen check.

    The generated frozen `__init__` pays an `object.__setattr__` call per field; a tick builds one
    AccountFigures per touched account, so we set the slots through their descriptors instead
    (measured 2-3x faster). Same fields, same order, same resulting object.
    """
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    body = []
    for index, name in enumerate(names):
        namespace[f"set{index}"] = getattr(cls, name).__set__
        body.append(f"    set{index}(obj, {name})\n")
    source = f"def build({', '.join(names)}):\n    obj = new(cls)\n{''.join(body)}    return obj\n"
    exec(source, namespace)  # noqa: S102 - source built above from the dataclass's own field names
    return cast(Callable[..., Any], namespace["build"])


_build_figures = _positional_constructor(AccountFigures)
_build_exposure = _positional_constructor(SymbolExposure)
_figures_values = attrgetter(*(f.name for f in fields(AccountFigures)))
_exposure_values = attrgetter(*(f.name for f in fields(SymbolExposure)))


def _unpickle_figures(*values: Any) -> AccountFigures:
    """Pickle's way back to an AccountFigures (see `_reduce_figures`)."""
    figures: AccountFigures = _build_figures(*values)
    return figures


def _unpickle_exposure(*values: Any) -> SymbolExposure:
    """Pickle's way back to a SymbolExposure."""
    exposure: SymbolExposure = _build_exposure(*values)
    return exposure


def _reduce_figures(self: AccountFigures) -> tuple[Any, ...]:
    """Pickle figures as their field values. Figures cross processes on every batch (account
    host → supervisor → aggregator), and a frozen slotted dataclass otherwise pickles through
    Python-level `__getstate__`/`__setstate__` per object, several times slower."""
    return _unpickle_figures, _figures_values(self)


def _reduce_exposure(self: SymbolExposure) -> tuple[Any, ...]:
    """Pickle an exposure row as its field values (see `_reduce_figures`)."""
    return _unpickle_exposure, _exposure_values(self)


AccountFigures.__reduce__ = _reduce_figures  # type: ignore[method-assign,assignment]
SymbolExposure.__reduce__ = _reduce_exposure  # type: ignore[method-assign,assignment]


def closed_swap(swap: float, closed: float, volume: float) -> float:
    """The part of a position's accumulated `swap` that a deal closing `closed` of its `volume`
    lots books to the balance: in proportion, rounded to the deposit digits. The server (the
    simulator's trade server) and the engine share this rule, so partial closes never leave a
    cent between them."""
    return round_money(swap * closed / volume)


class _Pos:
    """Mutable working copy of one position; `profit` is market P/L in minor units."""

    __slots__ = ("buy", "commission", "margin_rate", "price", "profit", "sl", "swap", "ticket", "time_msc",
                 "tp", "volume")

    def __init__(
        self,
        ticket: int,
        buy: bool,
        volume: float,
        price: float,
        swap: float = 0.0,
        commission: float = 0.0,
        margin_rate: float = 0.0,
        time_msc: int = 0,
        sl: float = 0.0,
        tp: float = 0.0,
    ) -> None:
        self.ticket = ticket
        self.buy = buy
        self.volume = volume
        self.price = price
        self.swap = swap
        self.commission = commission
        self.margin_rate = margin_rate
        self.time_msc = time_msc  # shown only (open time, stops): no figure depends on them
        self.sl = sl
        self.tp = tp
        self.profit = 0

    def resized(self, volume: float, closed: float = 0.0) -> _Pos:
        """A copy holding `volume` lots; commission shrinks in proportion. When `closed` lots were
        closed, the swap loses the closing deal's share in whole cents (what the server books with
        the deal, `closed_swap`), so the swap left and the swap booked add up to the cent."""
        share = volume / self.volume
        swap = self.swap - closed_swap(self.swap, closed, self.volume) if closed else self.swap * share
        return _Pos(
            self.ticket,
            self.buy,
            volume,
            self.price,
            swap,
            self.commission * share,
            self.margin_rate,
            self.time_msc,
            self.sl,
            self.tp,
        )

    def charges_minor(self) -> int:
        return to_minor(self.swap + self.commission)


class _Holding:
    """All positions of one symbol, with the conversions they need and their cached totals."""

    __slots__ = (
        "_leverage",
        "charges",
        "exposure",
        "margin",
        "margin_conv",
        "missing",
        "net",
        "plan",
        "positions",
        "profit",
        "profit_conv",
        "spec",
        "usd_conv",
        "value_per_unit",
    )

    def __init__(
        self,
        spec: SymbolSpec,
        margin_conv: Conversion,
        profit_conv: Conversion,
        usd_conv: Conversion,
        leverage: float,
        larger_leg: bool,
    ) -> None:
        self.spec = spec
        self.margin_conv = margin_conv
        self.profit_conv = profit_conv
        self.usd_conv = usd_conv
        self.value_per_unit = value_per_price_unit(spec)
        self.positions: dict[int, _Pos] = {}
        self.plan = MarginPlan((), larger_leg, False, False)
        self.profit = 0
        self.charges = 0
        self.margin = 0
        self.exposure = SymbolExposure(spec.name, 0.0, 0.0)
        self.missing: tuple[str, ...] = ()
        self.net = 0.0
        self._leverage = leverage

    @property
    def dependencies(self) -> frozenset[str]:
        return frozenset(
            (self.spec.name, *self.margin_conv.pairs, *self.profit_conv.pairs, *self.usd_conv.pairs)
        )

    def set_positions(self, positions: dict[int, _Pos]) -> None:
        """Install the symbol's positions and precompute what ticks will need (the margin plan)."""
        self.positions = positions
        self.charges = sum(p.charges_minor() for p in positions.values())
        identity = not self.margin_conv.legs
        legs = [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
        for p in positions.values():
            leg = legs[0] if p.buy else legs[1]
            leg[0] += p.volume
            leg[1] += p.volume * p.price
            if p.margin_rate > 0.0 or identity:
                leg[2] += p.volume * (p.margin_rate or 1.0)
            else:
                leg[3] += p.volume
        self.net = round(legs[0][0] - legs[1][0], _VOLUME_DIGITS)
        self.plan = margin_plan(
            self.spec, LegSums(*legs[0]), LegSums(*legs[1]), self._leverage, larger_leg=self.plan.larger_leg
        )


class _KnownPairs:
    """Pair names a conversion may use: the server's symbols and any quote seen at start."""

    __slots__ = ("_quotes", "_symbols")

    def __init__(self, symbols: Mapping[str, SymbolSpec], quotes: Mapping[str, Quote]) -> None:
        self._symbols = symbols
        self._quotes = quotes

    def __contains__(self, name: object) -> bool:
        return name in self._symbols or name in self._quotes


def _require_finite(value: float, field: str) -> None:
    if not math.isfinite(value):
        raise RejectedEvent(field, "must be a finite number")


def _require_positive(value: float, field: str) -> None:
    if not math.isfinite(value) or value <= 0.0:
        raise RejectedEvent(field, "must be > 0")


def _is_valid(quote: Quote) -> bool:
    return 0.0 < quote.bid < math.inf and 0.0 < quote.ask < math.inf


def _check_quote(quote: Quote, path: str) -> None:
    if not 0.0 < quote.bid < math.inf:
        raise RejectedEvent(f"{path}.bid", "must be a finite number > 0")
    if not 0.0 < quote.ask < math.inf:
        raise RejectedEvent(f"{path}.ask", "must be a finite number > 0")


class AccountState:
    """One account, updated incrementally by quotes and deals (see the module docstring)."""

    def __init__(
        self,
        snapshot: AccountSnapshot,
        symbols: Mapping[str, SymbolSpec],
        quotes: Mapping[str, Quote] | None = None,
        *,
        analytics: Mapping[str, float] | None = None,
        free_margin_mode: FreeMarginMode = FreeMarginMode.BOTH,
    ) -> None:
        """Build the state from a snapshot; raise RejectedEvent naming the first invalid field.

        `quotes` seeds the prices. The mapping is kept as the market to read from when a deal later
        opens a symbol this account did not hold: pass the engine's live latest-quote dict so such
        a position starts from the newest price (a static dict would only ever be a stale seed; in
        that case send the new `symbols_needed` through `apply_quotes` after the deal).
        """
        _require_positive(float(snapshot.leverage), "leverage")
        _require_finite(snapshot.balance, "balance")
        _require_finite(snapshot.credit, "credit")
        for name in ("margin_call", "stop_out"):
            value = getattr(snapshot, name)
            if not math.isfinite(value) or value < 0.0:
                raise RejectedEvent(name, "must be >= 0")
        quotes = quotes if quotes is not None else {}
        self._market = quotes
        self._snapshot = snapshot
        self._symbols = symbols
        self._known = _KnownPairs(symbols, quotes)
        self._hedging = snapshot.margin_mode is MarginMode.HEDGING
        self._free_margin_mode = free_margin_mode
        self._quotes: dict[str, Quote] = {}
        self._holdings: dict[str, _Holding] = {}
        self._deps: dict[str, list[_Holding]] = {}
        self._position_symbol: dict[int, str] = {}
        self._incomplete: set[str] = set()
        self._usd_conv = resolve(snapshot.currency, USD, self._known)
        self._usd_pairs = self._usd_conv.pairs
        self._usd_rate = 0.0
        self._usd_missing: tuple[str, ...] = ()
        self._balance = to_minor(snapshot.balance)
        self._credit = to_minor(snapshot.credit)
        self._profit = 0
        self._charges = 0
        self._margin = 0
        self._last_ticket = snapshot.last_deal_ticket
        self._updated_msc = 0
        self._peak = 0
        self._realized = 0
        self._flows = {"deposits": 0, "withdrawals": 0, "credit_in": 0, "credit_out": 0}
        self._deals_applied = 0
        self._needed: frozenset[str] | None = None
        self._exposure: tuple[SymbolExposure, ...] | None = None

        grouped = self._validate_positions(snapshot.positions)
        for symbol, positions in grouped.items():
            self._put_holding(symbol, positions)
        for name in self.symbols_needed:
            if name in quotes:
                _check_quote(quotes[name], f"quotes.{name}")
                self._quotes[name] = quotes[name]
        self._updated_msc = max((q.time_msc for q in self._quotes.values()), default=0)
        self._refresh_usd()
        if analytics is not None:
            self.restore_analytics(analytics)
        self._touch_peak()

    # -- pickling -----------------------------------------------------------------------------

    # Caches rebuilt from the rest of the state, so checkpoints leave them out: every batch a
    # host pickles a share of its accounts, and the symbol → holdings index alone was about a
    # third of each account's pickling.
    _DERIVED = ("_deps", "_known", "_needed", "_exposure")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in self._DERIVED:
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """The state `__getstate__` kept, with its caches rebuilt: the index lists each symbol's
        holdings in the holdings' order, as `_new_holding` appended them (which holding a quote
        refreshes first cannot change a figure anyway: their sums are integers)."""
        self.__dict__.update(state)
        self._known = _KnownPairs(self._symbols, self._market)
        deps: dict[str, list[_Holding]] = {}
        for holding in self._holdings.values():
            for name in holding.dependencies:
                deps.setdefault(name, []).append(holding)
        self._deps = deps
        self._needed = None
        self._exposure = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def login(self) -> int:
        return self._snapshot.login

    @property
    def last_deal_ticket(self) -> int:
        """The highest deal ticket applied (or reflected in the snapshot); older ones are rejected."""
        return self._last_ticket

    @property
    def symbols_needed(self) -> frozenset[str]:
        """Quotes that change this account's figures: symbols held and conversion pairs."""
        if self._needed is None:
            self._needed = frozenset(self._deps).union(self._usd_pairs)
        return self._needed

    def apply_quotes(self, quotes: Iterable[Quote]) -> AccountFigures | None:
        """Apply a batch of quotes; None when none of them matters to this account.

        Only holdings that depend on a changed quote are recomputed. Invalid quotes (zero,
        negative, NaN or infinite prices) reject the whole batch, unapplied.
        """
        deps = self._deps
        usd_pairs = self._usd_pairs
        relevant = []
        for index, quote in enumerate(quotes):
            if quote.symbol in deps or quote.symbol in usd_pairs:
                if not (0.0 < quote.bid < math.inf and 0.0 < quote.ask < math.inf):
                    _check_quote(quote, f"quotes[{index}]")
                relevant.append(quote)
        if not relevant:
            return None
        touched: list[_Holding] = []
        usd_touched = False
        for quote in relevant:
            name = quote.symbol
            self._quotes[name] = quote
            if quote.time_msc > self._updated_msc:
                self._updated_msc = quote.time_msc
            users = deps.get(name)
            if users is not None:
                touched.extend(users)
            if name in usd_pairs:
                usd_touched = True
        if len(relevant) > 1:
            touched = list({id(h): h for h in touched}.values())
        for holding in touched:
            self._refresh(holding, margin_too=False)
        if usd_touched:
            self._refresh_usd()
        self._touch_peak()
        return self.figures()

    def apply_deal(self, deal: Deal) -> AccountFigures:
        """Apply one deal (trade, balance or credit); raise RejectedEvent and change nothing if invalid."""
        if deal.ticket <= self._last_ticket:
            raise RejectedEvent(
                "ticket",
                f"{deal.ticket} is not after the last applied deal {self._last_ticket}"
                " (duplicate or out of order)",
            )
        if deal.login != self.login:
            raise RejectedEvent("login", f"deal is for account {deal.login}, not {self.login}")
        for name in ("profit", "commission", "swap", "amount"):
            _require_finite(getattr(deal, name), name)
        if not math.isfinite(deal.margin_rate) or deal.margin_rate < 0.0:
            raise RejectedEvent("margin_rate", "must be a finite number >= 0 (0: not given)")
        if deal.kind in (DealKind.BALANCE, DealKind.CREDIT):
            self._apply_money(deal)
        else:
            self._apply_trade(deal)
        self._last_ticket = deal.ticket
        self._deals_applied += 1
        if deal.time_msc > self._updated_msc:
            self._updated_msc = deal.time_msc
        self._touch_peak()
        return self.figures()

    def apply_swap(self, update: PositionSwap) -> AccountFigures:
        """Take an open position's accumulated swap as the server now reports it (after a
        rollover); equity moves by the difference. Raise RejectedEvent and change nothing when the
        position is not open here or the amount is not finite."""
        if update.login != self.login:
            raise RejectedEvent("login", f"swap is for account {update.login}, not {self.login}")
        _require_finite(update.swap, "swap")
        symbol = self._position_symbol.get(update.position_id)
        if symbol is None:
            raise RejectedEvent("position_id", f"no open position {update.position_id}")
        holding = self._holdings[symbol]
        position = holding.positions[update.position_id]
        before = position.charges_minor()
        position.swap = update.swap
        change = position.charges_minor() - before
        holding.charges += change
        self._charges += change
        if update.time_msc > self._updated_msc:
            self._updated_msc = update.time_msc
        self._touch_peak()
        return self.figures()

    def figures(self) -> AccountFigures:
        """The account's figures now."""
        snap = self._snapshot
        profit = self._profit + self._charges
        equity = self._balance + self._credit + profit
        margin = self._margin
        mode = self._free_margin_mode
        if mode is FreeMarginMode.BOTH:
            free = equity - margin
        else:
            counted = (
                0
                if mode is FreeMarginMode.NONE
                else max(profit, 0)
                if mode is FreeMarginMode.PROFIT
                else min(profit, 0)
            )
            free = self._balance + self._credit + counted - margin
        equity_f = equity / _MINOR
        margin_f = margin / _MINOR
        level = equity_f / margin_f * 100.0 if margin > 0 else None
        # The group's levels are percents of margin or money amounts of equity (stopout_mode).
        if snap.stopout_mode is StopoutMode.PERCENT:
            measure = level
            margin_call_pct, stop_out_pct = snap.margin_call, snap.stop_out
        else:
            measure = equity_f
            margin_call_pct = snap.margin_call / margin_f * 100.0 if margin > 0 else 0.0
            stop_out_pct = snap.stop_out / margin_f * 100.0 if margin > 0 else 0.0
        state = STATE_OK
        if margin > 0 and measure is not None:
            if measure <= snap.stop_out:
                state = STATE_STOP_OUT
            elif measure <= snap.margin_call:
                state = STATE_MARGIN_CALL
        peak = self._peak
        drawdown = (peak - equity) / peak if peak > 0 and equity < peak else 0.0
        if drawdown > 1.0:
            drawdown = 1.0
        exposure = self._exposure
        if exposure is None:
            exposure = self._exposure = tuple([h.exposure for h in self._holdings.values()])
        return cast(
            AccountFigures,
            _build_figures(
                snap.login,
                snap.group,
                snap.book,
                snap.currency,
                snap.leverage,
                self._balance / _MINOR,
                self._credit / _MINOR,
                equity_f,
                profit / _MINOR,
                margin_f,
                free / _MINOR,
                level,
                state,
                self._realized / _MINOR,
                peak / _MINOR,
                drawdown,
                len(self._position_symbol),
                exposure,
                self._usd_rate,
                risk_score(state, equity_f, margin_f, margin_call_pct, stop_out_pct, drawdown),
                self._updated_msc,
                self._missing_quotes() if self._incomplete or self._usd_missing else (),
                snap.name,
                snap.country,
                snap.server,
            ),
        )

    def positions(self) -> tuple[Position, ...]:
        """Open positions as they stand now (current volume, average open price, swap)."""
        result = []
        for symbol, holding in self._holdings.items():
            for p in holding.positions.values():
                result.append(
                    Position(
                        ticket=p.ticket,
                        symbol=symbol,
                        side=Side.BUY if p.buy else Side.SELL,
                        volume=p.volume,
                        price_open=p.price,
                        swap=p.swap,
                        commission=p.commission,
                        margin_rate=p.margin_rate,
                        time_msc=p.time_msc,
                        sl=p.sl,
                        tp=p.tp,
                    )
                )
        return tuple(result)

    def stop_out_equity(self) -> float | None:
        """The equity at which this account is stopped out with its margin as it is now: the
        group's stop-out level as a percent of margin, or as money (stopout_mode); None without
        margin in use (nothing can be stopped out)."""
        margin = self.figures().margin
        if margin <= 0:
            return None
        snap = self._snapshot
        return margin * snap.stop_out / 100.0 if snap.stopout_mode is StopoutMode.PERCENT else snap.stop_out

    def quote(self, symbol: str) -> Quote | None:
        """The price this account values `symbol` at now (None if it holds no quote of it)."""
        return self._quotes.get(symbol)

    def snapshot(self) -> AccountSnapshot:
        """The account as it stands now, as a snapshot: its settings, current balance and credit,
        open positions and last deal ticket. An `AccountState` built from it at the same quotes has
        the same figures (the analytics, which no snapshot carries, aside): what a stress test of
        the live book starts from."""
        return dataclasses.replace(
            self._snapshot,
            balance=self._balance / _MINOR,
            credit=self._credit / _MINOR,
            positions=self.positions(),
            last_deal_ticket=self._last_ticket,
        )

    def position_profits(self) -> dict[int, float]:
        """Each position's floating profit in the deposit currency (market P/L, without swap)."""
        return {
            p.ticket: p.profit / _MINOR
            for holding in self._holdings.values()
            for p in holding.positions.values()
        }

    def close_profit(self, position_ticket: int, volume: float, price: float) -> float:
        """Realised profit (deposit currency) MT5 would book for closing `volume` lots at `price` now.

        Raises RejectedEvent for an unknown position or invalid volume/price, MissingQuoteError when
        the profit-currency conversion quote is missing.
        """
        symbol = self._position_symbol.get(position_ticket)
        if symbol is None:
            raise RejectedEvent("position_ticket", f"no open position {position_ticket}")
        _require_positive(volume, "volume")
        _require_positive(price, "price")
        holding = self._holdings[symbol]
        position = holding.positions[position_ticket]
        if volume > position.volume + VOLUME_EPSILON:
            raise RejectedEvent("volume", f"{volume} exceeds the position's {position.volume} lots")
        amount = raw_profit(holding.spec, position.buy, volume, position.price, price)
        return from_minor(to_minor(holding.profit_conv.convert_profit(amount, self._quotes)))

    def stop_out_order(self) -> list[int]:
        """Position tickets in the order MT5 stops them out: largest loss (incl. swap) first."""
        ranked = [
            (p.profit + p.charges_minor(), p.ticket)
            for holding in self._holdings.values()
            for p in holding.positions.values()
        ]
        ranked.sort()
        return [ticket for _, ticket in ranked]

    def analytics(self) -> dict[str, float]:
        """What an actor persists so a restart from a fresh snapshot yields identical figures.

        Peak equity, realised P/L, money flows and the time of the last event: none of them can be
        recomputed from an MT5 snapshot, which only carries balances and open positions.
        """
        return {
            "updated_msc": float(self._updated_msc),
            "peak_equity": self._peak / _MINOR,
            "realized_pnl": self._realized / _MINOR,
            **{name: value / _MINOR for name, value in self._flows.items()},
            "deals_applied": float(self._deals_applied),
        }

    def restore_analytics(self, analytics: Mapping[str, float]) -> None:
        """Reload persisted analytics (peak equity, realised P/L, money flows) after a restart."""
        for key, value in analytics.items():
            if key not in ANALYTICS_KEYS:
                raise RejectedEvent(f"analytics.{key}", "unknown key")
            _require_finite(value, f"analytics.{key}")
        self._peak = to_minor(analytics.get("peak_equity", 0.0))
        self._realized = to_minor(analytics.get("realized_pnl", 0.0))
        for name in self._flows:
            self._flows[name] = to_minor(analytics.get(name, 0.0))
        self._deals_applied = int(analytics.get("deals_applied", 0))
        self._updated_msc = max(self._updated_msc, int(analytics.get("updated_msc", 0)))
        self._touch_peak()

    # -- holdings and quotes ------------------------------------------------------------------

    def _validate_positions(self, positions: Iterable[Position]) -> dict[str, dict[int, _Pos]]:
        grouped: dict[str, dict[int, _Pos]] = {}
        seen: set[int] = set()
        for index, p in enumerate(positions):
            path = f"positions[{index}]"
            if p.symbol not in self._symbols:
                raise RejectedEvent(f"{path}.symbol", f"unknown symbol {p.symbol!r}")
            if p.ticket in seen:
                raise RejectedEvent(f"{path}.ticket", f"duplicate ticket {p.ticket}")
            _require_positive(p.volume, f"{path}.volume")
            _require_positive(p.price_open, f"{path}.price_open")
            _require_finite(p.swap, f"{path}.swap")
            _require_finite(p.commission, f"{path}.commission")
            if not math.isfinite(p.margin_rate) or p.margin_rate < 0.0:
                raise RejectedEvent(f"{path}.margin_rate", "must be >= 0")
            if not self._hedging and p.symbol in grouped:
                raise RejectedEvent(
                    f"{path}.symbol", f"a netting account holds one position per symbol: {p.symbol}"
                )
            seen.add(p.ticket)
            grouped.setdefault(p.symbol, {})[p.ticket] = _Pos(
                p.ticket, p.side is Side.BUY, p.volume, p.price_open, p.swap, p.commission, p.margin_rate,
                p.time_msc, p.sl, p.tp,
            )
        return grouped

    def _new_holding(self, spec: SymbolSpec) -> _Holding:
        deposit = self._snapshot.currency
        holding = _Holding(
            spec,
            margin_conv=resolve(spec.effective_margin_currency, deposit, self._known),
            profit_conv=resolve(spec.profit_currency, deposit, self._known),
            usd_conv=resolve(spec.profit_currency, USD, self._known),
            leverage=self._snapshot.leverage,
            larger_leg=self._snapshot.hedged_margin_larger_leg,
        )
        for name in holding.dependencies:
            self._deps.setdefault(name, []).append(holding)
            quote = self._market.get(name) if name not in self._quotes else None
            if quote is not None and _is_valid(quote):
                self._quotes[name] = quote
        self._needed = None
        return holding

    def _drop_holding(self, symbol: str) -> None:
        holding = self._holdings.pop(symbol)
        for name in holding.dependencies:
            users = self._deps[name]
            users.remove(holding)
            if not users:
                del self._deps[name]
                if name not in self._usd_pairs:
                    self._quotes.pop(name, None)
        for ticket in holding.positions:
            del self._position_symbol[ticket]
        self._profit -= holding.profit
        self._charges -= holding.charges
        self._margin -= holding.margin
        self._incomplete.discard(symbol)
        self._needed = None
        self._exposure = None

    def _put_holding(self, symbol: str, positions: dict[int, _Pos]) -> None:
        """Replace the positions of `symbol` (creating or dropping its holding) and refresh totals."""
        holding = self._holdings.get(symbol)
        if not positions:
            if holding is not None:
                self._drop_holding(symbol)
            return
        if holding is None:
            holding = self._new_holding(self._symbols[symbol])
            self._holdings[symbol] = holding
        for ticket in holding.positions:
            del self._position_symbol[ticket]
        for ticket in positions:
            self._position_symbol[ticket] = symbol
        self._charges -= holding.charges
        holding.set_positions(positions)
        self._charges += holding.charges
        self._refresh(holding)

    def _refresh(self, holding: _Holding, margin_too: bool = True) -> None:
        """Recompute one holding's profit, exposure and (unless it cannot have moved) margin.

        This is the hot path of a tick, hence the inlined arithmetic: per position one price
        difference, one conversion by sign, and MT5 rounding to minor units (as `money.to_minor`).
        """
        quotes = self._quotes
        spec = holding.spec
        missing: list[str] = []
        quote = quotes.get(spec.name)
        profit = 0
        if quote is None:
            missing.append(spec.name)
            for p in holding.positions.values():
                p.profit = 0
        else:
            gain = loss = 1.0
            if holding.profit_conv.legs:
                try:
                    gain, loss = holding.profit_conv.profit_rates(quotes)
                except MissingQuoteError as error:
                    missing.append(error.pair)
                    gain = loss = 0.0
            scale = holding.value_per_unit * _MINOR
            gain *= scale
            loss *= scale
            bid = quote.bid
            ask = quote.ask
            for p in holding.positions.values():
                move = ((bid - p.price) if p.buy else (p.price - ask)) * p.volume
                minor = int(move * gain + _HALF_UP) if move >= 0.0 else -int(_HALF_UP - move * loss)
                p.profit = minor
                profit += minor
        plan = holding.plan
        if margin_too or plan.needs_buy_rate or plan.needs_sell_rate:
            rate_buy = rate_sell = 0.0
            try:
                if plan.needs_buy_rate:
                    rate_buy = holding.margin_conv.margin_rate(quotes, True)
                if plan.needs_sell_rate:
                    rate_sell = holding.margin_conv.margin_rate(quotes, False)
            except MissingQuoteError as error:
                missing.append(error.pair)
            margin = plan.minor(rate_buy, rate_sell)
            self._margin += margin - holding.margin
            holding.margin = margin
        net = holding.net
        if net != 0.0 or margin_too:
            notional = 0.0
            if quote is not None and net != 0.0:
                try:
                    usd = holding.usd_conv.mid_rate(quotes) if holding.usd_conv.legs else 1.0
                    notional = round(net * (quote.bid + quote.ask) * 0.5 * holding.value_per_unit * usd, 2)
                except MissingQuoteError as error:
                    missing.append(error.pair)
            holding.exposure = _build_exposure(spec.name, net, notional)
            self._exposure = None
        self._profit += profit - holding.profit
        holding.profit = profit
        if missing:
            holding.missing = tuple(missing)
            self._incomplete.add(spec.name)
        elif holding.missing:
            holding.missing = ()
            self._incomplete.discard(spec.name)

    def _refresh_usd(self) -> None:
        try:
            self._usd_rate = self._usd_conv.mid_rate(self._quotes)
            self._usd_missing = ()
        except MissingQuoteError as error:
            self._usd_rate = 0.0
            self._usd_missing = (error.pair,)

    def _missing_quotes(self) -> tuple[str, ...]:
        names = set(self._usd_missing)
        for symbol in self._incomplete:
            names.update(self._holdings[symbol].missing)
        return tuple(sorted(names))

    def _touch_peak(self) -> None:
        if self._incomplete or self._usd_missing:
            return
        equity = self._balance + self._credit + self._profit + self._charges
        if equity > self._peak:
            self._peak = equity

    # -- deals --------------------------------------------------------------------------------

    def _apply_money(self, deal: Deal) -> None:
        amount = to_minor(deal.amount)
        if deal.kind is DealKind.CREDIT:
            if self._credit + amount < 0:
                raise RejectedEvent(
                    "amount", f"would make the credit negative ({self._credit / _MINOR} + {deal.amount})"
                )
            self._credit += amount
            self._flows["credit_in" if amount >= 0 else "credit_out"] += abs(amount)
        else:
            self._balance += amount
            self._flows["deposits" if amount >= 0 else "withdrawals"] += abs(amount)
        # Money flows are not performance: move the peak with them so a withdrawal is no drawdown.
        self._peak = max(self._peak + amount, 0)

    def _apply_trade(self, deal: Deal) -> None:
        spec = self._symbols.get(deal.symbol)
        if spec is None:
            raise RejectedEvent("symbol", f"unknown symbol {deal.symbol!r}")
        _require_positive(deal.volume, "volume")
        _require_positive(deal.price, "price")
        buy = deal.kind is DealKind.BUY
        holding = self._holdings.get(deal.symbol)
        current = dict(holding.positions) if holding is not None else {}
        if self._hedging:
            positions = self._plan_hedging(deal, buy, current)
        else:
            positions = self._plan_netting(deal, buy, current)
        booked = to_minor(deal.profit + deal.commission + deal.swap)
        self._put_holding(deal.symbol, positions)
        self._balance += booked
        self._realized += booked

    def _opening_rate(self, spec: SymbolSpec, buy: bool) -> float:
        """MT5 fixes a position's margin conversion rate when it opens; 0 when no quote is known.

        Reads this account's quotes, then the market mapping it was built with (a new symbol's
        conversion pair may not be among this account's quotes yet).
        """
        holding = self._holdings.get(spec.name)
        conversion = (
            holding.margin_conv
            if holding
            else resolve(spec.effective_margin_currency, self._snapshot.currency, self._known)
        )
        try:
            known = {name: self._quotes.get(name) or self._market.get(name) for name in conversion.pairs}
            rate = conversion.margin_rate({k: q for k, q in known.items() if q is not None}, buy)
        except MissingQuoteError:
            return 0.0
        return rate if 0.0 < rate < math.inf else 0.0

    def opening_rate(self, symbol: str, buy: bool) -> float:
        """The margin conversion rate a position on `symbol` opened now would be fixed at (what a
        trade server stamps on the deal as its `margin_rate`); 0 when no quote is known."""
        spec = self._symbols.get(symbol)
        if spec is None:
            raise RejectedEvent("symbol", f"unknown symbol {symbol!r}")
        return self._opening_rate(spec, buy)

    def _deal_rate(self, deal: Deal, spec: SymbolSpec, buy: bool) -> float:
        """The rate the volume `deal` opens is fixed at: the server's, when the deal carries it."""
        return deal.margin_rate if deal.margin_rate > 0.0 else self._opening_rate(spec, buy)

    def _plan_hedging(self, deal: Deal, buy: bool, positions: dict[int, _Pos]) -> dict[int, _Pos]:
        spec = self._symbols[deal.symbol]
        if deal.entry is DealEntry.IN:
            ticket = deal.position_id or deal.ticket
            if ticket in self._position_symbol:
                raise RejectedEvent("position_id", f"position {ticket} is already open")
            positions[ticket] = _Pos(
                ticket, buy, deal.volume, deal.price, margin_rate=self._deal_rate(deal, spec, buy),
                time_msc=deal.time_msc, sl=deal.sl, tp=deal.tp,
            )
            return positions
        if deal.entry is DealEntry.INOUT:
            raise RejectedEvent("entry", "INOUT (reversal) exists only on netting accounts")
        position = positions.get(deal.position_id)
        if position is None:
            owner = self._position_symbol.get(deal.position_id)
            if owner is not None:
                raise RejectedEvent("symbol", f"position {deal.position_id} is on {owner}, not {deal.symbol}")
            raise RejectedEvent("position_id", f"no open position {deal.position_id} to close")
        return self._reduce(positions, position, buy, deal.volume)

    def _plan_netting(self, deal: Deal, buy: bool, positions: dict[int, _Pos]) -> dict[int, _Pos]:
        spec = self._symbols[deal.symbol]
        position = next(iter(positions.values()), None)
        if deal.entry is DealEntry.IN:
            if position is None:
                ticket = deal.position_id or deal.ticket
                if ticket in self._position_symbol:
                    raise RejectedEvent("position_id", f"position {ticket} is already open")
                rate = self._deal_rate(deal, spec, buy)
                return {ticket: _Pos(ticket, buy, deal.volume, deal.price, margin_rate=rate,
                                     time_msc=deal.time_msc, sl=deal.sl, tp=deal.tp)}
            if position.buy != buy:
                raise RejectedEvent("entry", "an IN deal against the open position must be OUT or INOUT")
            volume = round(position.volume + deal.volume, _VOLUME_DIGITS)
            merged = position.resized(position.volume)
            merged.volume = volume
            merged.price = (position.volume * position.price + deal.volume * deal.price) / volume
            merged.sl, merged.tp = deal.sl or position.sl, deal.tp or position.tp  # stops the deal sets
            if position.margin_rate > 0.0:
                rate = self._deal_rate(deal, spec, buy) or position.margin_rate
                merged.margin_rate = (position.volume * position.margin_rate + deal.volume * rate) / volume
            return {position.ticket: merged}
        if position is None:
            raise RejectedEvent("symbol", f"no open position on {deal.symbol} to close")
        if deal.entry is DealEntry.OUT:
            return self._reduce(positions, position, buy, deal.volume)
        if position.buy == buy:
            raise RejectedEvent("kind", "a reversal must be opposite to the open position")
        remaining = round(deal.volume - position.volume, _VOLUME_DIGITS)
        if remaining <= VOLUME_EPSILON:
            raise RejectedEvent("volume", f"a reversal must exceed the position's {position.volume} lots")
        ticket = deal.position_id or position.ticket
        rate = self._deal_rate(deal, spec, buy)
        return {ticket: _Pos(ticket, buy, remaining, deal.price, margin_rate=rate,
                             time_msc=deal.time_msc, sl=deal.sl, tp=deal.tp)}

    @staticmethod
    def _reduce(positions: dict[int, _Pos], position: _Pos, buy: bool, volume: float) -> dict[int, _Pos]:
        if position.buy == buy:
            raise RejectedEvent("kind", "a closing deal must be opposite to the position")
        remaining = round(position.volume - volume, _VOLUME_DIGITS)
        if remaining < -VOLUME_EPSILON:
            raise RejectedEvent("volume", f"{volume} exceeds the position's {position.volume} lots")
        if remaining <= VOLUME_EPSILON:
            del positions[position.ticket]
        else:
            positions[position.ticket] = position.resized(remaining, closed=volume)
        return positions
