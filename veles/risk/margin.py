"""Margin per MT5 calculation mode, for netting and hedging accounts.

Sources (MetaQuotes, MT5 platform help, Symbols > Trade > Margin Calculation):

* Basic formulas - https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/
  admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    Forex:             Lots * ContractSize / Leverage
    Forex No Leverage: Lots * ContractSize
    CFD:               Lots * ContractSize * Price
    CFD Leverage:      Lots * ContractSize * Price / Leverage
    CFD Index:         Lots * ContractSize * Price * TickValue / TickSize
    Futures:           Lots * InitialMargin (Lots * MaintenanceMargin for open positions)
    Exchange Stocks:   Lots * ContractSize * Price
  Fixed margin: a non-zero "Initial margin" replaces the formula by Lots * InitialMargin (or
  MaintenanceMargin), divided by the leverage for Forex and CFD Leverage only. A zero maintenance
  margin means "same as initial".
* Netting - .../margin_calculation/margin_forex: basic value, converted to the deposit currency
  (Ask for buys, Bid for sells), multiplied by the direction's margin rate.
* Hedging - .../margin_calculation/margin_forex_hedge: per symbol, positions of one direction are
  summed at their volume-weighted open price. Basic mode: the uncovered volume (larger leg minus
  smaller) at the larger leg's price, rate and conversion, plus the covered volume at the
  weighted open price of all positions, with "Hedged margin" in place of the contract size (or as
  an absolute per-lot amount when a fixed initial margin is set), the average of the buy and sell
  rates and the weighted conversion rate. "Larger leg" mode: the larger of the buy-leg and
  sell-leg margins. Each part is rounded to the deposit digits before summing, as in the printed
  example (1343.36 + 895.54 = 2238.90).

"Price" for open positions is the (weighted) open price: MT5 margins positions at their open price,
orders at the market price. Open positions use the maintenance margin and the maintenance rates
(falling back to initial when zero), as MT5 reserves maintenance margin once a position is open.
"""

from __future__ import annotations

from typing import NamedTuple

from veles.risk.instruments import CalcMode, SymbolSpec
from veles.risk.money import MONEY_DIGITS, to_minor

_LEVERAGED_FIXED = (CalcMode.FOREX, CalcMode.CFD_LEVERAGE)


class LegTotals(NamedTuple):
    """All positions of one direction of a symbol: total lots, weighted open price and weighted
    margin-currency-to-deposit conversion rate. A NamedTuple: built twice per symbol per tick."""

    volume: float
    price: float
    conversion: float


NO_LEG = LegTotals(0.0, 0.0, 0.0)


def _fixed_per_lot(spec: SymbolSpec, maintenance: bool) -> float:
    if maintenance and spec.margin_maintenance > 0.0:
        return spec.margin_maintenance
    return spec.margin_initial


def base_margin(
    spec: SymbolSpec,
    volume: float,
    price: float,
    leverage: float,
    *,
    maintenance: bool = True,
    hedged: bool = False,
) -> float:
    """MT5's basic margin in the margin currency, before conversion and margin rates.

    `hedged` computes the covered-volume part: "Hedged margin" replaces the contract size, or is
    the absolute per-lot amount when the symbol has a fixed initial margin (and for Futures).
    """
    mode = spec.calc_mode
    if mode is CalcMode.FUTURES or spec.margin_initial > 0.0:
        per_lot = spec.margin_hedged if hedged else _fixed_per_lot(spec, maintenance)
        amount = volume * per_lot
        return amount / leverage if mode in _LEVERAGED_FIXED else amount
    size = volume * (spec.margin_hedged if hedged else spec.contract_size)
    if mode is CalcMode.FOREX:
        return size / leverage
    if mode is CalcMode.FOREX_NO_LEVERAGE:
        return size
    if mode is CalcMode.CFD_LEVERAGE:
        return size * price / leverage
    if mode is CalcMode.CFD_INDEX:
        return size * price * spec.tick_value / spec.tick_size
    return size * price  # CFD, Exchange Stocks


def margin_rate(spec: SymbolSpec, buy: bool, maintenance: bool = True) -> float:
    """The symbol's margin multiplier for a direction (maintenance falls back to initial when 0)."""
    rates = spec.buy_rates if buy else spec.sell_rates
    if maintenance and rates.maintenance > 0.0:
        return rates.maintenance
    return rates.initial


def leg_margin(
    spec: SymbolSpec, leg: LegTotals, buy: bool, leverage: float, maintenance: bool = True
) -> float:
    """Margin of one direction's positions in the deposit currency (not rounded)."""
    if leg.volume <= 0.0:
        return 0.0
    base = base_margin(spec, leg.volume, leg.price, leverage, maintenance=maintenance)
    return base * leg.conversion * margin_rate(spec, buy, maintenance)


