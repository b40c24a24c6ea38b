"""Web API records (JSON objects of strings) read into the events the engine consumes.

The inverse of `records.py`: IMTConSymbol → `SymbolSpec` (every field margin, profit and swap
depend on), IMTConGroup + IMTUser + IMTPosition → `AccountSnapshot`, MTTick → `Quote`, IMTDeal →
`Deal`. Numbers are parsed exactly (`numbers.py`): money through integer minor units of the
group's currency, so a figure with more decimals than the currency has is refused, not rounded.
A record that is not what the Web API sends raises `ValueError` naming the field; the gateway
turns that into a `ProtocolError` naming the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from veles.mt5.webapi import numbers
from veles.mt5.webapi.records import (
    CALC_MODES,
    MARGIN_FLAGS_HEDGE_LARGE_LEG,
    MARGIN_MODE_RETAIL_HEDGED,
    MARGIN_SO_MODE_MONEY,
    SWAP_MODES,
    WEEKDAYS,
)
from veles.risk.events import (
    AccountSnapshot,
    Deal,
    DealEntry,
    DealKind,
    MarginMode,
    Position,
    Quote,
    Side,
    StopoutMode,
)
from veles.risk.instruments import MarginRates, SwapMode, SymbolSpec

CALC_MODE_OF = {number: mode for mode, number in CALC_MODES.items()}
SWAP_MODE_OF = {number: mode for mode, number in SWAP_MODES.items()}
ENTRY_OF = {0: DealEntry.IN, 1: DealEntry.OUT, 2: DealEntry.INOUT}
# MT5 deal actions (IMTDeal::EnDealAction): 0 buy, 1 sell; 3 credit and 20 stop-out compensation
# of credit move the credit; 13/14 are canceled buy/sell deals that moved nothing; every other
# non-trade action (balance, charge, correction, bonus, commissions, agent, interest, dividend,
# tax, stop-out compensation) moves the balance by its Profit.
CREDIT_ACTIONS = frozenset({3, 20})
CANCELED_ACTIONS = frozenset({13, 14})
DEFAULT_WEEK: tuple[float, ...] = SymbolSpec("default").swap_day_multipliers


@dataclass(frozen=True, slots=True)
class Group:
    """A group's deposit currency and margin settings, as an account inherits them."""

    name: str
    currency: str
    currency_digits: int
    margin_mode: MarginMode
    hedged_margin_larger_leg: bool
    stopout_mode: StopoutMode
    margin_call: float
    stop_out: float


def _str(record: Mapping[str, Any], key: str) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    return value


def _float(record: Mapping[str, Any], key: str) -> float:
    return float(numbers.decimal(record[key], key))


def _int(record: Mapping[str, Any], key: str) -> int:
    return numbers.integer(record[key], key)


def _money(record: Mapping[str, Any], key: str, digits: int) -> float:
    """Money as the float the engine's events carry, through exact minor units (an int divided
    by a power of ten is correctly rounded: the same float as the decimal text)."""
    return numbers.minor_units(record[key], digits, key) / 10**digits


def symbol(r: Mapping[str, Any]) -> SymbolSpec:
    """IMTConSymbol → SymbolSpec."""
    calc = _int(r, "CalcMode")
    swap = _int(r, "SwapMode")
    if calc not in CALC_MODE_OF:
        raise ValueError(f"CalcMode {calc} is not one Veles computes")
    if swap not in SWAP_MODE_OF:
        raise ValueError(f"SwapMode {swap} is not one Veles computes")
    # Per-weekday swap multipliers (SwapRateSunday..Saturday); servers without them charge MT5's
    # default week (triple on Wednesday).
    multipliers = (tuple(_float(r, f"SwapRate{day}") for day in WEEKDAYS) if "SwapRateSunday" in r
                   else DEFAULT_WEEK)
    path = r.get("Path", "")
    return SymbolSpec(
        name=_str(r, "Symbol"),
        calc_mode=CALC_MODE_OF[calc],
        contract_size=_float(r, "ContractSize"),
        digits=_int(r, "Digits"),
        tick_size=_float(r, "TickSize"),
        tick_value=_float(r, "TickValue"),
        base_currency=_str(r, "CurrencyBase"),
        profit_currency=_str(r, "CurrencyProfit"),
        margin_currency=_str(r, "CurrencyMargin"),
        margin_initial=_float(r, "MarginInitial"),
        margin_maintenance=_float(r, "MarginMaintenance"),
        margin_hedged=_float(r, "MarginHedged"),
        buy_rates=MarginRates(_float(r, "MarginInitialBuy"), _float(r, "MarginMaintenanceBuy")),
        sell_rates=MarginRates(_float(r, "MarginInitialSell"), _float(r, "MarginMaintenanceSell")),
        swap_mode=SWAP_MODE_OF.get(swap, SwapMode.DISABLED),
        swap_long=_float(r, "SwapLong"),
        swap_short=_float(r, "SwapShort"),
        swap_triple_day=_int(r, "Swap3Day"),
        swap_day_multipliers=multipliers,
        asset_class=path.split("\\", 1)[0] if isinstance(path, str) and "\\" in path else "fx",
        volume_min=_int(r, "VolumeMin") / 10_000,
        volume_step=_int(r, "VolumeStep") / 10_000,
        volume_max=_int(r, "VolumeMax") / 10_000,
    )


