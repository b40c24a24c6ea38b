"""Stress test of a book: shock prices, then apply MT5's stop-out rule, cascading.

A scenario is one or more shocks, written as a dealer would say them and separated by commas:

* ``XAUUSD -3%``: one symbol's bid and ask move by -3%;
* ``class:metal -5%`` (or ``metal -5%``): every symbol of an asset class;
* ``all -2%``: every symbol;
* ``USD +2% against all`` (or ``USD +2%``): the currency gains 2% against every other currency and
  asset. Every quote priced in USD is divided by 1.02, every pair with USD as its base is multiplied
  by 1.02 (EURUSD down, USDJPY up, XAUUSD and US500 down). Conversion pairs are ordinary quotes, so
  profit and margin conversions through USD move with the same rates.

Shocks compose by multiplying their factors (``all -2%, XAUUSD -3%`` moves XAUUSD by 0.98 * 0.97).

The stressed account is an `AccountState` built at the current quotes (its figures are the "before")
that then takes the shocked quotes through the engine's incremental path (`apply_quotes`, equal to
a build at the shocked quotes): every MT5 formula (profit, margin, conversions, percent or money
stop-out mode) is the risk core's, not re-implemented here.
The cascade follows MT5's stop-out: while the account is in stop-out (margin level, or equity in
money mode, at or below the group's stop-out level, with margin charged) its position with the
largest loss including swap and commission (`AccountState.stop_out_order`, ties by lower ticket) is
closed at the shocked price (Bid for a buy, Ask for a sell) through a closing deal that books the
MT5 closing profit (`AccountState.close_profit`) plus the position's swap and commission; then the
figures are recomputed and the rule applied again, until the account is above stop-out or flat.

Money results are integer minor units of each account's deposit currency; totals are kept per
currency, never mixed. No I/O: callers bring snapshots, symbol specs and quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from veles.risk.account import AccountFigures, AccountState
from veles.risk.events import AccountSnapshot, Deal, DealEntry, DealKind, Quote, Side
from veles.risk.instruments import SymbolSpec
from veles.risk.money import to_minor
from veles.risk.score import STATE_STOP_OUT

_VOLUME_DIGITS = 8
_PERCENT = re.compile(r"^([+\-\u2212]?)(\d+(?:\.\d+)?)%$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ScenarioError(ValueError):
    """A scenario string could not be read; the message names the part that is wrong."""


class ShockKind(StrEnum):
    """What a shock moves."""

    SYMBOL = "symbol"
    CLASS = "class"
    ALL = "all"
    CURRENCY = "currency"


@dataclass(frozen=True, slots=True)
class Shock:
    """One shock: `percent` (e.g. -3.0) applied to a symbol, an asset class, all, or a currency."""

    kind: ShockKind
    target: str
    percent: float

    @property
    def factor(self) -> float:
        return 1.0 + self.percent / 100.0

    def __str__(self) -> str:
        amount = f"{self.percent:+g}%"
        if self.kind is ShockKind.ALL:
            return f"all {amount}"
        if self.kind is ShockKind.CLASS:
            return f"class:{self.target} {amount}"
        if self.kind is ShockKind.CURRENCY:
            return f"{self.target} {amount} against all"
        return f"{self.target} {amount}"


def _pair(name: str, spec: SymbolSpec | None) -> tuple[str | None, str]:
    """(base currency or None for a non-currency asset, currency the price is quoted in)."""
    if spec is None:
        return (name[:3], name[3:6]) if len(name) == 6 and name.isalpha() else (None, "")
    if spec.asset_class == "fx" or spec.base_currency + spec.profit_currency == spec.name:
        return spec.base_currency, spec.profit_currency
    return None, spec.profit_currency


def currencies(symbols: Mapping[str, SymbolSpec]) -> frozenset[str]:
    """Currencies a currency shock may name: those the symbols are quoted in or are pairs of."""
    found: set[str] = set()
    for name, spec in symbols.items():
        base, quote = _pair(name, spec)
        found.add(quote)
        if base:
            found.add(base)
    return frozenset(found)


def _parse_percent(text: str, part: str) -> float:
    match = _PERCENT.match(text)
    if match is None:
        raise ScenarioError(f"{part!r}: the move must look like -3% or +2.5%, got {text!r}")
    try:
        value = Decimal(match.group(2))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ScenarioError(f"{part!r}: {text!r} is not a number") from None
    if match.group(1) in ("-", "\u2212"):
        value = -value
    if value <= -100:
        raise ScenarioError(
            f"{part!r}: a move of {text} would make prices zero or negative (must be > -100%)"
        )
    if value > 1000:
        raise ScenarioError(f"{part!r}: a move of {text} is beyond +1000%")
    return float(value)


def parse_shock(part: str, symbols: Mapping[str, SymbolSpec]) -> Shock:
    """One shock from text such as "XAUUSD -3%"; ScenarioError names what is wrong."""
    words = part.split()
    if not words:
        raise ScenarioError("empty shock: write e.g. 'XAUUSD -3%'")
    if len(words) == 4 and [w.lower() for w in words[2:]] == ["against", "all"]:
        words = words[:2]
        if not _CURRENCY.match(words[0].upper()) or words[0].upper() not in currencies(symbols):
            raise ScenarioError(f"{part!r}: {words[0]!r} is not a currency of this book's symbols")
    if len(words) != 2:
        raise ScenarioError(
            f"{part!r}: expected '<symbol|class:NAME|all|CURRENCY> <+/-N%>' [against all],"
            f" got {len(words)} words"
        )
    target, amount = words
    percent = _parse_percent(amount, part)
    classes = {spec.asset_class for spec in symbols.values()}
    if target.lower() == "all":
        return Shock(ShockKind.ALL, "all", percent)
    if target.lower().startswith("class:"):
        name = target[6:].lower()
        if name not in classes:
            raise ScenarioError(
                f"{part!r}: unknown asset class {name!r} (known: {', '.join(sorted(classes))})"
            )
        return Shock(ShockKind.CLASS, name, percent)
    if target in symbols:
        return Shock(ShockKind.SYMBOL, target, percent)
    if target.lower() in classes:
        return Shock(ShockKind.CLASS, target.lower(), percent)
    if target.upper() in currencies(symbols) and _CURRENCY.match(target.upper()):
        return Shock(ShockKind.CURRENCY, target.upper(), percent)
    raise ScenarioError(f"{part!r}: {target!r} is not a symbol, asset class, currency or 'all' of this book")


def parse_scenario(text: str, symbols: Mapping[str, SymbolSpec]) -> tuple[Shock, ...]:
    """All shocks of a scenario ("XAUUSD -3%, USD +2% against all"); ScenarioError names the bad part."""
    if not text.strip():
        raise ScenarioError("empty scenario: write e.g. 'XAUUSD -3%' or 'USD +2% against all'")
    return tuple(parse_shock(part.strip(), symbols) for part in re.split(r"[,;]", text))


def shock_factor(name: str, spec: SymbolSpec | None, shocks: Iterable[Shock]) -> float:
    """The factor the quote `name` is multiplied by under `shocks` (1.0: unmoved)."""
    factor = 1.0
    base, quoted = _pair(name, spec)
    for shock in shocks:
        if shock.kind is ShockKind.CURRENCY:
            if base == shock.target:
                factor *= shock.factor
            if quoted == shock.target:
                factor /= shock.factor
        elif spec is None:
            continue
        elif (
            shock.kind is ShockKind.ALL
            or (shock.kind is ShockKind.SYMBOL and shock.target == name)
            or (shock.kind is ShockKind.CLASS and shock.target == spec.asset_class)
        ):
            factor *= shock.factor
    return factor


def shocked_quotes(
    quotes: Mapping[str, Quote], symbols: Mapping[str, SymbolSpec], shocks: Sequence[Shock]
) -> dict[str, Quote]:
    """Every quote with its bid and ask multiplied by its shock factor."""
    result: dict[str, Quote] = {}
    for name, quote in quotes.items():
        factor = shock_factor(name, symbols.get(name), shocks)
        result[name] = (
            quote if factor == 1.0 else Quote(name, quote.bid * factor, quote.ask * factor, quote.time_msc)
        )
    return result


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position the cascade closed: at which price and what it booked (minor units)."""

    ticket: int
    symbol: str
    side: str
    volume: float
    price: float
    booked: int  # profit + swap + commission booked to the balance, minor units
    margin_level_before: float | None  # the level that triggered this close