class LegSums(NamedTuple):
    """Running sums of one direction's positions, as AccountState keeps them: lots, lots * open
    price, lots * fixed conversion rate (positions whose rate was fixed at opening) and the lots
    whose conversion rate is the current one."""

    volume: float
    price_volume: float
    fixed_conversion: float
    floating_volume: float


NO_SUMS = LegSums(0.0, 0.0, 0.0, 0.0)


class MarginPlan(NamedTuple):
    """A symbol's margin as a function of the current conversion rates.

    Between two deals nothing in MT5's margin of a symbol moves except the conversion rate of the
    positions without a fixed one, and margin is linear in that rate. So each part of the margin
    (uncovered and covered volume, or each leg in "larger leg" mode) is `c0 + c_buy * rate_buy +
    c_sell * rate_sell`, rounded to minor units; the parts are summed (basic mode) or the larger
    one taken. A tick then costs a few multiplications instead of re-running the formulas.
    """

    parts: tuple[tuple[float, float, float], ...]
    larger_leg: bool
    needs_buy_rate: bool
    needs_sell_rate: bool
    digits: int = MONEY_DIGITS

    def minor(self, rate_buy: float = 0.0, rate_sell: float = 0.0) -> int:
        """Margin in deposit minor units at these current buy-side and sell-side rates."""
        digits = self.digits
        values = [
            to_minor(c0 + c_buy * rate_buy + c_sell * rate_sell, digits) for c0, c_buy, c_sell in self.parts
        ]
        if self.larger_leg:
            return max(values, default=0)
        return sum(values)


def _plan(parts: list[tuple[float, float, float]], larger_leg: bool, digits: int) -> MarginPlan:
    return MarginPlan(
        tuple(parts),
        larger_leg,
        needs_buy_rate=any(part[1] != 0.0 for part in parts),
        needs_sell_rate=any(part[2] != 0.0 for part in parts),
        digits=digits,
    )


def _leg_part(
    spec: SymbolSpec, leg: LegSums, charged: float, is_buy: bool, leverage: float, maintenance: bool
) -> tuple[float, float, float]:
    """The plan part of `charged` lots of one leg, at the leg's average price, spread over the
    leg's fixed and floating conversions in proportion to their volumes."""
    average = LegTotals(charged, leg.price_volume / leg.volume, 1.0)
    unit = leg_margin(spec, average, is_buy, leverage, maintenance)
    fixed, floating = unit * leg.fixed_conversion / leg.volume, unit * leg.floating_volume / leg.volume
    return (fixed, floating, 0.0) if is_buy else (fixed, 0.0, floating)


def margin_plan(
    spec: SymbolSpec,
    buy: LegSums,
    sell: LegSums,
    leverage: float,
    *,
    larger_leg: bool = False,
    maintenance: bool = True,
    digits: int = MONEY_DIGITS,
) -> MarginPlan:
    """The margin plan of one symbol's positions (see MarginPlan and the module docstring).

    A netting account has at most one non-empty leg, so this also covers netting.
    """
    parts: list[tuple[float, float, float]] = []
    if larger_leg:
        for is_buy, leg in ((True, buy), (False, sell)):
            if leg.volume > 0.0:
                parts.append(_leg_part(spec, leg, leg.volume, is_buy, leverage, maintenance))
        return _plan(parts, True, digits)
    covered = min(buy.volume, sell.volume)
    buy_larger = buy.volume >= sell.volume
    larger = buy if buy_larger else sell
    if larger.volume > covered:
        parts.append(_leg_part(spec, larger, larger.volume - covered, buy_larger, leverage, maintenance))
    if covered > 0.0:
        both = buy.volume + sell.volume
        price = (buy.price_volume + sell.price_volume) / both
        rate = (margin_rate(spec, True, maintenance) + margin_rate(spec, False, maintenance)) / 2.0
        unit = base_margin(spec, covered, price, leverage, maintenance=maintenance, hedged=True) * rate / both
        parts.append(
            (
                unit * (buy.fixed_conversion + sell.fixed_conversion),
                unit * buy.floating_volume,
                unit * sell.floating_volume,
            )
        )
    return _plan(parts, False, digits)


def symbol_margin_minor(
    spec: SymbolSpec,
    buy: LegTotals,
    sell: LegTotals,
    leverage: float,
    *,
    larger_leg: bool = False,
    maintenance: bool = True,
    digits: int = MONEY_DIGITS,
) -> int:
    """Margin of all positions of one symbol from per-leg totals, in deposit minor units."""
    sums = [
        LegSums(leg.volume, leg.volume * leg.price, leg.volume * leg.conversion, 0.0) for leg in (buy, sell)
    ]
    plan = margin_plan(
        spec, sums[0], sums[1], leverage, larger_leg=larger_leg, maintenance=maintenance, digits=digits
    )
    return plan.minor()
