"""One-shot what-if calculator: an account snapshot as JSON in, MT5 margin and profit figures out.

It backs `veles risk calc FILE.json` and is meant to back the portal's what-if tool, so it takes
plain JSON-like data, validates it strictly (unknown fields, NaN, non-positive prices or volumes
are errors) and reports the first problem as `CalcError` with a JSON-path-like field name, e.g.
`positions[0].volume: must be > 0`. Figures come from `AccountState`, so the calculator and the
live engine can never disagree.

Margin conversion rate. MT5 converts a position's margin into the deposit currency at the rate it
fixed when the position opened (the position's "Margin rate"), not at today's quote. A position
given without `margin_rate` takes that rate where the input determines it: when the symbol's own
price converts its margin currency into the deposit currency (EURUSD margined in EUR on a USD
account), the rate at opening was the position's open price (its fill: Ask for a buy, Bid for a
sell), so `margin_rate` = `price_open` (1 / `price_open` when the symbol is quoted the other way
round). The margin of hedged positions then follows MetaQuotes' rule: the uncovered volume at the
larger leg's weighted average open price, the covered volume at the weighted average open price of
all positions of the symbol (MT5 help, "Margin calculation > Hedged positions", worked example:
sells 3 x 1 lot at 1.11943, buys 2 x 1 lot at 1.11953, 1:500, rates 2 and 4 -> 2238.90). When
other pairs convert the margin (a CFD margined in USD on an EUR account), the rate at opening is
not in the input and the current quote is used; give `margin_rate` to get MT5's figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from veles.risk.account import AccountState
from veles.risk.conversion import resolve
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, MarginMode, Position, Quote, Side, StopoutMode
from veles.risk.instruments import CalcMode, MarginRates, SymbolSpec
from veles.risk.margin import LegTotals, leg_margin
from veles.risk.money import from_minor, round_money, to_minor
from veles.risk.profit import close_price

_CURRENCY = r"^[A-Z]{3}$"


class CalcError(ValueError):
    """Invalid calculator input; the message is `<field>: <reason>` on one line."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class AccountIn(_Strict):
    """The account's settings (MT5 group and account fields)."""

    login: int = 0
    currency: str = Field("USD", pattern=_CURRENCY)
    leverage: int = Field(100, gt=0)
    balance: float = 0.0
    credit: float = Field(0.0, ge=0)
    margin_mode: MarginMode = MarginMode.HEDGING
    hedged_margin_larger_leg: bool = False
    margin_call: float = Field(100.0, ge=0)
    stop_out: float = Field(50.0, ge=0)
    stopout_mode: StopoutMode = StopoutMode.PERCENT


class SymbolIn(_Strict):
    """A symbol's margin and profit settings; `margin_rate` multiplies both directions unless
    `buy_margin_rate` / `sell_margin_rate` set one (MT5 lets each direction have its own)."""

    calc_mode: CalcMode = CalcMode.FOREX
    contract_size: float = Field(100_000.0, gt=0)
    base_currency: str = Field("", pattern=r"^([A-Z]{3})?$")
    margin_currency: str = Field("", pattern=r"^([A-Z]{3})?$")
    profit_currency: str = Field("USD", pattern=_CURRENCY)
    digits: int = Field(5, ge=0, le=10)
    tick_size: float = Field(0.00001, gt=0)
    tick_value: float = Field(1.0, gt=0)
    margin_rate: float = Field(1.0, ge=0)
    buy_margin_rate: float | None = Field(None, ge=0)
    sell_margin_rate: float | None = Field(None, ge=0)
    initial_margin: float = Field(0.0, ge=0)
    maintenance_margin: float = Field(0.0, ge=0)
    hedged_margin: float = Field(100_000.0, ge=0)


class QuoteIn(_Strict):
    bid: float = Field(gt=0)
    ask: float = Field(gt=0)


class PositionIn(_Strict):
    """An open position; `margin_rate` is MT5's conversion rate fixed at opening (0 = the rate
    MT5 fixed where the input determines it, else the current one: see the module docstring)."""

    ticket: int = Field(gt=0)
    symbol: str = Field(min_length=1)
    type: Side
    volume: float = Field(gt=0)
    price_open: float = Field(gt=0)
    swap: float = 0.0
    commission: float = 0.0
    margin_rate: float = Field(0.0, ge=0)


# Ceilings on one document, so a what-if cannot be made to burn seconds of CPU (the API and the
# portal share this model): more open positions or symbols than any one MT5 account carries.
MAX_POSITIONS = 2_000
MAX_SYMBOLS = 500


class CalcInput(_Strict):
    """The whole input document."""

    account: AccountIn
    symbols: dict[str, SymbolIn] = Field(max_length=MAX_SYMBOLS)
    quotes: dict[str, QuoteIn] = Field(default_factory=dict, max_length=MAX_SYMBOLS)
    positions: list[PositionIn] = Field(default_factory=list, max_length=MAX_POSITIONS)


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "input"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "greater_than":
        return f"must be > {_number(ctx['gt'])}"
    if kind == "greater_than_equal":
        return f"must be >= {_number(ctx['ge'])}"
    if kind == "less_than_equal":
        return f"must be <= {_number(ctx['le'])}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "enum":
        return f"must be one of {ctx['expected']}"
    if kind == "too_long":
        return f"at most {ctx['max_length']} entries"
    if kind == "string_pattern_mismatch":
        return "must be a three-letter currency code"
    return str(error["msg"]).replace("\n", " ")


