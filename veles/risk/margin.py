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

from dataclasses import dataclass

from veles.risk.instruments import CalcMode, SymbolSpec
from veles.risk.money import MONEY_DIGITS, to_minor

_LEVERAGED_FIXED = (CalcMode.FOREX, CalcMode.CFD_LEVERAGE)


@dataclass(frozen=True, slots=True)
class LegTotals:
    """All positions of one direction of a symbol: total lots, weighted open price and weighted
    margin-currency-to-deposit conversion rate."""

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
    """Margin of all positions of one symbol, in deposit-currency minor units.

    A netting account has at most one non-empty leg, so this also covers netting.
    """
    if larger_leg:
        return max(
            to_minor(leg_margin(spec, buy, True, leverage, maintenance), digits),
            to_minor(leg_margin(spec, sell, False, leverage, maintenance), digits),
        )
    covered = min(buy.volume, sell.volume)
    buy_larger = buy.volume >= sell.volume
    larger = buy if buy_larger else sell
    uncovered = LegTotals(larger.volume - covered, larger.price, larger.conversion)
    total = to_minor(leg_margin(spec, uncovered, buy_larger, leverage, maintenance), digits)
    if covered > 0.0:
        both = buy.volume + sell.volume
        price = (buy.volume * buy.price + sell.volume * sell.price) / both
        conversion = (buy.volume * buy.conversion + sell.volume * sell.conversion) / both
        rate = (margin_rate(spec, True, maintenance) + margin_rate(spec, False, maintenance)) / 2.0
        base = base_margin(spec, covered, price, leverage, maintenance=maintenance, hedged=True)
        total += to_minor(base * conversion * rate, digits)
    return total
