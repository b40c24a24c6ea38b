"""Profit of positions per MT5 calculation mode, in the symbol's profit currency.

MQL5 reference, ENUM_SYMBOL_CALC_MODE
(https://www.mql5.com/en/docs/constants/environment_state/marketinfoconstants#enum_symbol_calc_mode):

* Forex, Forex No Leverage, CFD, CFD Index, CFD Leverage, Exchange Stocks:
  (close_price - open_price) * Contract_Size * Lots
* Futures: (close_price - open_price) * TickPrice / TickSize * Lots

A buy position closes at the Bid, a sell at the Ask, so floating profit uses those prices. The
result is converted to the deposit currency by `Conversion.convert_profit` (profit at the
client-unfavourable rate) and rounded per position to the deposit digits, as MT5 does.
"""

from __future__ import annotations

from veles.risk.events import Quote
from veles.risk.instruments import CalcMode, SymbolSpec


def value_per_price_unit(spec: SymbolSpec) -> float:
    """Profit (profit currency) of one lot when the price moves by 1.0.

    `tick_value` is read as the server's symbol setting: money in the profit currency per
    `tick_size` move of one lot.
    """
    if spec.calc_mode is CalcMode.FUTURES:
        return spec.tick_value / spec.tick_size
    return spec.contract_size


def close_price(buy: bool, quote: Quote) -> float:
    """The price a position would close at now: Bid for buys, Ask for sells."""
    return quote.bid if buy else quote.ask


def raw_profit(spec: SymbolSpec, buy: bool, volume: float, open_price: float, price: float) -> float:
    """Profit in the profit currency of `volume` lots opened at `open_price` and closed at `price`."""
    move = price - open_price if buy else open_price - price
    return move * volume * value_per_price_unit(spec)
