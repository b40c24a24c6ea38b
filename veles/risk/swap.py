"""The swap one rollover charges, per MT5 swap mode.

MQL5 reference, ENUM_SYMBOL_SWAP_MODE
(https://www.mql5.com/en/docs/constants/environment_state/marketinfoconstants#enum_symbol_swap_mode):

* points: swap_long/short points of price per lot, valued like a profit of that price move
  (Lots * points * Point * ContractSize, or TickValue / TickSize for Futures), profit currency;
* money in the base, margin, profit or deposit currency: Lots * swap;
* interest of the current or the open price: Lots * value of one lot at that price * swap% / 360
  ("standard bank year is 360 days"), profit currency.

A positive amount is credited to the client, a negative one charged. The day multiplier comes
from `SymbolSpec.swap_day_multipliers` (0 = Sunday ... 6 = Saturday), MT5's per-weekday swap
multipliers; when those are left at MT5's default (triple swap on Wednesday), the older
`swap_triple_day` field moves the triple charge to another weekday, which is how older servers
expressed it. The amount is converted to the deposit currency like a profit (client-unfavourable
rate) and rounded to the deposit digits.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from veles.risk.conversion import resolve
from veles.risk.errors import MissingQuoteError
from veles.risk.events import Quote, Side
from veles.risk.instruments import SwapMode, SymbolSpec
from veles.risk.money import MONEY_DIGITS, round_money
from veles.risk.profit import close_price, value_per_price_unit

MT5_DEFAULT_MULTIPLIERS = (0.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.0)
BANK_YEAR_DAYS = 360.0


def day_multiplier(spec: SymbolSpec, weekday: int) -> float:
    """How many days of swap the rollover at the end of `weekday` (0 = Sunday) charges."""
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday: must be 0 (Sunday) to 6 (Saturday), got {weekday}")
    multipliers = spec.swap_day_multipliers
    if multipliers == MT5_DEFAULT_MULTIPLIERS and spec.swap_triple_day != 3:
        if weekday == spec.swap_triple_day:
            return 3.0
        return 0.0 if weekday in (0, 6) else 1.0
    return multipliers[weekday]


def swap_per_day(
    spec: SymbolSpec, side: Side, volume: float, open_price: float, price: float
) -> tuple[float, str]:
    """One day's swap and the currency it is in ("" = the deposit currency)."""
    rate = spec.swap_long if side is Side.BUY else spec.swap_short
    mode = spec.swap_mode
    if mode is SwapMode.DISABLED:
        return 0.0, ""
    if mode is SwapMode.POINTS:
        return volume * rate * spec.point * value_per_price_unit(spec), spec.profit_currency
    if mode is SwapMode.MONEY_DEPOSIT:
        return volume * rate, ""
    if mode is SwapMode.MONEY_BASE:
        return volume * rate, spec.base_currency or spec.effective_margin_currency
    if mode is SwapMode.MONEY_MARGIN:
        return volume * rate, spec.effective_margin_currency
    if mode is SwapMode.MONEY_PROFIT:
        return volume * rate, spec.profit_currency
    reference = price if mode is SwapMode.INTEREST_CURRENT else open_price
    value = volume * reference * value_per_price_unit(spec)
    return value * rate / 100.0 / BANK_YEAR_DAYS, spec.profit_currency


def rollover_swap(
    spec: SymbolSpec,
    side: Side,
    volume: float,
    open_price: float,
    *,
    weekday: int,
    deposit_currency: str,
    quotes: Mapping[str, Quote],
    known: Container[str] | None = None,
    digits: int = MONEY_DIGITS,
) -> float:
    """The swap (deposit currency, rounded) the rollover at the end of `weekday` books on a position.

    `quotes` must hold the symbol's quote (for interest on the current price) and the conversion
    pair when the swap currency differs from the deposit currency; otherwise MissingQuoteError.
    """
    multiplier = day_multiplier(spec, weekday)
    if multiplier == 0.0 or spec.swap_mode is SwapMode.DISABLED:
        return 0.0
    current = open_price
    if spec.swap_mode is SwapMode.INTEREST_CURRENT:
        quote = quotes.get(spec.name)
        if quote is None:
            raise MissingQuoteError(spec.name, spec.profit_currency, deposit_currency)
        current = close_price(side is Side.BUY, quote)
    amount, currency = swap_per_day(spec, side, volume, open_price, current)
    amount *= multiplier
    if currency and currency != deposit_currency:
        conversion = resolve(currency, deposit_currency, known if known is not None else quotes)
        amount = conversion.convert_profit(amount, quotes)
    return round_money(amount, digits)
