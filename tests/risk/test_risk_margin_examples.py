"""MetaQuotes' worked margin examples, reproduced through the risk core.

Where the MT5 help prints a number, the test asserts that number. Where it only gives a formula,
the test says so and computes the expected value by hand from the formula.
"""

from __future__ import annotations

import pytest

from veles.risk.account import AccountState
from veles.risk.events import AccountSnapshot, MarginMode, Position, Quote, Side
from veles.risk.instruments import CalcMode, MarginRates, SymbolSpec
from veles.risk.margin import LegTotals, base_margin, leg_margin, symbol_margin_minor

EURUSD = SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD")


def _account(
    positions: list[Position],
    symbols: dict[str, SymbolSpec],
    quotes: dict[str, Quote],
    *,
    leverage: int = 100,
    mode: MarginMode = MarginMode.HEDGING,
    larger_leg: bool = False,
) -> AccountState:
    snapshot = AccountSnapshot(
        login=1,
        leverage=leverage,
        balance=100_000.0,
        margin_mode=mode,
        hedged_margin_larger_leg=larger_leg,
        positions=tuple(positions),
    )
    return AccountState(snapshot, symbols, quotes)


def test_forex_basic_formula() -> None:
    """Forex: 1 lot EURUSD, contract 100,000, leverage 1:100 -> EUR 1000.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    assert base_margin(EURUSD, 1.0, 1.1, 100) == pytest.approx(1000.0)


def test_forex_no_leverage() -> None:
    """Forex No Leverage: 1 lot EURUSD, contract 100,000 -> EUR 100,000.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    spec = SymbolSpec("EURUSD", CalcMode.FOREX_NO_LEVERAGE, base_currency="EUR")
    assert base_margin(spec, 1.0, 1.1, 100) == pytest.approx(100_000.0)


def test_cfd_oil() -> None:
    """CFD: 1 lot of oil, contract 100 barrels, Ask USD 80 -> USD 8,000.

    Through the account: a buy opened at the Ask of 80 on a USD account.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    oil = SymbolSpec("OIL", CalcMode.CFD, 100.0, 2, 0.01, 1.0, "USD", "USD", "USD")
    state = _account(
        [Position(1, "OIL", Side.BUY, 1.0, 80.0)], {"OIL": oil}, {"OIL": Quote("OIL", 79.98, 80.0)}
    )
    assert state.figures().margin == 8000.0


def test_exchange_stocks() -> None:
    """Exchange Stocks: 1 lot of #AA, contract 100, Ask 33.00 USD -> 3300 USD.

    Source: https://www.metatrader5.com/en/terminal/help/trading_advanced/margin_forex ("Contracts,
    Exchange Stocks"), same formula in the administrator help's margin_formula page.
    """
    stock = SymbolSpec("#AA", CalcMode.EXCHANGE_STOCKS, 100.0, 2, 0.01, 1.0, "USD", "USD", "USD")
    state = _account(
        [Position(1, "#AA", Side.BUY, 1.0, 33.0)], {"#AA": stock}, {"#AA": Quote("#AA", 32.99, 33.0)}
    )
    assert state.figures().margin == 3300.0


def test_cfd_leverage_positions_in_one_direction() -> None:
    """CFD Leverage, Buy 1 lot at 15.436 and 2 lots at 15.432, contract 5,000, leverage 1:100:
    weighted price 15.433333333, margin 3 * 5000 * 15.433333333 / 100 = 2 315.00.
    ("Positions/orders opened in the same direction"; the example's pending order is left out,
    the risk core holds no orders).

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    spec = SymbolSpec("XYZ", CalcMode.CFD_LEVERAGE, 5000.0, 3, 0.001, 1.0, "USD", "USD", "USD")
    positions = [Position(1, "XYZ", Side.BUY, 1.0, 15.436), Position(2, "XYZ", Side.BUY, 2.0, 15.432)]
    state = _account(positions, {"XYZ": spec}, {"XYZ": Quote("XYZ", 15.44, 15.45)})
    assert state.figures().margin == 2315.00


