"""Order execution on the simulated trade server: entries, money from the risk core, stop-out."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veles.mt5.catalog import LISTINGS, SYMBOL_SPECS
from veles.mt5.market import Market
from veles.mt5.trade_server import TradeServer
from veles.risk.account import AccountState
from veles.risk.events import AccountSnapshot, DealEntry, DealKind, MarginMode, Quote, Side

START = 1_710_000_000_000


def server_with(snapshot: AccountSnapshot) -> TradeServer:
    server = TradeServer(Market(LISTINGS, random.Random(1), START), SYMBOL_SPECS, first_ticket=1000)
    server.add_account(snapshot)
    return server


def server_quotes(server: TradeServer) -> dict[str, Quote]:
    return {spec.name: server.quote(spec.name) for spec in SYMBOL_SPECS}


def quote(symbol: str, bid: float, spread: float) -> Quote:
    return Quote(symbol, round(bid, 5), round(bid + spread, 5), START)


def test_hedging_orders_open_separate_positions_and_close_with_booked_profit() -> None:
    server = server_with(AccountSnapshot(login=1, balance=10_000.0, leverage=100))
    first = server.market_order(1, "EURUSD", Side.BUY, 1.0)
    second = server.market_order(1, "EURUSD", Side.SELL, 0.5)
    assert first is not None
    assert second is not None
    assert (first.entry, second.entry) == (DealEntry.IN, DealEntry.IN)
    assert first.position_id == first.ticket
    assert second.ticket == first.ticket + 1
    assert len(server.positions(1)) == 2
    server.on_quotes((quote("EURUSD", 1.09500, 0.00008),))
    closed = server.close_position(1, first.ticket, volume=0.4)
    assert closed is not None
    assert (closed.kind, closed.entry, closed.volume, closed.price) == (
        DealKind.SELL,
        DealEntry.OUT,
        0.4,
        1.095,
    )
    assert closed.profit == pytest.approx((1.095 - first.price) * 0.4 * 100_000, abs=0.01)
    assert server.book(1).balance == pytest.approx(10_000.0 + closed.profit, abs=1e-9)
    assert server.book(1).position(first.ticket).volume == pytest.approx(0.6)  # type: ignore[union-attr]


def test_netting_orders_add_reduce_and_reverse_one_position() -> None:
    server = server_with(
        AccountSnapshot(login=2, balance=10_000.0, leverage=100, margin_mode=MarginMode.NETTING)
    )
    opened = server.market_order(2, "USDJPY", Side.BUY, 1.0)
    added = server.market_order(2, "USDJPY", Side.BUY, 0.5)
    reduced = server.market_order(2, "USDJPY", Side.SELL, 0.3)
    reversed_ = server.market_order(2, "USDJPY", Side.SELL, 2.0)
    deals = [opened, added, reduced, reversed_]
    assert all(d is not None and d.position_id == opened.ticket for d in deals)  # type: ignore[union-attr]
    assert [d.entry for d in deals if d] == [DealEntry.IN, DealEntry.IN, DealEntry.OUT, DealEntry.INOUT]
    (position,) = server.positions(2)
    assert (position.side, position.volume, position.ticket) == (Side.SELL, pytest.approx(0.8), opened.ticket)  # type: ignore[union-attr]
    assert reversed_ is not None
    assert reversed_.profit != 0.0  # the 1.2 lots it closed realised the spread, converted from JPY


def test_orders_the_free_margin_cannot_carry_are_refused() -> None:
    server = server_with(AccountSnapshot(login=3, balance=100.0, leverage=100))
    assert server.market_order(3, "EURUSD", Side.BUY, 10.0) is None
    assert server.refused == 1
    assert server.take_deals() == ()
    assert server.market_order(3, "EURUSD", Side.BUY, 0.05) is not None


def test_volumes_below_the_minimum_are_not_traded() -> None:
    server = server_with(AccountSnapshot(login=4, balance=10_000.0))
    assert server.market_order(4, "AAPL", Side.BUY, 0.4) is None
    deal = server.market_order(4, "AAPL", Side.BUY, 3.7)
    assert deal is not None
    assert deal.volume == 3.0


def test_commission_by_group_on_fx_only() -> None:
    server = server_with(AccountSnapshot(login=5, balance=10_000.0, group="real\\pro"))
    fx = server.market_order(5, "EURUSD", Side.BUY, 2.0)
    index = server.market_order(5, "US500", Side.BUY, 1.0)
    assert fx is not None
    assert index is not None
    assert (fx.commission, index.commission) == (-7.0, 0.0)
    assert server.book(5).balance == 10_000.0 - 7.0


def test_stop_out_closes_the_largest_loss_first_until_the_level_recovers() -> None:
    server = server_with(AccountSnapshot(login=6, balance=1_000.0, leverage=100, stop_out=50.0))
    eur = server.market_order(6, "EURUSD", Side.BUY, 0.5)
    gbp = server.market_order(6, "GBPUSD", Side.BUY, 0.2)
    jpy = server.market_order(6, "USDJPY", Side.SELL, 0.1)
    assert eur is not None
    assert gbp is not None
    assert jpy is not None
    server.take_deals()
    assert server.figures(6).state == "ok"

    server.on_quotes((quote("EURUSD", eur.price - 0.0100, 0.00008),), gapped=True)  # about -500 USD
    assert server.take_deals() == ()
    assert server.figures(6).state == "margin_call"

    server.on_quotes((quote("EURUSD", eur.price - 0.0125, 0.00008),), gapped=True)  # about -625 USD
    (stop,) = server.take_deals()
    assert (stop.position_id, stop.entry, stop.volume) == (eur.ticket, DealEntry.OUT, 0.5)
    assert stop.comment.startswith("[so ")
    assert stop.comment.endswith("%]")
    assert stop.profit == pytest.approx(-0.0125 * 0.5 * 100_000, abs=1.0)
    figures = server.figures(6)
    assert figures.state != "stop_out"
    assert {p.ticket for p in server.positions(6)} == {gbp.ticket, jpy.ticket}


def test_stop_out_goes_on_until_flat_when_nothing_else_helps() -> None:
    server = server_with(AccountSnapshot(login=7, balance=500.0, leverage=100, stop_out=50.0))
    tickets = [server.market_order(7, "GBPUSD", Side.BUY, 0.15) for _ in range(2)]
    server.market_order(7, "EURUSD", Side.SELL, 0.05)
    server.take_deals()
    server.on_quotes((quote("GBPUSD", 1.2400, 0.0001), quote("EURUSD", 1.1100, 0.0001)), gapped=True)
    *stops, protection = server.take_deals()
    assert len(stops) == 3
    assert all(d.comment.startswith("[so ") for d in stops)
    assert {d.position_id for d in stops[:2]} == {t.ticket for t in tickets if t}  # largest losses first
    assert server.positions(7) == []
    assert (protection.kind, protection.comment) == (DealKind.BALANCE, "negative balance protection")
    assert protection.amount > 0
    assert server.book(7).balance == 0.0


orders = st.lists(
    st.tuples(
        st.sampled_from(["EURUSD", "USDJPY", "XAUUSD", "GER40"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 300).map(lambda n: n / 100),
        st.booleans(),  # close a position instead of sending an order
        st.floats(-0.004, 0.004),  # price move before the order, relative
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(orders=orders, netting=st.booleans())
def test_books_and_an_independent_account_state_agree_on_any_order_flow(
    orders: list[tuple[str, Side, float, bool, float]], netting: bool
) -> None:
    mode = MarginMode.NETTING if netting else MarginMode.HEDGING
    snapshot = AccountSnapshot(
        login=9, balance=1_000_000.0, leverage=100, margin_mode=mode, group="real\\pro"
    )
    server = server_with(snapshot)
    market = dict(server_quotes(server))
    engine = AccountState(snapshot, {s.name: s for s in SYMBOL_SPECS}, market)
    for symbol, side, lots, close, move in orders:
        old = market[symbol]
        moved = Quote(symbol, old.bid * (1 + move), old.ask * (1 + move), START)
        market[symbol] = moved
        server.on_quotes((moved,))
        engine.apply_quotes((moved,))
        positions = server.positions(9)
        if close and positions:
            server.close_position(9, positions[0].ticket, volume=lots)
        else:
            server.market_order(9, symbol, side, lots)
        for deal in server.take_deals():
            engine.apply_deal(deal)
        book = server.book(9).snapshot()
        assert sorted(engine.positions(), key=lambda p: p.ticket) == sorted(
            book.positions, key=lambda p: p.ticket
        )
        assert engine.figures().balance == book.balance