def group(r: Mapping[str, Any]) -> Group:
    """IMTConGroup → the settings its accounts inherit."""
    return Group(
        name=_str(r, "Group"),
        currency=_str(r, "Currency"),
        currency_digits=_int(r, "CurrencyDigits"),
        margin_mode=(MarginMode.HEDGING if _int(r, "MarginMode") == MARGIN_MODE_RETAIL_HEDGED
                     else MarginMode.NETTING),
        hedged_margin_larger_leg=bool(_int(r, "MarginFlags") & MARGIN_FLAGS_HEDGE_LARGE_LEG),
        stopout_mode=(StopoutMode.MONEY if _int(r, "MarginSOMode") == MARGIN_SO_MODE_MONEY
                      else StopoutMode.PERCENT),
        margin_call=_float(r, "MarginCall"),
        stop_out=_float(r, "MarginStopOut"),
    )


def position(r: Mapping[str, Any]) -> tuple[int, Position]:
    """IMTPosition → (login, Position); volume from `VolumeExt` (1/10^8 lot)."""
    action = _int(r, "Action")
    if action not in (0, 1):
        raise ValueError(f"position {r.get('Position')} has Action {action}, not buy (0) or sell (1)")
    digits = _int(r, "DigitsCurrency")
    return _int(r, "Login"), Position(
        ticket=_int(r, "Position"),
        symbol=_str(r, "Symbol"),
        side=Side.BUY if action == 0 else Side.SELL,
        volume=_int(r, "VolumeExt") / 100_000_000,
        price_open=_float(r, "PriceOpen"),
        swap=_money(r, "Storage", digits),
        margin_rate=_float(r, "RateMargin") if "RateMargin" in r else 0.0,
        time_msc=_open_msc(r),
        sl=_float(r, "PriceSL") if "PriceSL" in r else 0.0,
        tp=_float(r, "PriceTP") if "PriceTP" in r else 0.0,
    )


def _open_msc(r: Mapping[str, Any]) -> int:
    """IMTPosition's open time in ms: TimeCreateMsc, else TimeCreate (seconds); 0 when neither."""
    if "TimeCreateMsc" in r:
        return _int(r, "TimeCreateMsc")
    return _int(r, "TimeCreate") * 1000 if "TimeCreate" in r else 0


def account(user: Mapping[str, Any], groups: Mapping[str, Group],
            positions: Sequence[Position], last_deal_ticket: int) -> AccountSnapshot:
    """IMTUser of a readable group, with its open positions, → AccountSnapshot."""
    name = _str(user, "Group")
    g = groups.get(name)
    if g is None:
        raise ValueError(f"user {user.get('Login')} is in group {name}, which the manager cannot read")
    return AccountSnapshot(
        login=_int(user, "Login"),
        currency=g.currency,
        leverage=_int(user, "Leverage"),
        balance=_money(user, "Balance", g.currency_digits),
        credit=_money(user, "Credit", g.currency_digits),
        margin_mode=g.margin_mode,
        hedged_margin_larger_leg=g.hedged_margin_larger_leg,
        margin_call=g.margin_call,
        stop_out=g.stop_out,
        stopout_mode=g.stopout_mode,
        group=name,
        name=user.get("Name", "") if isinstance(user.get("Name", ""), str) else "",
        country=user.get("Country", "") if isinstance(user.get("Country", ""), str) else "",
        positions=tuple(sorted(positions, key=lambda p: p.ticket)),
        last_deal_ticket=last_deal_ticket,
    )


def tick(r: Mapping[str, Any]) -> Quote:
    """MTTick → Quote (time in ms of the server's clock)."""
    msc = _int(r, "DatetimeMsc") if "DatetimeMsc" in r else _int(r, "Datetime") * 1000
    return Quote(_str(r, "Symbol"), _float(r, "Bid"), _float(r, "Ask"), msc)


def deal(r: Mapping[str, Any]) -> Deal | None:
    """IMTDeal → Deal; None for a canceled deal (it moved nothing)."""
    action = _int(r, "Action")
    if action in CANCELED_ACTIONS:
        return None
    digits = _int(r, "DigitsCurrency")
    profit = _money(r, "Profit", digits)
    time_msc = _int(r, "TimeMsc") if "TimeMsc" in r else _int(r, "Time") * 1000
    comment = r.get("Comment", "")
    comment = comment if isinstance(comment, str) else ""
    ticket, login = _int(r, "Deal"), _int(r, "Login")
    if action >= 2:
        kind = DealKind.CREDIT if action in CREDIT_ACTIONS else DealKind.BALANCE
        return Deal(ticket=ticket, login=login, kind=kind, time_msc=time_msc, amount=profit, comment=comment)
    entry = _int(r, "Entry")
    if entry not in ENTRY_OF:
        raise ValueError(f"deal {ticket} has Entry {entry}, not in (0), out (1) or in/out (2)")
    return Deal(
        ticket=ticket,
        login=login,
        kind=DealKind.BUY if action == 0 else DealKind.SELL,
        time_msc=time_msc,
        entry=ENTRY_OF[entry],
        symbol=_str(r, "Symbol"),
        volume=_int(r, "VolumeExt") / 100_000_000,
        price=_float(r, "Price"),
        position_id=_int(r, "PositionID"),
        profit=profit,
        commission=_money(r, "Commission", digits),
        swap=_money(r, "Storage", digits),
        comment=comment,
        margin_rate=_float(r, "RateMargin") if "RateMargin" in r else 0.0,
        sl=_float(r, "PriceSL") if "PriceSL" in r else 0.0,
        tp=_float(r, "PriceTP") if "PriceTP" in r else 0.0,
    )