def test_cfd_index_by_formula() -> None:
    """CFD Index: Lots * ContractSize * Price * TickValue / TickSize.

    The help prints no numbers for this mode: computed by the formula, 2 lots, contract 10,
    price 5000, tick value 0.5 per tick size 0.25 -> 2 * 10 * 5000 * 2 = 200,000.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    spec = SymbolSpec("US500", CalcMode.CFD_INDEX, 10.0, 2, 0.25, 0.5, "USD", "USD", "USD")
    state = _account(
        [Position(1, "US500", Side.SELL, 2.0, 5000.0)], {"US500": spec}, {"US500": Quote("US500", 5000, 5001)}
    )
    assert state.figures().margin == 200_000.0


def test_cfd_leverage_by_formula() -> None:
    """CFD Leverage: Lots * ContractSize * Price / Leverage. (no printed numbers):
    1 lot XAUUSD, contract 100, open 2000, leverage 1:200 -> 1000 USD.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    spec = SymbolSpec("XAUUSD", CalcMode.CFD_LEVERAGE, 100.0, 2, 0.01, 1.0, "XAU", "USD", "USD")
    state = _account(
        [Position(1, "XAUUSD", Side.BUY, 1.0, 2000.0)],
        {"XAUUSD": spec},
        {"XAUUSD": Quote("XAUUSD", 2001, 2002)},
        leverage=200,
    )
    assert state.figures().margin == 1000.0


def test_conversion_and_margin_rate() -> None:
    """1000 EUR for 1 lot EURUSD converted at the Ask 1.2790 -> 1279 USD; long margin rate 1.15 ->
    1279 * 1.15 = 1470.85 USD. ("Converting into Deposit Currency", "Margin rate").

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex
    """
    spec = SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD", buy_rates=MarginRates(1.15))
    quotes = {"EURUSD": Quote("EURUSD", 1.2789, 1.2790)}
    state = _account(
        [Position(1, "EURUSD", Side.BUY, 1.0, 1.2790)], {"EURUSD": spec}, quotes, mode=MarginMode.NETTING
    )
    assert state.figures().margin == 1470.85


def test_hedged_basic_example() -> None:
    """Hedged, basic calculation. ("Opposite Positions/Orders", Example):
    Sells 3 x 1 lot at 1.11943, Buys 2 x 1 lot at 1.11953; hedged margin 100000, buy rate 2, sell
    rate 4, leverage 1:500. Hedged: 2 lots * 100000 * 1.11947 * 3 / 500 = 1343.36; non-hedged:
    1 lot * 100000 * 1.11943 * 4 / 500 = 895.54; total 2238.90.

    1.11947 and 1.11943 are the weighted conversion rates; with a quote of 1.11943/1.11953 the
    current rates (Bid for sells, Ask for buys) are exactly those.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    spec = SymbolSpec(
        "EURUSD",
        base_currency="EUR",
        profit_currency="USD",
        buy_rates=MarginRates(2.0),
        sell_rates=MarginRates(4.0),
    )
    positions = [
        Position(1, "EURUSD", Side.SELL, 1.0, 1.11943),
        Position(2, "EURUSD", Side.BUY, 1.0, 1.11953),
        Position(3, "EURUSD", Side.SELL, 1.0, 1.11943),
        Position(4, "EURUSD", Side.BUY, 1.0, 1.11953),
        Position(5, "EURUSD", Side.SELL, 1.0, 1.11943),
    ]
    state = _account(positions, {"EURUSD": spec}, {"EURUSD": Quote("EURUSD", 1.11943, 1.11953)}, leverage=500)
    assert state.figures().margin == 2238.90


def test_hedged_larger_leg_example() -> None:
    """Hedged, "using the larger leg". (second Example): Buys 1 lot at 1.16214 and
    2 lots at 1.16207, Sells 1 lot at 1.16184 and 1 lot at 1.16189, Forex, leverage 1:100, USD.
    Long side: 3 * 100000 / 100 = 3000 EUR * 1.16209333 = 3486.28; short side: 2000 EUR *
    1.161865 = 2323.73. The example adds pending orders (not held by the risk core); for the
    positions the larger leg is the long one: 3486.28.

    MT5 converts with each position's margin rate registered at opening (here its open price),
    which `Position.margin_rate` carries.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    opens = [
        (1, Side.BUY, 1.0, 1.16214),
        (2, Side.BUY, 2.0, 1.16207),
        (3, Side.SELL, 1.0, 1.16184),
        (4, Side.SELL, 1.0, 1.16189),
    ]
    positions = [Position(t, "EURUSD", side, v, p, margin_rate=p) for t, side, v, p in opens]
    state = _account(
        positions, {"EURUSD": EURUSD}, {"EURUSD": Quote("EURUSD", 1.17, 1.1701)}, larger_leg=True
    )
    assert state.figures().margin == 3486.28
    sell = LegTotals(2.0, 1.161865, 1.161865)
    assert round(leg_margin(EURUSD, sell, False, 100), 2) == 2323.73


