"""Stress test of a book: scenario parsing, shocked quotes, the stop-out cascade by hand, and
property tests that `run_stress` equals a brute-force reference exactly (integer minor units).

The reference shares no cascade code with `veles.risk.stress`: after every close it rebuilds a
fresh AccountState from a snapshot holding the remaining positions and the new balance (a full
revaluation per closed position), decides stop-out from equity and margin itself (percent or money
mode), ranks positions by their floating profit plus swap and commission, and books the closing
profit with the profit formula and conversion of profit.py / conversion.py.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from veles.risk.account import AccountState
from veles.risk.conversion import resolve
from veles.risk.events import AccountSnapshot, MarginMode, Position, Quote, Side, StopoutMode
from veles.risk.instruments import CalcMode, SymbolSpec
from veles.risk.money import from_minor, to_minor
from veles.risk.profit import raw_profit
from veles.risk.stress import (
    ScenarioError,
    Shock,
    ShockKind,
    parse_scenario,
    run_stress,
    shocked_quotes,
)

SYMBOLS = {
    spec.name: spec
    for spec in (
        SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD"),
        SymbolSpec("GBPUSD", base_currency="GBP", profit_currency="USD"),
        SymbolSpec("USDJPY", base_currency="USD", profit_currency="JPY", digits=3, tick_size=0.001),
        SymbolSpec("EURGBP", base_currency="EUR", profit_currency="GBP"),
        SymbolSpec(
            "XAUUSD",
            CalcMode.CFD_LEVERAGE,
            100.0,
            2,
            0.01,
            1.0,
            "XAU",
            "USD",
            "USD",
            margin_hedged=50.0,
            asset_class="metal",
        ),
        SymbolSpec(
            "DE40",
            CalcMode.CFD,
            1.0,
            1,
            0.1,
            0.1,
            "EUR",
            "EUR",
            "EUR",
            margin_hedged=0.5,
            asset_class="index",
        ),
        SymbolSpec(
            "US500",
            CalcMode.CFD_INDEX,
            1.0,
            2,
            0.25,
            0.5,
            "US500",
            "USD",
            "USD",
            margin_hedged=1.0,
            asset_class="index",
        ),
    )
}
MIDS = {
    "EURUSD": 1.1,
    "GBPUSD": 1.27,
    "USDJPY": 150.0,
    "EURGBP": 0.86,
    "XAUUSD": 2300.0,
    "DE40": 18000.0,
    "US500": 5200.0,
}


def _quotes() -> dict[str, Quote]:
    result = {}
    for name, mid in MIDS.items():
        half = SYMBOLS[name].tick_size * 2
        result[name] = Quote(name, round(mid - half, 6), round(mid + half, 6), 1)
    return result


# -- parsing -------------------------------------------------------------------------------------


def test_parse_every_kind_of_shock() -> None:
    shocks = parse_scenario(
        "XAUUSD -3%, class:index +1.5%; metal \u22122%, all -1%, USD +2% against all, EUR -1%", SYMBOLS
    )
    assert shocks == (
        Shock(ShockKind.SYMBOL, "XAUUSD", -3.0),
        Shock(ShockKind.CLASS, "index", 1.5),
        Shock(ShockKind.CLASS, "metal", -2.0),
        Shock(ShockKind.ALL, "all", -1.0),
        Shock(ShockKind.CURRENCY, "USD", 2.0),
        Shock(ShockKind.CURRENCY, "EUR", -1.0),
    )
    assert [str(s) for s in shocks[:1] + shocks[4:5]] == ["XAUUSD -3%", "USD +2% against all"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "empty scenario"),
        ("XAUUSD -3%,", "empty shock"),
        ("XAUUSD", "'XAUUSD': expected"),
        ("XAUUSD -3% now", "'XAUUSD -3% now': expected"),
        ("XAUUSD -3", "the move must look like -3% or +2.5%, got '-3'"),
        ("XAUUSD minus3%", "got 'minus3%'"),
        ("XAUUSD -100%", "would make prices zero or negative"),
        ("XAUUSD +2000%", "beyond +1000%"),
        ("XAUUSDX -3%", "'XAUUSDX' is not a symbol, asset class, currency or 'all'"),
        ("class:crypto -3%", "unknown asset class 'crypto'"),
        ("CHF +2% against all", "'CHF' is not a currency of this book's symbols"),
        ("EURUSD -1%, GBP +1% against some", "'GBP +1% against some': expected"),
    ],
)
def test_bad_scenarios_name_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(text, SYMBOLS)
    assert names in str(error.value)


# -- shocked quotes ------------------------------------------------------------------------------


def test_usd_up_moves_every_quote_priced_in_or_based_on_usd() -> None:
    quotes = _quotes()
    shocked = shocked_quotes(quotes, SYMBOLS, parse_scenario("USD +2% against all", SYMBOLS))
    assert shocked["EURUSD"].bid == pytest.approx(quotes["EURUSD"].bid / 1.02, rel=1e-14)
    assert shocked["GBPUSD"].ask == pytest.approx(quotes["GBPUSD"].ask / 1.02, rel=1e-14)
    assert shocked["USDJPY"].bid == pytest.approx(quotes["USDJPY"].bid * 1.02, rel=1e-14)
    assert shocked["XAUUSD"].ask == pytest.approx(quotes["XAUUSD"].ask / 1.02, rel=1e-14)
    assert shocked["US500"].bid == pytest.approx(
        quotes["US500"].bid / 1.02, rel=1e-14
    )  # an asset priced in USD
    assert shocked["EURGBP"] == quotes["EURGBP"]  # no USD in it
    assert shocked["DE40"] == quotes["DE40"]


def test_symbol_class_and_all_shocks_compose() -> None:
    quotes = _quotes()
    shocked = shocked_quotes(quotes, SYMBOLS, parse_scenario("all -2%, XAUUSD -3%, index +1%", SYMBOLS))
    assert shocked["XAUUSD"].bid == pytest.approx(quotes["XAUUSD"].bid * 0.98 * 0.97, rel=1e-14)
    assert shocked["DE40"].ask == pytest.approx(quotes["DE40"].ask * 0.98 * 1.01, rel=1e-14)
    assert shocked["EURUSD"].bid == pytest.approx(quotes["EURUSD"].bid * 0.98, rel=1e-14)


# -- the cascade by hand -------------------------------------------------------------------------


def _hand_account(balance: float, **settings_: object) -> AccountSnapshot:
    return AccountSnapshot(
        login=7,
        currency="USD",
        leverage=100,
        balance=balance,
        positions=(
            Position(1, "XAUUSD", Side.BUY, 0.5, 2300.0),  # margin 0.5 * 100 * 2300 / 100 = 1150
            Position(2, "EURUSD", Side.BUY, 1.0, 1.1, margin_rate=1.1),  # margin 1000 EUR * 1.1 = 1100
        ),
        **settings_,  # type: ignore[arg-type]
    )


_FLAT = {"XAUUSD": Quote("XAUUSD", 2300.0, 2300.0, 1), "EURUSD": Quote("EURUSD", 1.1, 1.1, 1)}


def test_cascade_closes_largest_loss_then_stops_above_stop_out() -> None:
    # XAUUSD -5%: 2185, loss (2185 - 2300) * 0.5 * 100 = -5750; equity 750 / margin 2250 = 33% <= 50%.
    # Closing XAUUSD leaves balance 750, margin 1100: 68% > 50%, so EURUSD stays open.
    result = run_stress([_hand_account(6500.0)], SYMBOLS, _FLAT, parse_scenario("XAUUSD -5%", SYMBOLS))
    (account,) = result.accounts
    assert account.stopped_out
    assert [c.ticket for c in account.closed] == [1]
    assert account.closed[0].booked == -575_000
    assert (account.equity_before, account.equity_after, account.balance_after) == (650_000, 75_000, 75_000)
    assert account.absorbed == 0
    assert result.b_book_for_broker() == {"USD": 575_000}
    assert result.b_book_against_broker() == {}
    assert result.exposure_after() == {"EURUSD": (1.0, 11_000_000)}


def test_cascade_goes_flat_and_the_broker_absorbs_the_negative_balance() -> None:
    # Balance 5000: after closing XAUUSD the balance is -750, still in stop-out; EURUSD closes at 0.
    result = run_stress([_hand_account(5000.0)], SYMBOLS, _FLAT, parse_scenario("XAUUSD -5%", SYMBOLS))
    (account,) = result.accounts
    assert [c.ticket for c in account.closed] == [1, 2]
    assert account.balance_after == -75_000
    assert account.absorbed == 75_000
    assert result.absorbed() == {"USD": 75_000}
    assert result.to_json()["absorbed_by_account_minor"] == {"7": 75_000}
    assert result.exposure_after() == {}


def test_cascade_in_money_mode_uses_equity_against_the_level() -> None:
    # Stop-out at equity <= 800 (money): after XAUUSD closes, equity 750 is still at or below it.
    snapshot = _hand_account(6500.0, stopout_mode=StopoutMode.MONEY, margin_call=1000.0, stop_out=800.0)
    result = run_stress([snapshot], SYMBOLS, _FLAT, parse_scenario("XAUUSD -5%", SYMBOLS))
    assert [c.ticket for c in result.accounts[0].closed] == [1, 2]
    assert result.accounts[0].balance_after == 75_000


def test_an_a_book_account_is_not_broker_pnl_and_an_empty_account_is_unmoved() -> None:
    a_book = replace(_hand_account(6500.0), login=8, book="A")
    empty = AccountSnapshot(login=9, balance=100.0, credit=50.0)
    result = run_stress([a_book, empty], SYMBOLS, _FLAT, parse_scenario("XAUUSD -5%", SYMBOLS))
    assert result.b_book_for_broker() == {}
    assert result.accounts[1].equity_before == result.accounts[1].equity_after == 15_000
    assert result.exposure_after("B") == {}


def test_an_account_lacking_a_quote_is_reported_not_cascaded() -> None:
    # DE40 is priced in EUR: a USD account needs EURUSD to value it, and this book has no EURUSD.
    snapshot = AccountSnapshot(
        login=11, balance=100.0, positions=(Position(1, "DE40", Side.BUY, 5.0, 18000.0),)
    )
    quotes = {"DE40": Quote("DE40", 18000.0, 18000.0, 1)}
    result = run_stress([snapshot], SYMBOLS, quotes, parse_scenario("DE40 -50%", SYMBOLS))
    (account,) = result.accounts
    assert account.missing_quotes == ("EURUSD",)
    assert account.closed == ()
    assert result.incomplete == [account]
    assert result.to_json()["incomplete"] == {"11": ["EURUSD"]}


# -- brute-force reference -----------------------------------------------------------------------


def _reference(
    snapshot: AccountSnapshot, quotes: dict[str, Quote], shocked: dict[str, Quote]
) -> dict[str, object]:
    """The cascade the slow way (see the module docstring)."""
    equity_before = to_minor(snapshot.balance) + to_minor(snapshot.credit)
    if snapshot.positions:
        equity_before = to_minor(AccountState(snapshot, SYMBOLS, quotes).figures().equity)
    balance = to_minor(snapshot.balance)
    positions = list(snapshot.positions)
    closed: list[int] = []
    while True:
        current = replace(snapshot, balance=from_minor(balance), positions=tuple(positions))
        state = AccountState(current, SYMBOLS, shocked)
        figures = state.figures()
        equity, margin = to_minor(figures.equity), to_minor(figures.margin)
        if margin <= 0:
            break
        if snapshot.stopout_mode is StopoutMode.PERCENT:
            stop = from_minor(equity) / from_minor(margin) * 100.0 <= snapshot.stop_out
        else:
            stop = from_minor(equity) <= snapshot.stop_out
        if not stop:
            break
        floating = state.position_profits()
        worst = min(
            positions,
            key=lambda p: (to_minor(floating[p.ticket]) + to_minor(p.swap + p.commission), p.ticket),
        )
        spec = SYMBOLS[worst.symbol]
        buy = worst.side is Side.BUY
        price = shocked[worst.symbol].bid if buy else shocked[worst.symbol].ask
        amount = raw_profit(spec, buy, worst.volume, worst.price_open, price)
        profit = from_minor(
            to_minor(
                resolve(spec.profit_currency, snapshot.currency, SYMBOLS).convert_profit(amount, shocked)
            )
        )
        balance += to_minor(profit + worst.commission + worst.swap)
        positions.remove(worst)
        closed.append(worst.ticket)
    final = AccountState(
        replace(snapshot, balance=from_minor(balance), positions=tuple(positions)), SYMBOLS, shocked
    )
    exposure = tuple(
        sorted(
            (e.symbol, e.net_lots, to_minor(e.usd_notional))
            for e in final.figures().exposure
            if e.net_lots != 0.0
        )
    )
    return {
        "closed": closed,
        "equity_after": to_minor(final.figures().equity),
        "equity_before": equity_before,
        "balance_after": balance,
        "absorbed": max(0, -balance),
        "exposure": exposure,
    }


def _random_book(seed: int, accounts: int) -> list[AccountSnapshot]:
    rng = random.Random(seed)
    names = sorted(SYMBOLS)
    quotes = _quotes()
    book = []
    ticket = 1
    for login in range(1, accounts + 1):
        hedging = rng.random() < 0.7
        positions = []
        held: set[str] = set()
        for _ in range(rng.randint(0, 5)):
            symbol = rng.choice(names)
            if not hedging and symbol in held:
                continue
            held.add(symbol)
            mid = (quotes[symbol].bid + quotes[symbol].ask) / 2
            positions.append(
                Position(
                    ticket,
                    symbol,
                    rng.choice((Side.BUY, Side.SELL)),
                    rng.choice((0.01, 0.1, 0.5, 1.0, 2.0)),
                    round(mid * rng.uniform(0.97, 1.03), SYMBOLS[symbol].digits),
                    swap=round(rng.uniform(-30, 5), 2),
                    commission=rng.choice((0.0, -3.5, -7.0)),
                    margin_rate=rng.choice((0.0, 0.0, 1.09, 1.12)) if symbol.startswith("EUR") else 0.0,
                )
            )
            ticket += 1
        money = rng.random() < 0.3
        book.append(
            AccountSnapshot(
                login=login,
                currency=rng.choice(("USD", "USD", "EUR", "GBP")),
                leverage=rng.choice((30, 100, 200, 500)),
                balance=round(rng.uniform(-50, 20_000), 2),
                credit=rng.choice((0.0, 0.0, round(rng.uniform(0, 2000), 2))),
                margin_mode=MarginMode.HEDGING if hedging else MarginMode.NETTING,
                hedged_margin_larger_leg=rng.random() < 0.2,
                stopout_mode=StopoutMode.MONEY if money else StopoutMode.PERCENT,
                margin_call=rng.choice((500.0, 1500.0)) if money else rng.choice((80.0, 100.0)),
                stop_out=rng.choice((100.0, 1000.0)) if money else rng.choice((20.0, 50.0)),
                book=rng.choice(("A", "B", "B")),
                positions=tuple(positions),
            )
        )
    return book


_SHOCK_TEXT = st.lists(
    st.tuples(
        st.sampled_from(
            ["XAUUSD", "EURUSD", "USDJPY", "DE40", "class:index", "metal", "all", "USD", "EUR", "GBP"]
        ),
        st.integers(min_value=-250, max_value=250),
    ),
    min_size=1,
    max_size=3,
).map(lambda parts: ", ".join(f"{target} {value / 10:+}%" for target, value in parts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), accounts=st.integers(1, 6), scenario=_SHOCK_TEXT)
def test_stress_equals_the_brute_force_reference(seed: int, accounts: int, scenario: str) -> None:
    book = _random_book(seed, accounts)
    quotes = _quotes()
    shocks = parse_scenario(scenario, SYMBOLS)
    shocked = shocked_quotes(quotes, SYMBOLS, shocks)
    result = run_stress(book, SYMBOLS, quotes, shocks)
    event(f"positions closed: {min(result.positions_closed, 3)}{'+' if result.positions_closed >= 3 else ''}")
    for snapshot, account in zip(book, result.accounts, strict=True):
        expected = _reference(snapshot, quotes, shocked)
        assert [c.ticket for c in account.closed] == expected["closed"]
        assert account.stopped_out == bool(expected["closed"])
        assert account.equity_before == expected["equity_before"]
        assert account.equity_after == expected["equity_after"]
        assert account.balance_after == expected["balance_after"]
        assert account.absorbed == expected["absorbed"]
        assert account.exposure_after == expected["exposure"]
    b_book = [a for a in result.accounts if a.book == "B"]
    for_broker = sum(-a.client_pnl for a in b_book if a.client_pnl < 0)
    assert sum(result.b_book_for_broker().values()) == for_broker


def test_the_reference_sees_stop_outs_on_random_books() -> None:
    """Guard for the property test: its books and shocks do stop accounts out, several levels deep."""
    quotes = _quotes()
    shocks = parse_scenario("all -8%, USD +3% against all", SYMBOLS)
    result = run_stress([a for seed in range(20) for a in _random_book(seed, 6)], SYMBOLS, quotes, shocks)
    assert len(result.stopped_out) >= 5
    assert any(len(a.closed) >= 2 for a in result.accounts)
