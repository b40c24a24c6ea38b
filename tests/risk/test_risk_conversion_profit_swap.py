"""Currency conversion, profit per calculation mode and swaps.

Formulas from the MQL5 reference, ENUM_SYMBOL_CALC_MODE and ENUM_SYMBOL_SWAP_MODE:
https://www.mql5.com/en/docs/constants/environment_state/marketinfoconstants
No worked numbers are printed there for profit and swaps, so expected values are computed by hand
from those formulas (shown in each test).
"""

from __future__ import annotations

import pytest

from veles.risk.account import AccountState
from veles.risk.conversion import Leg, conventional_pair, resolve
from veles.risk.errors import MissingQuoteError
from veles.risk.events import AccountSnapshot, Position, Quote, Side
from veles.risk.instruments import CalcMode, SwapMode, SymbolSpec
from veles.risk.profit import raw_profit
from veles.risk.swap import day_multiplier, rollover_swap

QUOTES = {
    "EURUSD": Quote("EURUSD", 1.1000, 1.1002),
    "USDJPY": Quote("USDJPY", 150.00, 150.02),
    "GBPUSD": Quote("GBPUSD", 1.2500, 1.2502),
    "USDCAD": Quote("USDCAD", 1.3600, 1.3603),
}


def test_resolution_prefers_known_pairs_then_convention() -> None:
    """Direct pair if known, else inverse, else a USD cross; unknown pairs named by convention."""
    assert resolve("USD", "USD", QUOTES).legs == ()
    assert resolve("EUR", "USD", QUOTES).legs == (Leg("EURUSD", False),)
    assert resolve("USD", "EUR", QUOTES).legs == (Leg("EURUSD", True),)
    assert resolve("JPY", "EUR", QUOTES).legs == (Leg("USDJPY", True), Leg("EURUSD", True))
    assert resolve("EUR", "GBP", {"EURGBP": 1}).legs == (Leg("EURGBP", False),)
    assert resolve("EUR", "GBP", {"GBPEUR": 1}).legs == (Leg("GBPEUR", True),)
    assert resolve("EUR", "GBP", {}).legs == (Leg("EURUSD", False), Leg("GBPUSD", True))
    assert conventional_pair("JPY", "USD") == "USDJPY"
    assert conventional_pair("USD", "XAU") == "XAUUSD"
    assert conventional_pair("SEK", "USD") == "USDSEK"


def test_margin_rate_uses_ask_for_buys_and_bid_for_sells() -> None:
    """MT5 help: "The Ask price is used for buy deals, and the Bid price is used for sell deals".

    Source:
    https://support.metaquotes.net/en/docs/mt5/platform/administration/admin_symbols/admin_symbols_settings/symbol_settings_trade/margin_calculation/margin_forex
    """
    eur = resolve("EUR", "USD", QUOTES)
    assert eur.margin_rate(QUOTES, buy=True) == 1.1002
    assert eur.margin_rate(QUOTES, buy=False) == 1.1000
    jpy = resolve("USD", "JPY", QUOTES)
    assert jpy.margin_rate(QUOTES, buy=True) == 150.02
    cross = resolve("GBP", "JPY", QUOTES)
    assert cross.margin_rate(QUOTES, buy=True) == pytest.approx(1.2502 * 150.02)


def test_profit_conversion_is_client_unfavourable() -> None:
    """A profit converts at the Bid (1/Ask for an inverse pair), a loss at the Ask (1/Bid)."""
    to_usd = resolve("JPY", "USD", QUOTES)
    assert to_usd.convert_profit(15002.0, QUOTES) == pytest.approx(100.0)
    assert to_usd.convert_profit(-15000.0, QUOTES) == pytest.approx(-100.0)
    eur_to_usd = resolve("EUR", "USD", QUOTES)
    assert eur_to_usd.convert_profit(100.0, QUOTES) == pytest.approx(110.0)
    assert eur_to_usd.convert_profit(-100.0, QUOTES) == pytest.approx(-110.02)


def test_missing_conversion_quote_names_the_pair() -> None:
    with pytest.raises(MissingQuoteError, match="no quote for USDCHF, needed to convert CHF to USD") as info:
        resolve("CHF", "USD", QUOTES).mid_rate(QUOTES)
    assert info.value.pair == "USDCHF"


def test_profit_formulas() -> None:
    """(close - open) * ContractSize * Lots; Futures: (close - open) * TickValue / TickSize * Lots."""
    forex = SymbolSpec("EURUSD", base_currency="EUR")
    assert raw_profit(forex, True, 1.0, 1.2000, 1.2050) == pytest.approx(500.0)
    assert raw_profit(forex, False, 0.5, 1.2000, 1.2050) == pytest.approx(-250.0)
    future = SymbolSpec("BRENT", CalcMode.FUTURES, 1000.0, 2, 0.01, 10.0, "USD", "USD")
    assert raw_profit(future, True, 2.0, 80.00, 80.50) == pytest.approx(0.5 * 10.0 / 0.01 * 2.0)
    index = SymbolSpec("US500", CalcMode.CFD_INDEX, 10.0, 2, 0.25, 0.5)
    assert raw_profit(index, False, 1.0, 5000.0, 4990.0) == pytest.approx(100.0)


