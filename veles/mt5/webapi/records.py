"""The Web API's JSON records (symbol, group, user, account, position) written from Veles' own types.

Field names and enum numbers follow MetaQuotes' Manager/Web API configuration interfaces
(IMTConSymbol, IMTConGroup, IMTUser, IMTAccount, IMTPosition): `CalcMode`, `ContractSize`, `Swap3Day`,
`MarginSOMode`, `Storage`, `RateMargin`, `Volume` in 1/10000 lot and `VolumeExt` in 1/10^8 lot.
Every number is written as a string, as the server does. The fake server answers with these;
the client reads them back (`client.py`). They are checked against the documentation's examples,
not yet against a broker's live server: the first real connection should be compared field by
field (README, "Real MT5 servers").
"""

from __future__ import annotations

from veles.mt5.webapi.numbers import lossless, text
from veles.risk.account import AccountFigures
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
from veles.risk.instruments import CalcMode, SwapMode, SymbolSpec

CALC_MODES = {
    CalcMode.FOREX: 0,
    CalcMode.FUTURES: 1,
    CalcMode.CFD: 2,
    CalcMode.CFD_INDEX: 3,
    CalcMode.CFD_LEVERAGE: 4,
    CalcMode.FOREX_NO_LEVERAGE: 5,
    CalcMode.EXCHANGE_STOCKS: 32,
}
SWAP_MODES = {
    SwapMode.DISABLED: 0,
    SwapMode.POINTS: 1,
    SwapMode.MONEY_BASE: 2,
    SwapMode.MONEY_MARGIN: 3,
    SwapMode.MONEY_DEPOSIT: 4,
    SwapMode.INTEREST_CURRENT: 5,
    SwapMode.INTEREST_OPEN: 6,
    SwapMode.MONEY_PROFIT: 9,
}
MARGIN_MODE_RETAIL = 0  # netting
MARGIN_MODE_RETAIL_HEDGED = 2
MARGIN_SO_MODE_PERCENT = 0
MARGIN_SO_MODE_MONEY = 1
MARGIN_FLAGS_HEDGE_LARGE_LEG = 1
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
CURRENCY_DIGITS = {"JPY": 0}  # every other deposit currency Veles' simulator uses has 2


def currency_digits(currency: str) -> int:
    """Decimals of a deposit currency's money amounts."""
    return CURRENCY_DIGITS.get(currency, 2)


def group_name(snapshot: AccountSnapshot) -> str:
    """The MT5 group an account lives in. MT5 keeps deposit currency, margin mode and levels per
    group; the simulator keeps them per account, so each combination gets its own sub-group
    (`real\\standard\\USD\\hedging`), which the mask `real\\*` still matches."""
    return f"{snapshot.group}\\{snapshot.currency}\\{snapshot.margin_mode.value}"


def symbol_record(spec: SymbolSpec) -> dict[str, str]:
    """IMTConSymbol as JSON."""
    d = spec.digits
    return {
        "Symbol": spec.name,
        "Path": f"{spec.asset_class}\\{spec.name}",
        "Digits": str(d),
        "CalcMode": str(CALC_MODES[spec.calc_mode]),
        "ContractSize": lossless(spec.contract_size, 8),
        "TickSize": lossless(spec.tick_size, d),
        "TickValue": lossless(spec.tick_value, 8),
        "CurrencyBase": spec.base_currency,
        "CurrencyProfit": spec.profit_currency,
        "CurrencyMargin": spec.margin_currency,
        "MarginInitial": lossless(spec.margin_initial, 8),
        "MarginMaintenance": lossless(spec.margin_maintenance, 8),
        "MarginHedged": lossless(spec.margin_hedged, 8),
        "MarginInitialBuy": lossless(spec.buy_rates.initial, 8),
        "MarginInitialSell": lossless(spec.sell_rates.initial, 8),
        "MarginMaintenanceBuy": lossless(spec.buy_rates.maintenance, 8),
        "MarginMaintenanceSell": lossless(spec.sell_rates.maintenance, 8),
        "SwapMode": str(SWAP_MODES[spec.swap_mode]),
        "SwapLong": lossless(spec.swap_long, 8),
        "SwapShort": lossless(spec.swap_short, 8),
        "Swap3Day": str(spec.swap_triple_day),
        **{f"SwapRate{day}": lossless(rate, 8)
           for day, rate in zip(WEEKDAYS, spec.swap_day_multipliers, strict=True)},
        "VolumeMin": str(round(spec.volume_min * 10_000)),
        "VolumeStep": str(round(spec.volume_step * 10_000)),
        "VolumeMax": str(round(spec.volume_max * 10_000)),
    }


def group_record(name: str, snapshot: AccountSnapshot) -> dict[str, str]:
    """IMTConGroup as JSON, for the group `snapshot`'s account belongs to."""
    digits = currency_digits(snapshot.currency)
    money = snapshot.stopout_mode is StopoutMode.MONEY
    return {
        "Group": name,
        "Currency": snapshot.currency,
        "CurrencyDigits": str(digits),
        "MarginMode": str(
            MARGIN_MODE_RETAIL_HEDGED if snapshot.margin_mode is MarginMode.HEDGING else MARGIN_MODE_RETAIL
        ),
        "MarginSOMode": str(MARGIN_SO_MODE_MONEY if money else MARGIN_SO_MODE_PERCENT),
        "MarginCall": text(snapshot.margin_call, 2),
        "MarginStopOut": text(snapshot.stop_out, 2),
        "MarginFlags": str(MARGIN_FLAGS_HEDGE_LARGE_LEG if snapshot.hedged_margin_larger_leg else 0),
    }