@dataclass(frozen=True, slots=True)
class AccountStress:
    """One account before and after the shock and cascade; money in minor units of `currency`."""

    login: int
    group: str
    book: str
    currency: str
    equity_before: int
    equity_after: int
    balance_after: int
    margin_level_before: float | None
    margin_level_after: float | None
    stopped_out: bool
    closed: tuple[ClosedPosition, ...]
    absorbed: int  # negative balance the broker takes on: max(0, -balance after)
    exposure_after: tuple[tuple[str, float, int], ...]  # (symbol, net lots, USD notional cents), by symbol
    missing_quotes: tuple[str, ...] = ()  # quotes the figures need and the book lacks: not cascaded

    @property
    def client_pnl(self) -> int:
        """Change of the client's equity (closed plus floating) caused by the shock and cascade."""
        return self.equity_after - self.equity_before


@dataclass(slots=True)
class StressResult:
    """The whole book's outcome; totals per deposit currency in minor units."""

    shocks: tuple[Shock, ...]
    accounts: list[AccountStress] = field(default_factory=list)

    @property
    def incomplete(self) -> list[AccountStress]:
        """Accounts whose figures lack a quote: their numbers are partial and no cascade ran."""
        return [a for a in self.accounts if a.missing_quotes]

    @property
    def stopped_out(self) -> list[AccountStress]:
        return [a for a in self.accounts if a.stopped_out]

    @property
    def positions_closed(self) -> int:
        return sum(len(a.closed) for a in self.accounts)

    def _per_currency(self, values: Iterable[tuple[str, int]]) -> dict[str, int]:
        totals: dict[str, int] = {}
        for currency, value in values:
            totals[currency] = totals.get(currency, 0) + value
        return dict(sorted(totals.items()))

    def absorbed(self) -> dict[str, int]:
        """Negative balances after the cascade, what the broker absorbs, per currency."""
        return self._per_currency((a.currency, a.absorbed) for a in self.accounts if a.absorbed)

    def b_book_for_broker(self) -> dict[str, int]:
        """B-book client losses from the shock: the broker's gain as counterparty, per currency."""
        return self._per_currency(
            (a.currency, -a.client_pnl) for a in self.accounts if a.book == "B" and a.client_pnl < 0
        )

    def b_book_against_broker(self) -> dict[str, int]:
        """B-book client gains from the shock: the broker's loss as counterparty, per currency."""
        return self._per_currency(
            (a.currency, a.client_pnl) for a in self.accounts if a.book == "B" and a.client_pnl > 0
        )

    def exposure_after(self, book: str | None = None) -> dict[str, tuple[float, int]]:
        """Net lots and USD notional (cents) per symbol after the cascade (one book or all)."""
        net: dict[str, tuple[float, int]] = {}
        for account in self.accounts:
            if book is not None and account.book != book:
                continue
            for symbol, lots, cents in account.exposure_after:
                old_lots, old_cents = net.get(symbol, (0.0, 0))
                net[symbol] = (round(old_lots + lots, _VOLUME_DIGITS), old_cents + cents)
        return dict(sorted(net.items()))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (money in minor units, as integers)."""
        return {
            "scenario": [str(s) for s in self.shocks],
            "accounts": len(self.accounts),
            "stopped_out": [a.login for a in self.stopped_out],
            "positions_closed": self.positions_closed,
            "incomplete": {str(a.login): list(a.missing_quotes) for a in self.incomplete},
            "absorbed_minor": self.absorbed(),
            "absorbed_by_account_minor": {str(a.login): a.absorbed for a in self.accounts if a.absorbed},
            "b_book_for_broker_minor": self.b_book_for_broker(),
            "b_book_against_broker_minor": self.b_book_against_broker(),
            "exposure_after": {
                symbol: {"net_lots": lots, "usd_notional_cents": cents}
                for symbol, (lots, cents) in self.exposure_after().items()
            },
            "exposure_after_b_book": {
                symbol: {"net_lots": lots, "usd_notional_cents": cents}
                for symbol, (lots, cents) in self.exposure_after("B").items()
            },
        }


def _exposure(figures: AccountFigures) -> tuple[tuple[str, float, int], ...]:
    return tuple(
        sorted(
            (e.symbol, e.net_lots, to_minor(e.usd_notional)) for e in figures.exposure if e.net_lots != 0.0
        )
    )


def cascade(
    state: AccountState, quotes: Mapping[str, Quote], figures: AccountFigures | None = None
) -> tuple[list[ClosedPosition], AccountFigures]:
    """Close positions of `state` (already at the shocked `quotes`; `figures` its current figures,
    if known) by MT5's stop-out rule until the account is above stop-out or flat. Returns the
    positions closed and the figures after the last close."""
    closed: list[ClosedPosition] = []
    if figures is None:
        figures = state.figures()
    while figures.state == STATE_STOP_OUT:
        ticket = state.stop_out_order()[0]
        position = next(p for p in state.positions() if p.ticket == ticket)
        quote = quotes[position.symbol]
        buy = position.side is Side.BUY
        price = quote.bid if buy else quote.ask
        profit = state.close_profit(ticket, position.volume, price)
        deal = Deal(
            ticket=state.last_deal_ticket + 1,
            login=state.login,
            kind=DealKind.SELL if buy else DealKind.BUY,
            time_msc=figures.updated_msc,
            entry=DealEntry.OUT,
            symbol=position.symbol,
            volume=position.volume,
            price=price,
            position_id=ticket,
            profit=profit,
            commission=position.commission,
            swap=position.swap,
            comment="stress stop out",
        )
        level = figures.margin_level
        figures = state.apply_deal(deal)
        closed.append(
            ClosedPosition(
                ticket,
                position.symbol,
                position.side.value,
                position.volume,
                price,
                to_minor(profit + position.commission + position.swap),
                level,
            )
        )
    return closed, figures


def stress_account(
    snapshot: AccountSnapshot,
    symbols: Mapping[str, SymbolSpec],
    quotes: Mapping[str, Quote],
    shocked: Mapping[str, Quote],
) -> AccountStress:
    """One account through the shock and the stop-out cascade."""
    if not snapshot.positions:  # nothing a price can move: equity is balance plus credit
        balance = to_minor(snapshot.balance)
        equity = balance + to_minor(snapshot.credit)
        return AccountStress(
            snapshot.login,
            snapshot.group,
            snapshot.book,
            snapshot.currency,
            equity,
            equity,
            balance,
            None,
            None,
            False,
            (),
            max(0, -balance),
            (),
        )
    # One build at the current quotes, then the shocked quotes through the engine's incremental
    # path (equal to a build at the shocked quotes, which the property tests check): half the cost.
    state = AccountState(snapshot, symbols, quotes)
    before = state.figures()
    moved = [
        shocked[name]
        for name in state.symbols_needed
        if name in shocked and shocked[name] is not quotes[name]
    ]
    shocked_figures = state.apply_quotes(moved) if moved else None
    after = shocked_figures or before
    # A position without a price cannot be valued or closed: such an account is reported, not guessed.
    missing = after.missing_quotes or before.missing_quotes
    closed: list[ClosedPosition] = []
    if not missing:
        closed, after = cascade(state, shocked, after)
    balance = to_minor(after.balance)
    return AccountStress(
        snapshot.login,
        snapshot.group,
        snapshot.book,
        snapshot.currency,
        to_minor(before.equity),
        to_minor(after.equity),
        balance,
        before.margin_level,
        after.margin_level,
        bool(closed),
        tuple(closed),
        max(0, -balance),
        _exposure(after),
        missing,
    )


def run_stress(
    snapshots: Iterable[AccountSnapshot],
    symbols: Mapping[str, SymbolSpec],
    quotes: Mapping[str, Quote],
    shocks: Sequence[Shock],
) -> StressResult:
    """Stress every account of a book (see the module docstring)."""
    shocked = shocked_quotes(quotes, symbols, shocks)
    result = StressResult(tuple(shocks))
    for snapshot in snapshots:
        result.accounts.append(stress_account(snapshot, symbols, quotes, shocked))
    return result


@dataclass(frozen=True, slots=True)
class BookPart:
    """One MT5 connection's share of a tenant's live book: its server's symbols, the latest quote
    of each, and its accounts as they stand (`left_out`: accounts being restored or failed, whose
    state could not be read and which are not stressed)."""

    connection: str
    symbols: Mapping[str, SymbolSpec]
    quotes: Mapping[str, Quote]
    snapshots: tuple[AccountSnapshot, ...]
    left_out: int = 0


def book_symbols(parts: Iterable[BookPart]) -> dict[str, SymbolSpec]:
    """Every symbol of a book of several connections (the first server's spec of a name shared),
    what a scenario may name."""
    found: dict[str, SymbolSpec] = {}
    for part in parts:
        for name, spec in part.symbols.items():
            found.setdefault(name, spec)
    return found


def stress_book(parts: Sequence[BookPart], shocks: Sequence[Shock]) -> StressResult:
    """Stress a book made of several connections: each connection's accounts at its own quotes
    and symbol specs (servers differ), the results together."""
    result = StressResult(tuple(shocks))
    for part in parts:
        result.accounts.extend(run_stress(part.snapshots, part.symbols, part.quotes, shocks).accounts)
    return result