def test_account_profit_in_deposit_currency() -> None:
    """USD account, Sell 1 lot USDJPY at 151.00, Ask 150.02: (151.00 - 150.02) * 100000 = 98000 JPY,
    a profit, so converted at 1/Ask: 98000 / 150.02 = 653.2462 -> 653.25 USD.

    GBP account, Buy 1 lot AUDCAD at 0.9000, Bid 0.9010: 100 CAD profit, no CAD/GBP pair known:
    cross CAD -> USD (1/Ask of USDCAD) -> GBP (1/Ask of GBPUSD) = 100 / 1.3603 / 1.2502 = 58.80 GBP.
    """
    symbols = {
        "USDJPY": SymbolSpec("USDJPY", base_currency="USD", profit_currency="JPY", digits=3, tick_size=0.001),
        "AUDCAD": SymbolSpec("AUDCAD", base_currency="AUD", profit_currency="CAD"),
    }
    quotes = dict(QUOTES, AUDCAD=Quote("AUDCAD", 0.9010, 0.9012), AUDUSD=Quote("AUDUSD", 0.66, 0.6602))
    usd = AccountState(
        AccountSnapshot(login=1, positions=(Position(1, "USDJPY", Side.SELL, 1.0, 151.0),)), symbols, quotes
    )
    assert usd.figures().profit == 653.25
    gbp = AccountState(
        AccountSnapshot(login=2, currency="GBP", positions=(Position(1, "AUDCAD", Side.BUY, 1.0, 0.9),)),
        symbols,
        quotes,
    )
    assert gbp.figures().profit == round(100 / 1.3603 / 1.2502, 2) == 58.80
    assert {"AUDCAD", "USDCAD", "GBPUSD", "AUDUSD"} <= gbp.symbols_needed


def _swap_spec(mode: SwapMode, long: float, short: float, **extra: object) -> SymbolSpec:
    return SymbolSpec(
        "EURUSD",
        base_currency="EUR",
        profit_currency="USD",
        swap_mode=mode,
        swap_long=long,
        swap_short=short,
        **extra,
    )


def _swap(spec: SymbolSpec, side: Side, weekday: int, volume: float = 1.0, open_price: float = 1.1) -> float:
    return rollover_swap(
        spec, side, volume, open_price, weekday=weekday, deposit_currency="USD", quotes=QUOTES, known=QUOTES
    )


def test_swap_in_points_with_triple_wednesday() -> None:
    """Points: -5 points * 0.00001 * 100000 * 1 lot = -5 USD per day; Wednesday (3) charges 3 days,
    the weekend none (MT5's default per-day multipliers)."""
    spec = _swap_spec(SwapMode.POINTS, -5.0, 1.5)
    assert _swap(spec, Side.BUY, 1) == -5.0
    assert _swap(spec, Side.BUY, 3) == -15.0
    assert _swap(spec, Side.BUY, 6) == 0.0
    assert _swap(spec, Side.SELL, 2) == 1.5


def test_swap_money_and_interest_modes() -> None:
    """Money: Lots * swap in the stated currency; interest: Lots * ContractSize * price * % / 360."""
    assert _swap(_swap_spec(SwapMode.MONEY_DEPOSIT, -2.5, 0.0), Side.BUY, 1, volume=2.0) == -5.0
    # 1 lot * -3 EUR, a charge, converted at the EURUSD Ask: -3.3006 -> -3.30
    assert _swap(_swap_spec(SwapMode.MONEY_MARGIN, -3.0, 0.0), Side.BUY, 1) == -3.30
    assert _swap(_swap_spec(SwapMode.MONEY_BASE, 3.0, 0.0), Side.BUY, 1) == 3.30
    assert _swap(_swap_spec(SwapMode.MONEY_PROFIT, 0.0, -1.25), Side.SELL, 1) == -1.25
    # 100000 * 1.1 * 3% / 360 = 9.1666 -> 9.17
    assert _swap(_swap_spec(SwapMode.INTEREST_OPEN, 3.0, 0.0), Side.BUY, 1, open_price=1.1) == 9.17
    # current price of a buy is the Bid 1.1000: same figure; a sell would read the Ask
    assert _swap(_swap_spec(SwapMode.INTEREST_CURRENT, 3.0, 0.0), Side.BUY, 1, open_price=1.0) == 9.17
    assert _swap(_swap_spec(SwapMode.DISABLED, 3.0, 3.0), Side.BUY, 1) == 0.0


def test_swap_triple_day_field_and_custom_multipliers() -> None:
    """The legacy triple-swap weekday moves the triple charge when multipliers are MT5's default."""
    friday = _swap_spec(SwapMode.MONEY_DEPOSIT, -1.0, 0.0, swap_triple_day=5)
    assert [day_multiplier(friday, day) for day in range(7)] == [0.0, 1.0, 1.0, 1.0, 1.0, 3.0, 0.0]
    custom = _swap_spec(SwapMode.MONEY_DEPOSIT, -1.0, 0.0, swap_day_multipliers=(1.0,) * 7)
    assert _swap(custom, Side.BUY, 3) == -1.0
    with pytest.raises(ValueError, match="weekday"):
        day_multiplier(custom, 7)