def test_hedged_fixed_margin_example() -> None:
    """Fixed margin with hedging. ("Calculation specifics for hedging orders when
    using fixed margin"): initial 1000, maintenance 500, hedged 500, USD account. Buy 1.00 reserves
    500 (maintenance); after Sell 2.00 opens, 1000: 500 for the hedged lot and 500 (maintenance)
    for the non-hedged lot.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    spec = SymbolSpec(
        "BR-12.18",
        CalcMode.FUTURES,
        digits=2,
        tick_size=0.01,
        tick_value=1.0,
        base_currency="USD",
        margin_initial=1000.0,
        margin_maintenance=500.0,
        margin_hedged=500.0,
    )
    symbols = {"BR-12.18": spec}
    quotes = {"BR-12.18": Quote("BR-12.18", 80.0, 80.01)}
    one = _account([Position(1, "BR-12.18", Side.BUY, 1.0, 80.0)], symbols, quotes)
    assert one.figures().margin == 500.0
    both = _account(
        [Position(1, "BR-12.18", Side.BUY, 1.0, 80.0), Position(2, "BR-12.18", Side.SELL, 2.0, 80.0)],
        symbols,
        quotes,
    )
    assert both.figures().margin == 1000.0
    # The order itself (before it becomes a position) needs the initial margin for its open part.
    assert base_margin(spec, 1.0, 80.0, 100, maintenance=False) == 1000.0


def test_hedged_margin_as_contract_size() -> None:
    """Buy 1 lot and Sell 1 lot EURUSD, contract 100,000, "Hedged" 100,000: the two positions are
    charged as 1 lot; "Hedged" 0: nothing is charged. ("Calculation for covered
    volume"). Expected by formula: 1 lot * 100000 / 100 = 1000 EUR, at the weighted conversion
    rate (1.1 Bid for the sell, 1.1002 Ask for the buy) -> 1100.10 USD.

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    quotes = {"EURUSD": Quote("EURUSD", 1.1, 1.1002)}
    positions = [Position(1, "EURUSD", Side.BUY, 1.0, 1.1), Position(2, "EURUSD", Side.SELL, 1.0, 1.1)]
    assert _account(positions, {"EURUSD": EURUSD}, quotes).figures().margin == 1100.10
    free = SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD", margin_hedged=0.0)
    assert _account(positions, {"EURUSD": free}, quotes).figures().margin == 0.0


def test_fixed_margin_forex_keeps_leverage() -> None:
    """Fixed margin: Lots * InitialMargin, divided by the leverage for Forex and CFD Leverage only.
    ("Fixed Margin"). By formula: 2 lots * 1000 / 100 = 20 (Forex), 2 * 1000 = 2000 (CFD).

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_formula
    """
    forex = SymbolSpec("EURUSD", base_currency="EUR", margin_initial=1000.0)
    cfd = SymbolSpec("DE40", CalcMode.CFD, 1.0, base_currency="EUR", margin_initial=1000.0)
    assert base_margin(forex, 2.0, 1.1, 100) == 20.0
    assert base_margin(cfd, 2.0, 18000.0, 100) == 2000.0


def test_netting_position_margin() -> None:
    """Netting: Sell 0.02 lot USDJPY reserves 6.67 USD; once a Buy 0.03 executes the position is
    Buy 0.01 and the margin halves to 3.33 USD. ("Checking Margin", example).
    The help does not print the leverage; 1:300 is the one that gives 6.67 (0.02 * 100000 / 300).

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex
    """
    spec = SymbolSpec("USDJPY", base_currency="USD", profit_currency="JPY", digits=3, tick_size=0.001)
    quotes = {"USDJPY": Quote("USDJPY", 150.0, 150.02)}
    before = _account(
        [Position(1, "USDJPY", Side.SELL, 0.02, 150.0)],
        {"USDJPY": spec},
        quotes,
        leverage=300,
        mode=MarginMode.NETTING,
    )
    assert before.figures().margin == 6.67
    after = _account(
        [Position(1, "USDJPY", Side.BUY, 0.01, 150.02)],
        {"USDJPY": spec},
        quotes,
        leverage=300,
        mode=MarginMode.NETTING,
    )
    assert after.figures().margin == 3.33


def test_symbol_margin_parts_are_rounded_before_summing() -> None:
    """The hedged example sums rounded parts: 1343.36 + 895.54 = 2238.90, not round(2238.908).

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex_hedge
    """
    spec = SymbolSpec(
        "EURUSD",
        base_currency="EUR",
        profit_currency="USD",
        buy_rates=MarginRates(2.0),
        sell_rates=MarginRates(4.0),
    )
    buy = LegTotals(2.0, 1.11953, 1.11953)
    sell = LegTotals(3.0, 1.11943, 1.11943)
    assert symbol_margin_minor(spec, buy, sell, 500) == 223890
