"""AccountState: deals, quotes, rejections, account state levels, analytics across restarts."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace

import pytest

from veles.risk.account import AccountState, FreeMarginMode
from veles.risk.errors import RejectedEvent
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
from veles.risk.instruments import CalcMode, SymbolSpec

SYMBOLS = {
    "EURUSD": SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD"),
    "USDJPY": SymbolSpec("USDJPY", base_currency="USD", profit_currency="JPY", digits=3, tick_size=0.001),
    "XAUUSD": SymbolSpec(
        "XAUUSD", CalcMode.CFD_LEVERAGE, 100.0, 2, 0.01, 1.0, "XAU", "USD", "USD", asset_class="metal"
    ),
}
LOGIN = 7


def _market() -> dict[str, Quote]:
    return {
        "EURUSD": Quote("EURUSD", 1.1000, 1.1002, 1),
        "USDJPY": Quote("USDJPY", 150.00, 150.02, 1),
        "XAUUSD": Quote("XAUUSD", 2000.00, 2000.50, 1),
    }


def _state(
    positions: tuple[Position, ...] = (),
    *,
    mode: MarginMode = MarginMode.HEDGING,
    balance: float = 10_000.0,
    **settings: object,
) -> AccountState:
    snapshot = AccountSnapshot(
        login=LOGIN, balance=balance, margin_mode=mode, positions=positions, last_deal_ticket=100, **settings
    )  # type: ignore[arg-type]
    return AccountState(snapshot, SYMBOLS, _market())


def _trade(ticket: int, kind: DealKind, symbol: str, volume: float, price: float, **extra: object) -> Deal:
    return Deal(ticket, LOGIN, kind, ticket * 10, symbol=symbol, volume=volume, price=price, **extra)  # type: ignore[arg-type]


def _frozen(state: AccountState) -> bytes:
    """Every attribute of the state, byte for byte."""
    return pickle.dumps(state)


def test_open_partial_close_and_close_in_hedging() -> None:
    state = _state()
    assert state.symbols_needed == frozenset()
    figures = state.apply_deal(
        _trade(101, DealKind.BUY, "EURUSD", 1.0, 1.1002, position_id=1, commission=-7.0)
    )
    assert figures.balance == 9993.0
    assert figures.positions == 1
    assert state.symbols_needed == {"EURUSD"}
    assert figures.profit == -20.0  # (1.1000 - 1.1002) * 100000
    assert figures.margin == 1100.2  # 1000 EUR at the Ask fixed when the position opened

    profit = state.close_profit(1, 0.4, 1.1000)
    assert profit == -8.0
    figures = state.apply_deal(
        _trade(102, DealKind.SELL, "EURUSD", 0.4, 1.1000, entry=DealEntry.OUT, position_id=1, profit=profit)
    )
    assert figures.balance == 9985.0
    assert figures.realized_pnl == -15.0
    (position,) = state.positions()
    assert position.volume == pytest.approx(0.6)
    assert figures.profit == -12.0

    figures = state.apply_deal(
        _trade(103, DealKind.SELL, "EURUSD", 0.6, 1.1000, entry=DealEntry.OUT, position_id=1, profit=-12.0)
    )
    assert figures.positions == 0
    assert figures.margin == 0.0
    assert figures.balance == figures.equity == 9973.0
    assert state.symbols_needed == frozenset()


def test_swap_leaves_floating_profit_with_the_volume_closed() -> None:
    state = _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1000, swap=-10.0),))
    assert state.figures().profit == -10.0
    state.apply_deal(
        _trade(101, DealKind.SELL, "EURUSD", 0.5, 1.1, entry=DealEntry.OUT, position_id=1, swap=-5.0)
    )
    figures = state.figures()
    assert figures.profit == -5.0
    assert figures.balance == 9995.0


def test_netting_averaging_partial_close_and_reversal() -> None:
    state = _state(mode=MarginMode.NETTING)
    state.apply_deal(_trade(101, DealKind.BUY, "XAUUSD", 1.0, 2000.0, position_id=5))
    state.apply_deal(_trade(102, DealKind.BUY, "XAUUSD", 3.0, 2004.0, position_id=5))
    (position,) = state.positions()
    assert (position.ticket, position.volume, position.price_open) == (5, 4.0, 2003.0)
    assert state.figures().margin == 8012.0  # 4 * 100 * 2003 / 100

    state.apply_deal(_trade(103, DealKind.SELL, "XAUUSD", 1.0, 2000.0, entry=DealEntry.OUT, profit=-300.0))
    (position,) = state.positions()
    assert (position.volume, position.price_open) == (3.0, 2003.0)

    figures = state.apply_deal(
        _trade(104, DealKind.SELL, "XAUUSD", 5.0, 2000.0, entry=DealEntry.INOUT, position_id=9, profit=-900.0)
    )
    (position,) = state.positions()
    assert (position.ticket, position.side, position.volume, position.price_open) == (
        9,
        Side.SELL,
        2.0,
        2000.0,
    )
    assert figures.balance == 10_000.0 - 1200.0
    assert figures.profit == -100.0  # (2000.00 - 2000.50) * 100 * 2


def test_balance_and_credit_operations() -> None:
    state = _state()
    state.apply_deal(Deal(101, LOGIN, DealKind.BALANCE, 1, amount=500.0))
    state.apply_deal(Deal(102, LOGIN, DealKind.BALANCE, 2, amount=-200.0))
    figures = state.apply_deal(Deal(103, LOGIN, DealKind.CREDIT, 3, amount=1000.0))
    assert (figures.balance, figures.credit, figures.equity) == (10_300.0, 1000.0, 11_300.0)
    assert figures.drawdown == 0.0  # a withdrawal is a flow, not a loss
    assert state.analytics() == {
        "updated_msc": 3.0,
        "peak_equity": 11_300.0,
        "realized_pnl": 0.0,
        "deposits": 500.0,
        "withdrawals": 200.0,
        "credit_in": 1000.0,
        "credit_out": 0.0,
        "deals_applied": 3.0,
    }


@pytest.mark.parametrize(
    ("deal", "field"),
    [
        (_trade(100, DealKind.BUY, "EURUSD", 1.0, 1.1, position_id=50), "ticket"),
        (_trade(99, DealKind.BUY, "EURUSD", 1.0, 1.1, position_id=50), "ticket"),
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, math.nan, position_id=50), "price"),
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, -1.1, position_id=50), "price"),
        (_trade(101, DealKind.BUY, "EURUSD", 0.0, 1.1, position_id=50), "volume"),
        (_trade(101, DealKind.BUY, "EURUSD", math.inf, 1.1, position_id=50), "volume"),
        (_trade(101, DealKind.BUY, "GBPCHF", 1.0, 1.1, position_id=50), "symbol"),
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, 1.1, position_id=50, profit=math.nan), "profit"),
        (_trade(101, DealKind.SELL, "EURUSD", 1.0, 1.1, entry=DealEntry.OUT, position_id=77), "position_id"),
        (_trade(101, DealKind.BUY, "EURUSD", 0.5, 1.1, entry=DealEntry.OUT, position_id=1), "kind"),
        (_trade(101, DealKind.SELL, "EURUSD", 1.5, 1.1, entry=DealEntry.OUT, position_id=1), "volume"),
        (_trade(101, DealKind.SELL, "USDJPY", 0.5, 150.0, entry=DealEntry.OUT, position_id=1), "symbol"),
        (_trade(101, DealKind.SELL, "EURUSD", 2.0, 1.1, entry=DealEntry.INOUT, position_id=1), "entry"),
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, 1.1, position_id=1), "position_id"),
        (Deal(101, LOGIN, DealKind.CREDIT, 1, amount=-1.0), "amount"),
        (Deal(101, LOGIN + 1, DealKind.BALANCE, 1, amount=1.0), "login"),
    ],
)
def test_rejected_deals_leave_the_state_exactly_as_before(deal: Deal, field: str) -> None:
    state = _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1),))
    before = _frozen(state)
    with pytest.raises(RejectedEvent) as info:
        state.apply_deal(deal)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert _frozen(state) == before


@pytest.mark.parametrize(
    ("deal", "field"),
    [
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, 1.1, position_id=9), "entry"),
        (_trade(101, DealKind.SELL, "USDJPY", 1.0, 150.0, entry=DealEntry.OUT), "symbol"),
        (_trade(101, DealKind.SELL, "EURUSD", 3.0, 1.1, entry=DealEntry.INOUT), "kind"),
        (_trade(101, DealKind.BUY, "EURUSD", 1.0, 1.1, entry=DealEntry.INOUT), "volume"),
        (_trade(101, DealKind.BUY, "EURUSD", 2.0, 1.1, entry=DealEntry.OUT), "volume"),
        (_trade(101, DealKind.SELL, "EURUSD", 1.0, 1.1, entry=DealEntry.OUT), "kind"),
    ],
)
def test_rejected_netting_deals_leave_the_state_exactly_as_before(deal: Deal, field: str) -> None:
    state = _state((Position(1, "EURUSD", Side.SELL, 1.0, 1.1),), mode=MarginMode.NETTING)
    state.apply_deal(_trade(101, DealKind.SELL, "EURUSD", 0.5, 1.1))  # netting adds to the sell
    before = _frozen(state)
    deal = replace(deal, ticket=102)
    with pytest.raises(RejectedEvent) as info:
        state.apply_deal(deal)
    assert info.value.field == field
    assert _frozen(state) == before


def test_a_rejected_event_changes_nothing_that_later_events_see() -> None:
    state = _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1),))
    twin = _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1),))
    with pytest.raises(RejectedEvent):
        state.apply_deal(_trade(101, DealKind.SELL, "EURUSD", 3.0, 1.1, entry=DealEntry.OUT, position_id=1))
    with pytest.raises(RejectedEvent):
        state.apply_quotes([Quote("EURUSD", 1.2, 1.2001), Quote("EURUSD", math.nan, 1.2)])
    follow_up = [Quote("EURUSD", 1.105, 1.1052, 5)]
    deal = _trade(101, DealKind.SELL, "EURUSD", 1.0, 1.105, entry=DealEntry.OUT, position_id=1, profit=500.0)
    assert state.apply_quotes(follow_up) == twin.apply_quotes(follow_up)
    assert state.apply_deal(deal) == twin.apply_deal(deal)


def test_invalid_snapshot_fields_are_named() -> None:
    with pytest.raises(RejectedEvent, match=r"positions\[1\]\.volume: must be > 0"):
        _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1), Position(2, "EURUSD", Side.BUY, 0.0, 1.1)))
    with pytest.raises(RejectedEvent, match=r"positions\[0\]\.symbol: unknown symbol 'NOPE'"):
        _state((Position(1, "NOPE", Side.BUY, 1.0, 1.1),))
    with pytest.raises(RejectedEvent, match=r"positions\[1\]\.symbol: a netting account"):
        _state(
            (Position(1, "EURUSD", Side.BUY, 1.0, 1.1), Position(2, "EURUSD", Side.SELL, 1.0, 1.1)),
            mode=MarginMode.NETTING,
        )


def test_quotes_touch_only_dependent_holdings(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state((Position(1, "EURUSD", Side.BUY, 1.0, 1.1), Position(2, "XAUUSD", Side.SELL, 1.0, 2000.0)))
    refreshed: list[str] = []
    original = AccountState._refresh

    def spy(self: AccountState, holding: object, margin_too: bool = True) -> None:
        refreshed.append(holding.spec.name)  # type: ignore[attr-defined]
        original(self, holding, margin_too)  # type: ignore[arg-type]

    monkeypatch.setattr(AccountState, "_refresh", spy)
    assert state.apply_quotes([Quote("USDJPY", 151.0, 151.02), Quote("GBPUSD", 1.3, 1.3002)]) is None
    assert refreshed == []
    figures = state.apply_quotes([Quote("XAUUSD", 1990.0, 1990.5, 9)])
    assert refreshed == ["XAUUSD"]
    assert figures is not None
    assert figures.profit == 950.0  # (2000 - 1990.5) * 100
    assert figures.updated_msc == 9


def test_margin_call_and_stop_out_in_percent_and_money() -> None:
    # 1 lot EURUSD: margin 1100.20 at the Ask; each 0.0001 is 10 USD.
    position = (Position(1, "EURUSD", Side.BUY, 1.0, 1.1002, margin_rate=1.1002),)
    state = _state(position, balance=1200.0)
    assert state.figures().state == "ok"
    figures = state.apply_quotes([Quote("EURUSD", 1.0992, 1.0994)])  # equity 1100.00 -> 99.98 %
    assert figures is not None
    assert (figures.state, round(figures.margin_level or 0, 2)) == ("margin_call", 99.98)
    assert figures.risk_score >= 75.0
    figures = state.apply_quotes([Quote("EURUSD", 1.0937, 1.0939)])  # equity 550.00 -> 49.99 %
    assert figures is not None
    assert figures.state == "stop_out"
    assert figures.risk_score == 100.0

    money = _state(
        position, balance=1200.0, stopout_mode=StopoutMode.MONEY, margin_call=600.0, stop_out=300.0
    )
    assert money.figures().state == "ok"
    figures = money.apply_quotes([Quote("EURUSD", 1.0942, 1.0944)])  # equity 600.00
    assert figures is not None
    assert figures.state == "margin_call"
    figures = money.apply_quotes([Quote("EURUSD", 1.0912, 1.0914)])  # equity 300.00
    assert figures is not None
    assert figures.state == "stop_out"


def test_no_margin_is_never_a_stop_out() -> None:
    figures = _state(balance=-50.0).figures()
    assert (figures.margin_level, figures.state) == (None, "ok")


def test_free_margin_modes() -> None:
    positions = (
        Position(1, "EURUSD", Side.BUY, 1.0, 1.09, margin_rate=1.1),
        Position(2, "XAUUSD", Side.BUY, 1.0, 2010.0),
    )
    # EURUSD +1000.00, XAUUSD -1000.00 (total 0); margin 1100 + 2010
    expected = {
        FreeMarginMode.BOTH: 10_000.0 - 3110.0,
        FreeMarginMode.NONE: 10_000.0 - 3110.0,
        FreeMarginMode.PROFIT: 10_000.0 - 3110.0,
        FreeMarginMode.LOSS: 10_000.0 - 3110.0,
    }
    for mode, value in expected.items():
        snapshot = AccountSnapshot(login=LOGIN, balance=10_000.0, positions=positions)
        assert (
            AccountState(snapshot, SYMBOLS, _market(), free_margin_mode=mode).figures().free_margin == value
        )
    losing = (Position(1, "XAUUSD", Side.BUY, 1.0, 2010.0),)  # -1000, margin 2010
    snapshot = AccountSnapshot(login=LOGIN, balance=10_000.0, positions=losing)
    free = {
        mode: AccountState(snapshot, SYMBOLS, _market(), free_margin_mode=mode).figures().free_margin
        for mode in FreeMarginMode
    }
    assert free == {
        FreeMarginMode.BOTH: 6990.0,
        FreeMarginMode.NONE: 7990.0,
        FreeMarginMode.PROFIT: 7990.0,
        FreeMarginMode.LOSS: 6990.0,
    }


def test_stop_out_order_is_largest_loss_first() -> None:
    state = _state(
        (
            Position(1, "EURUSD", Side.BUY, 1.0, 1.1010),  # -100
            Position(2, "XAUUSD", Side.BUY, 1.0, 2010.0),  # -1000
            Position(3, "EURUSD", Side.SELL, 1.0, 1.0990, swap=-50.0),  # -120 - 50
            Position(4, "EURUSD", Side.BUY, 1.0, 1.0900),  # +1000
        )
    )
    assert state.stop_out_order() == [2, 3, 1, 4]


def test_missing_quotes_are_reported_and_do_not_move_the_peak() -> None:
    snapshot = AccountSnapshot(
        login=LOGIN, currency="EUR", balance=1000.0, positions=(Position(1, "USDJPY", Side.BUY, 1.0, 149.0),)
    )
    state = AccountState(snapshot, SYMBOLS, {"USDJPY": Quote("USDJPY", 150.0, 150.02)})
    figures = state.figures()
    assert figures.missing_quotes == ("EURUSD",)
    assert figures.peak_equity == 0.0
    assert figures.usd_rate == 0.0
    figures = state.apply_quotes([Quote("EURUSD", 1.25, 1.2502)])
    assert figures is not None
    assert figures.missing_quotes == ()
    # 100000 JPY profit -> USD at 1/150.02 -> EUR at 1/1.2502: 533.18 EUR; margin 100000 USD / 100 at
    # the Ask of... (USD -> EUR via EURUSD, inverse, Ask for a buy): 1000 / 1.2502 = 799.87 EUR
    assert figures.profit == round(100_000 / 150.02 / 1.2502, 2)
    assert figures.margin == round(1000 / 1.2502, 2)
    assert figures.peak_equity == figures.equity
    assert figures.usd_rate == pytest.approx(1.2501)


def test_restart_from_snapshot_and_analytics_gives_identical_figures() -> None:
    market = _market()
    snapshot = AccountSnapshot(login=LOGIN, balance=5000.0, last_deal_ticket=100)
    state = AccountState(snapshot, SYMBOLS, market)
    state.apply_deal(_trade(101, DealKind.BUY, "EURUSD", 2.0, 1.1002, position_id=1))
    state.apply_quotes([Quote("EURUSD", 1.1100, 1.1102, 2)])
    state.apply_deal(
        _trade(102, DealKind.SELL, "EURUSD", 1.0, 1.11, entry=DealEntry.OUT, position_id=1, profit=980.0)
    )
    state.apply_deal(Deal(103, LOGIN, DealKind.BALANCE, 5, amount=-300.0))
    figures = state.apply_quotes([Quote("EURUSD", 1.0950, 1.0952, 9)])
    assert figures is not None
    assert figures.drawdown > 0.0

    market["EURUSD"] = Quote("EURUSD", 1.0950, 1.0952, 9)
    fresh = replace(
        snapshot,
        balance=figures.balance,
        credit=figures.credit,
        positions=state.positions(),
        last_deal_ticket=state.last_deal_ticket,
    )
    restarted = AccountState(fresh, SYMBOLS, market, analytics=state.analytics())
    assert restarted.figures() == figures
    with pytest.raises(RejectedEvent, match="ticket"):
        restarted.apply_deal(Deal(103, LOGIN, DealKind.BALANCE, 5, amount=-300.0))
    with pytest.raises(RejectedEvent, match=r"analytics\.bogus: unknown key"):
        AccountState(fresh, SYMBOLS, market, analytics={"bogus": 1.0})


def test_new_symbol_starts_from_the_market_mapping() -> None:
    market = _market()
    state = AccountState(AccountSnapshot(login=LOGIN, balance=1000.0, last_deal_ticket=1), SYMBOLS, market)
    market["XAUUSD"] = Quote("XAUUSD", 2100.0, 2100.5, 3)
    figures = state.apply_deal(_trade(2, DealKind.SELL, "XAUUSD", 0.1, 2100.0, position_id=1))
    assert figures.missing_quotes == ()
    assert figures.profit == -5.0