def parse(data: Any) -> CalcInput:
    """Validate the input document; CalcError names the first offending field."""
    try:
        return CalcInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CalcError(_path(tuple(first["loc"])), _reason(first)) from None


def _spec(name: str, symbol: SymbolIn) -> SymbolSpec:
    rate = symbol.margin_rate
    buy = MarginRates(initial=rate if symbol.buy_margin_rate is None else symbol.buy_margin_rate)
    sell = MarginRates(initial=rate if symbol.sell_margin_rate is None else symbol.sell_margin_rate)
    return SymbolSpec(
        name=name,
        calc_mode=symbol.calc_mode,
        contract_size=symbol.contract_size,
        digits=symbol.digits,
        tick_size=symbol.tick_size,
        tick_value=symbol.tick_value,
        base_currency=symbol.base_currency,
        profit_currency=symbol.profit_currency,
        margin_currency=symbol.margin_currency,
        margin_initial=symbol.initial_margin,
        margin_maintenance=symbol.maintenance_margin,
        margin_hedged=symbol.hedged_margin,
        buy_rates=buy,
        sell_rates=sell,
    )


def _check_quotes(doc: CalcInput, symbols: Mapping[str, SymbolSpec]) -> None:
    """Every held symbol and every margin/profit conversion pair must be quoted."""
    known = set(symbols) | set(doc.quotes)
    for index, position in enumerate(doc.positions):
        spec = symbols.get(position.symbol)
        if spec is None:
            raise CalcError(f"positions[{index}].symbol", f"unknown symbol {position.symbol!r}")
        if position.symbol not in doc.quotes:
            raise CalcError(f"quotes.{position.symbol}", f"missing quote for held symbol {position.symbol}")
        for source in (spec.effective_margin_currency, spec.profit_currency):
            conversion = resolve(source, doc.account.currency, known)
            for pair in conversion.pairs:
                if pair not in doc.quotes:
                    raise CalcError(
                        f"quotes.{pair}",
                        f"missing quote, needed to convert {source} to {doc.account.currency}",
                    )


def opening_margin_rate(spec: SymbolSpec, deposit: str, position: PositionIn, known: set[str]) -> float:
    """The margin conversion rate MT5 fixed when `position` opened, as far as the input says it:
    the given `margin_rate`; else, when the symbol's own price is the conversion, that conversion at
    the open price; else 0 (unknown: the current quote is used). See the module docstring."""
    if position.margin_rate:
        return position.margin_rate
    conversion = resolve(spec.effective_margin_currency, deposit, known)
    if conversion.pairs != (position.symbol,):
        return 0.0
    price = position.price_open
    at_open = {position.symbol: Quote(position.symbol, price, price)}
    return conversion.margin_rate(at_open, position.type is Side.BUY)


def calculate(data: Any) -> dict[str, Any]:
    """Figures of one account snapshot: per position margin and profit, account totals and state.

    Per-position `margin` is what that position alone would require; the account `margin` also
    applies MT5's hedging rules across positions of a symbol, so it can be less than their sum.
    """
    doc = parse(data)
    symbols = {name: _spec(name, symbol) for name, symbol in doc.symbols.items()}
    _check_quotes(doc, symbols)
    quotes = {name: Quote(name, q.bid, q.ask) for name, q in doc.quotes.items()}
    account = doc.account
    known = set(symbols) | set(quotes)
    rates = [opening_margin_rate(symbols[p.symbol], account.currency, p, known) for p in doc.positions]
    snapshot = AccountSnapshot(
        login=account.login,
        currency=account.currency,
        leverage=account.leverage,
        balance=account.balance,
        credit=account.credit,
        margin_mode=account.margin_mode,
        hedged_margin_larger_leg=account.hedged_margin_larger_leg,
        margin_call=account.margin_call,
        stop_out=account.stop_out,
        stopout_mode=account.stopout_mode,
        positions=tuple(
            Position(p.ticket, p.symbol, p.type, p.volume, p.price_open, p.swap, p.commission, rate)
            for p, rate in zip(doc.positions, rates, strict=True)
        ),
    )
    try:
        state = AccountState(snapshot, symbols, quotes)
    except RejectedEvent as exc:
        raise CalcError(exc.field, exc.reason) from None
    profits = state.position_profits()
    rows = []
    for p, rate in zip(doc.positions, rates, strict=True):
        spec = symbols[p.symbol]
        buy = p.type is Side.BUY
        conversion = rate or resolve(spec.effective_margin_currency, account.currency, known).margin_rate(
            quotes, buy
        )
        margin = leg_margin(spec, LegTotals(p.volume, p.price_open, conversion), buy, account.leverage)
        rows.append(
            {
                "ticket": p.ticket,
                "symbol": p.symbol,
                "type": p.type.value,
                "volume": p.volume,
                "price_open": p.price_open,
                "price_current": close_price(buy, quotes[p.symbol]),
                "margin": from_minor(to_minor(margin)),
                "margin_rate": conversion,
                "profit": profits[p.ticket],
                "swap": round_money(p.swap),
                "commission": round_money(p.commission),
            }
        )
    figures = state.figures()
    return {
        "account": {
            "currency": figures.currency,
            "leverage": figures.leverage,
            "balance": figures.balance,
            "credit": figures.credit,
            "profit": figures.profit,
            "equity": figures.equity,
            "margin": figures.margin,
            "free_margin": figures.free_margin,
            "margin_level": None if figures.margin_level is None else round(figures.margin_level, 2),
            "state": figures.state,
        },
        "positions": rows,
    }
