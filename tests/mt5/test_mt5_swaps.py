"""Rollover swaps (issue 15): the simulated server charges them to open positions as MT5 does,
the feed carries each position's new swap, and the engine's figures follow it to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.mt5_account import AccountActor, Step
from veles.mt5.ledger import AccountBook
from veles.mt5.recording import record
from veles.mt5.replay import ReplayGateway
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.trade_server import TradeServer
from veles.risk.account import AccountFigures, AccountState
from veles.risk.errors import RejectedEvent
from veles.risk.events import (
    AccountSnapshot,
    Batch,
    Deal,
    DealKind,
    MarginMode,
    PositionSwap,
    Quote,
    Side,
    merge_batches,
    merge_runs,
)
from veles.risk.money import to_minor

# Tuesday 2026-12-08 23:55 UTC: the first midnight ends a Tuesday (one day of swap), the next one
# a Wednesday (MT5's default triple swap for FX).
TUESDAY_LATE = int(datetime(2026, 12, 8, 23, 55, tzinfo=UTC).timestamp() * 1000)
WEDNESDAY = int(datetime(2026, 12, 9, tzinfo=UTC).timestamp() * 1000)
THURSDAY = int(datetime(2026, 12, 10, tzinfo=UTC).timestamp() * 1000)
OWN = 990_001  # an account no simulated trader touches


def own_account(login: int = OWN, margin_mode: MarginMode = MarginMode.HEDGING) -> AccountSnapshot:
    return AccountSnapshot(
        login=login, currency="USD", leverage=100, balance=100_000.0, margin_mode=margin_mode
    )


def assert_same_money(engine: AccountFigures, server: TradeServer, login: int) -> None:
    """The engine's figures against the server's own record: balance from its book, equity as the
    book's balance and credit plus each position's profit and accumulated swap."""
    book = server.book(login)
    truth = server.figures(login)
    profits = server._accounts[login].state.position_profits()  # the server's own view
    equity = to_minor(book.balance) + to_minor(book.credit) + sum(
        to_minor(profits[p.ticket]) + to_minor(p.swap) for p in book.positions()
    )
    assert to_minor(engine.balance) == to_minor(book.balance)
    assert to_minor(engine.equity) == equity == to_minor(truth.equity)


def test_a_position_held_across_rollover_and_the_triple_day_matches_the_server_to_the_cent() -> None:
    broker = SimulatedBroker(accounts=4, seed=5, interval=60.0, start_msc=TUESDAY_LATE, warmup=0.0)
    server = broker.server
    server.add_account(own_account())
    board = {q.symbol: q for q in broker.poll().quotes}
    symbols = {spec.name: spec for spec in broker.symbols()}
    actors = {a.login: AccountActor(a, symbols, board) for a in broker.accounts()}
    opened = server.market_order(OWN, "EURUSD", Side.BUY, 1.0)
    hedge = server.market_order(OWN, "USDJPY", Side.SELL, 2.0)
    assert opened is not None
    assert hedge is not None
    swaps_seen: list[PositionSwap] = []
    swap_at: dict[int, float] = {}
    while broker.market.now_msc < THURSDAY + 120_000:
        batch = broker.poll()
        board.update((q.symbol, q) for q in batch.quotes)
        swaps_seen.extend(batch.swaps)
        for login, actor in actors.items():
            deals = tuple(d for d in batch.deals if d.login == login)
            swaps = tuple(w for w in batch.swaps if w.login == login)
            update = actor.apply(Step(batch.quotes, deals, tuple(board.values()) if deals else (), swaps))
            assert not update.rejected, update.rejected
        for login, actor in actors.items():
            assert_same_money(actor.figures(), server, login)
        mine = {p.ticket: p.swap for p in actors[OWN].state.positions()}
        if broker.market.now_msc in (WEDNESDAY + 60_000, THURSDAY + 60_000):
            swap_at[broker.market.now_msc] = mine[opened.position_id]
    # EURUSD long: -7.2 points x 0.00001 x 100,000 per lot = -7.20 USD a day; Wednesday's is triple.
    assert swap_at == {WEDNESDAY + 60_000: -7.20, THURSDAY + 60_000: -7.20 - 21.60}
    assert {w.time_msc for w in swaps_seen} == {WEDNESDAY, THURSDAY}
    assert {w.login for w in swaps_seen} > {OWN}  # the simulated traders' positions are charged too

    # Closing books the accumulated swap with the deal; the equity does not move at the same prices.
    before = actors[OWN].figures()
    closing = server.close_position(OWN, opened.position_id)
    assert closing is not None
    assert closing.swap == pytest.approx(-28.80)
    figures = actors[OWN].apply(Step(deals=(closing,), board=tuple(board.values()))).figures
    assert figures is not None
    assert to_minor(figures.balance) == to_minor(before.balance) + to_minor(closing.profit) - 2880
    assert_same_money(figures, server, OWN)


def test_a_rollover_swap_for_a_position_the_engine_does_not_hold_is_refused_and_changes_nothing() -> None:
    broker = SimulatedBroker(accounts=0, warmup=0.0, start_msc=TUESDAY_LATE)
    broker.server.add_account(own_account())
    symbols = {spec.name: spec for spec in broker.symbols()}
    state = AccountState(broker.account(OWN), symbols, {q.symbol: q for q in broker.poll().quotes})
    before = state.figures()
    for bad in (PositionSwap(OWN, 12345, -1.0), PositionSwap(OWN + 1, 12345, -1.0)):
        with pytest.raises(RejectedEvent):
            state.apply_swap(bad)
    assert state.figures() == before


def test_merged_batches_never_move_a_rollover_before_earlier_deals() -> None:
    deal = Deal(1, OWN, DealKind.BUY, time_msc=1, symbol="EURUSD", volume=0.1, price=1.1001)
    quote = Quote("EURUSD", 1.1, 1.1001, 1)
    plain = [Batch("c", 1, 0.0, (quote,), (deal,)), Batch("c", 2, 0.0)]
    rollover = Batch("c", 3, 0.0, swaps=(PositionSwap(OWN, 1, -7.2, 5),))
    runs = merge_runs([*plain, rollover, Batch("c", 4, 0.0)])
    assert [r.seq for r in runs] == [2, 4]
    assert runs[0].deals == (deal,)
    assert runs[1].swaps == rollover.swaps
    with pytest.raises(ValueError, match="merge_runs"):
        merge_batches([*plain, rollover])


SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD", "US500", "GBPCHF")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    netting=st.booleans(),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("open"), st.sampled_from(SYMBOLS), st.sampled_from(list(Side)),
                      st.integers(1, 300)),
            st.tuples(st.just("close"), st.integers(0, 20), st.integers(0, 100)),
            st.tuples(st.just("rollover"), st.integers(0, 6)),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_rollovers_partial_closes_and_reversals_keep_the_engine_on_the_server_to_the_cent(
    netting: bool, steps: list[tuple]
) -> None:
    broker = SimulatedBroker(accounts=0, warmup=0.0, start_msc=TUESDAY_LATE)
    server = broker.server
    mode = MarginMode.NETTING if netting else MarginMode.HEDGING
    server.add_account(own_account(margin_mode=mode))
    symbols = {spec.name: spec for spec in broker.symbols()}
    market = {q.symbol: q for q in broker.poll().quotes}
    engine = AccountState(broker.account(OWN), symbols, market)
    for step in steps:
        if step[0] == "open":
            server.market_order(OWN, step[1], step[2], step[3] / 100)
        elif step[0] == "close":
            positions = server.positions(OWN)
            if positions:
                position = positions[step[1] % len(positions)]
                server.close_position(OWN, position.ticket, position.volume * step[2] / 100)
        else:
            server.rollover(step[1])
        for swap in server.take_swaps():
            engine.apply_swap(swap)
        for deal in server.take_deals():
            engine.apply_deal(deal)
        assert_same_money(engine.figures(), server, OWN)
        assert {p.ticket: to_minor(p.swap) for p in engine.positions()} == {
            p.ticket: to_minor(p.swap) for p in server.positions(OWN)
        }
    book = AccountBook(broker.account(OWN))
    assert to_minor(book.balance) == to_minor(engine.figures().balance)


def test_a_recorded_rollover_replays_with_its_swaps(tmp_path: Path) -> None:
    broker = SimulatedBroker(accounts=6, seed=2, interval=1.0, start_msc=WEDNESDAY - 5_000, warmup=300.0)
    path = tmp_path / "rollover.jsonl.gz"
    recorded = record(broker, path, 10)
    assert any(batch.swaps for batch in recorded)
    replay = ReplayGateway(path)
    replayed = [replay.poll() for _ in range(10)]
    assert [b.swaps for b in replayed] == [b.swaps for b in recorded]
    for login in (a.login for a in broker.accounts()):
        assert replay.account(login).positions == broker.account(login).positions  # swaps included
    replay.close()