def user_record(snapshot: AccountSnapshot, group: str) -> dict[str, str]:
    """IMTUser as JSON (the fields a risk view reads)."""
    digits = currency_digits(snapshot.currency)
    return {
        "Login": str(snapshot.login),
        "Group": group,
        "Name": snapshot.name,
        "Country": snapshot.country,
        "Leverage": str(snapshot.leverage),
        "Balance": text(snapshot.balance, digits),
        "Credit": text(snapshot.credit, digits),
        "Comment": f"book {snapshot.book}",
    }


def position_record(login: int, position: Position, spec: SymbolSpec, currency: str) -> dict[str, str]:
    """IMTPosition as JSON."""
    digits = currency_digits(currency)
    return {
        "Position": str(position.ticket),
        "Login": str(login),
        "Symbol": position.symbol,
        "Action": "0" if position.side is Side.BUY else "1",
        "Digits": str(spec.digits),
        "DigitsCurrency": str(digits),
        "ContractSize": text(spec.contract_size, 8),
        "Volume": str(round(position.volume * 10_000)),
        "VolumeExt": str(round(position.volume * 100_000_000)),
        "PriceOpen": lossless(position.price_open, spec.digits),
        "Storage": text(position.swap, digits),
        "RateMargin": lossless(position.margin_rate, 8),
        "TimeCreate": str(position.time_msc // 1000),
        "TimeCreateMsc": str(position.time_msc),
        "PriceSL": lossless(position.sl, spec.digits),
        "PriceTP": lossless(position.tp, spec.digits),
    }


def account_record(figures: AccountFigures) -> dict[str, str]:
    """IMTAccount as JSON (`user/account/get_batch`): the server's own trade figures of one
    account, money with its currency's digits. MT5 reports a margin level of 0 when there is no
    margin (Veles' figures say None)."""
    digits = currency_digits(figures.currency)
    level = figures.margin_level if figures.margin_level is not None else 0.0
    return {
        "Login": str(figures.login),
        "CurrencyDigits": str(digits),
        "Balance": text(figures.balance, digits),
        "Credit": text(figures.credit, digits),
        "Profit": text(figures.profit, digits),
        "Equity": text(figures.equity, digits),
        "Margin": text(figures.margin, digits),
        "MarginFree": text(figures.free_margin, digits),
        "MarginLevel": text(level, 2),
        "MarginLeverage": str(figures.leverage),
    }


DEAL_ACTIONS = {DealKind.BUY: 0, DealKind.SELL: 1, DealKind.BALANCE: 2, DealKind.CREDIT: 3}
DEAL_ENTRIES = {DealEntry.IN: 0, DealEntry.OUT: 1, DealEntry.INOUT: 2}


def tick_record(quote: Quote, spec: SymbolSpec) -> dict[str, str]:
    """MTTick as JSON (`tick/last`): prices with the symbol's digits, times in s and ms."""
    d = spec.digits
    return {
        "Symbol": quote.symbol,
        "Digits": str(d),
        "Datetime": str(quote.time_msc // 1000),
        "DatetimeMsc": str(quote.time_msc),
        "Bid": lossless(quote.bid, d),
        "Ask": lossless(quote.ask, d),
        "Last": "0",
        "Volume": "0",
    }


def deal_record(deal: Deal, currency: str, spec: SymbolSpec | None) -> dict[str, str]:
    """IMTDeal as JSON (`deal/get_batch`). A balance or credit operation is a deal whose `Action`
    says so and whose `Profit` carries the amount, as MT5 books it (there is no separate
    balance-operation record in the Web API)."""
    digits = currency_digits(currency)
    operation = deal.kind in (DealKind.BALANCE, DealKind.CREDIT)
    record = {
        "Deal": str(deal.ticket),
        "Login": str(deal.login),
        "Action": str(DEAL_ACTIONS[deal.kind]),
        "Entry": str(DEAL_ENTRIES[deal.entry]),
        "Time": str(deal.time_msc // 1000),
        "TimeMsc": str(deal.time_msc),
        "Symbol": deal.symbol,
        "Digits": str(spec.digits if spec else 0),
        "DigitsCurrency": str(digits),
        "ContractSize": lossless(spec.contract_size, 8) if spec else "0",
        "Price": lossless(deal.price, spec.digits if spec else 5),
        "Volume": str(round(deal.volume * 10_000)),
        "VolumeExt": str(round(deal.volume * 100_000_000)),
        "PositionID": str(deal.position_id),
        "Profit": lossless(deal.amount if operation else deal.profit, digits),
        "Commission": lossless(deal.commission, digits),
        "Storage": lossless(deal.swap, digits),
        "Comment": deal.comment,
    }
    if deal.margin_rate:  # MT5's RateMargin: the margin conversion rate the server fixed
        record["RateMargin"] = lossless(deal.margin_rate, 8)
    if not operation:  # the stops of the order that made the deal (0: none)
        record["PriceSL"] = lossless(deal.sl, spec.digits if spec else 5)
        record["PriceTP"] = lossless(deal.tp, spec.digits if spec else 5)
    return record
