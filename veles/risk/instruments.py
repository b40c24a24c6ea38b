"""MT5 symbol specifications: the fields of a symbol that margin, profit and swap depend on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from veles.risk.pickling import pickle_as_fields


class CalcMode(StrEnum):
    """MT5 margin and profit calculation modes (SYMBOL_CALC_MODE_*)."""

    FOREX = "forex"
    FOREX_NO_LEVERAGE = "forex_no_leverage"
    CFD = "cfd"
    CFD_INDEX = "cfd_index"
    CFD_LEVERAGE = "cfd_leverage"
    FUTURES = "futures"
    EXCHANGE_STOCKS = "exchange_stocks"


class SwapMode(StrEnum):
    """How swaps are charged (SYMBOL_SWAP_MODE_*), the subset brokers use."""

    DISABLED = "disabled"
    POINTS = "points"
    MONEY_BASE = "money_base"  # money in the symbol's base currency per lot
    MONEY_DEPOSIT = "money_deposit"  # money in the deposit currency per lot
    MONEY_MARGIN = "money_margin"  # money in the margin currency per lot
    MONEY_PROFIT = "money_profit"  # money in the profit currency per lot
    INTEREST_CURRENT = "interest_current"  # annual percent of the current price
    INTEREST_OPEN = "interest_open"  # annual percent of the open price


@dataclass(frozen=True, slots=True)
class MarginRates:
    """Initial and maintenance margin rates for one order direction (1.0 = as computed)."""

    initial: float = 1.0
    maintenance: float = 0.0  # 0 means "same as initial", as in MT5


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One symbol as the MT5 server defines it.

    `tick_value` is the server-side setting: money in the profit currency per `tick_size` move of
    one lot (the terminal's SYMBOL_TRADE_TICK_VALUE is the same converted to the deposit currency).
    `margin_initial` is MT5's fixed "Initial margin" (SYMBOL_MARGIN_INITIAL, per lot in the margin
    currency); when non-zero it replaces the contract-size formula. `margin_hedged` is the
    "Hedged margin" per lot for opposite positions (SYMBOL_MARGIN_HEDGED).
    """

    name: str
    calc_mode: CalcMode = CalcMode.FOREX
    contract_size: float = 100_000.0
    digits: int = 5
    tick_size: float = 0.00001
    tick_value: float = 1.0
    base_currency: str = ""
    profit_currency: str = "USD"
    margin_currency: str = ""
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    margin_hedged: float = 100_000.0
    buy_rates: MarginRates = MarginRates()
    sell_rates: MarginRates = MarginRates()
    swap_mode: SwapMode = SwapMode.DISABLED
    swap_long: float = 0.0
    swap_short: float = 0.0
    swap_triple_day: int = 3  # 0 = Sunday ... 6 = Saturday; 3 = Wednesday as in MT5
    swap_day_multipliers: tuple[float, ...] = (0.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.0)
    asset_class: str = "fx"  # fx | metal | index | energy | stock | future: for grouping in screens
    volume_min: float = 0.01
    volume_step: float = 0.01
    volume_max: float = 100.0

    @property
    def point(self) -> float:
        """Smallest price change in quotes: 10^-digits."""
        return 10.0**-self.digits

    @property
    def effective_margin_currency(self) -> str:
        """The currency margin is computed in: the margin currency, else the base currency."""
        return self.margin_currency or self.base_currency or self.profit_currency


for _cls in (MarginRates, SymbolSpec):  # in every checkpoint (see veles/risk/pickling.py)
    pickle_as_fields(_cls)
