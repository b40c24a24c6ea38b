"""The simulated broker speaks the Gateway protocol, deterministically and consistently."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veles.mt5.catalog import SYMBOL_SPECS
from veles.mt5.gateway import Gateway, GatewayError
from veles.mt5.ledger import AccountBook
from veles.mt5.simulator import Fault, SimulatedBroker
from veles.risk.account import AccountState
from veles.risk.events import Batch, DealEntry, DealKind, MarginMode

START = 1_710_000_000_000


def without_clock(batch: Batch) -> Batch:
    return dataclasses.replace(batch, sent_at=0.0)


def run(broker: SimulatedBroker, polls: int) -> list[Batch]:
    return [broker.poll() for _ in range(polls)]


def test_is_a_gateway() -> None:
    assert isinstance(SimulatedBroker(accounts=3, start_msc=START), Gateway)


def test_same_seed_gives_the_same_batches() -> None:
    first = [without_clock(b) for b in run(SimulatedBroker(accounts=20, seed=5, start_msc=START), 600)]
    again = [without_clock(b) for b in run(SimulatedBroker(accounts=20, seed=5, start_msc=START), 600)]
    other = [without_clock(b) for b in run(SimulatedBroker(accounts=20, seed=6, start_msc=START), 600)]
    assert first == again
    assert first != other
    assert sum(len(b.deals) for b in first) > 100


DIGEST = """
import dataclasses, hashlib
from veles.mt5.simulator import SimulatedBroker
broker = SimulatedBroker(accounts=12, seed=11, start_msc=1_710_000_000_000, volatility=3.0)
digest = hashlib.sha256()
for _ in range(400):
    digest.update(repr(dataclasses.replace(broker.poll(), sent_at=0.0)).encode())
print(digest.hexdigest(), repr(broker.accounts()).count("Position("))
"""


def test_same_seed_gives_the_same_batches_in_another_process() -> None:
    """Ray restarts actors in new processes, where str hashes (and so set order) differ."""
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", DIGEST],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(outputs) == 1
    digest, positions = outputs.pop().split()
    assert len(digest) == 64
    assert int(positions) > 0


def test_first_batch_carries_every_symbol_then_only_ticks() -> None:
    broker = SimulatedBroker(accounts=5, start_msc=START)
    first = broker.poll()
    assert {q.symbol for q in first.quotes} == {s.name for s in SYMBOL_SPECS}
    later = run(broker, 40)
    assert all(len(b.quotes) < len(SYMBOL_SPECS) for b in later)
    assert [b.seq for b in (first, *later)] == list(range(1, 42))
    assert all(b.connection_id == "demo" for b in later)


def test_simulated_time_advances_by_the_interval() -> None:
    broker = SimulatedBroker(accounts=5, start_msc=START, interval=0.1)
    for i in range(1, 50):
        batch = broker.poll()
        assert all(START + 100 * (i - 1) < q.time_msc <= START + 100 * i for q in batch.quotes[:3] if i > 1)
        assert all(d.time_msc == START + 100 * i for d in batch.deals)


def test_population_has_the_promised_variety() -> None:
    accounts = SimulatedBroker(accounts=100, start_msc=START).accounts()
    assert len(accounts) == 100
    assert len({a.login for a in accounts}) == 100
    assert {a.currency for a in accounts} == {"USD", "EUR"}
    assert {a.margin_mode for a in accounts} == {MarginMode.HEDGING, MarginMode.NETTING}
    assert {a.book for a in accounts} == {"A", "B"}
    assert {a.group for a in accounts} == {"real\\standard", "real\\pro", "real\\vip"}
    assert all(30 <= a.leverage <= 500 for a in accounts)
    assert any(a.positions for a in accounts), "the warm-up leaves open positions"
    assert any(a.credit > 0 for a in accounts)


def test_deals_are_numbered_in_order_well_formed_and_lively() -> None:
    broker = SimulatedBroker(accounts=30, start_msc=START)
    first = last = max(a.last_deal_ticket for a in broker.accounts())
    entries = set()
    batches = run(broker, 1600)
    for batch in batches:
        for deal in batch.deals:
            assert deal.ticket == last + 1
            last = deal.ticket
            entries.add((deal.kind, deal.entry))
            if deal.kind in (DealKind.BUY, DealKind.SELL):
                assert deal.volume > 0
                assert deal.price > 0
                assert deal.position_id > 0
                assert deal.symbol
            else:
                assert deal.symbol == ""
                assert deal.amount != 0
    assert {
        (DealKind.BUY, DealEntry.IN),
        (DealKind.SELL, DealEntry.OUT),
        (DealKind.BALANCE, DealEntry.IN),
    } <= entries
    assert any(entry is DealEntry.INOUT for _, entry in entries)
    # "a few deals per second" at 50 accounts: about one per second at 30
    assert 0.5 < (last - first) / (1600 * broker.interval) < 3.0
    assert 3 < sum(len(b.quotes) for b in batches[1:]) / (len(batches) - 1) < 20


def test_snapshots_equal_start_plus_emitted_deals() -> None:
    broker = SimulatedBroker(accounts=20, seed=3, start_msc=START)
    symbols = {spec.name: spec for spec in broker.symbols()}
    start = broker.accounts()
    books = {a.login: AccountBook(a) for a in start}
    batches = run(broker, 1000)
    # the engine's live latest-quote dict, read when a position opens; AccountState replaces an
    # empty mapping with its own, so it is filled with the first batch before the states exist
    market = {q.symbol: q for q in batches[0].quotes}
    states = {a.login: AccountState(a, symbols, market) for a in start}
    for batch in batches:
        market.update((q.symbol, q) for q in batch.quotes)
        for state in states.values():
            state.apply_quotes(batch.quotes)
        for deal in batch.deals:
            assert books[deal.login].apply(deal)
            states[deal.login].apply_deal(deal)
    for login, book in books.items():
        now = broker.account(login)
        # the plain book keeps the margin rates its deals carried (Deal.margin_rate)
        assert book.snapshot() == now
        figures = states[login].figures()
        assert (figures.balance, figures.credit) == (now.balance, now.credit)
        assert sorted(states[login].positions(), key=lambda p: p.ticket) == sorted(
            now.positions, key=lambda p: p.ticket
        )


def test_positions_carry_their_open_time_and_stops() -> None:
    """Each open position keeps the time of the deal that opened it and the stops that deal
    carried (some both, some one, some none; a stop loss on the losing side of the fill, a take
    profit on the winning side), in the server's book and in an engine fed the same deals."""
    broker = SimulatedBroker(accounts=20, seed=5, start_msc=START)
    symbols = {spec.name: spec for spec in broker.symbols()}
    start = broker.accounts()
    batches = run(broker, 600)
    market = {q.symbol: q for q in batches[0].quotes}
    states = {a.login: AccountState(a, symbols, market) for a in start}
    opened: dict[int, int] = {}  # position -> the time of the first deal that opened it
    for batch in batches:
        market.update((q.symbol, q) for q in batch.quotes)
        for state in states.values():
            state.apply_quotes(batch.quotes)
        for deal in batch.deals:
            states[deal.login].apply_deal(deal)
            if deal.entry is not DealEntry.OUT and deal.kind in (DealKind.BUY, DealKind.SELL):
                opened.setdefault(deal.position_id, deal.time_msc)
            else:
                assert (deal.sl, deal.tp) == (0.0, 0.0)  # a closing deal or money sets no stops
    positions = [p for login in states for p in broker.account(login).positions]
    assert len(positions) >= 10
    with_stops = [p for p in positions if p.sl or p.tp]
    assert 0 < len(with_stops) < len(positions)
    for p in positions:
        assert p.time_msc > 0
        # the opening deal's (a reversal's, under netting); those open at the start opened in warm-up
        assert p.time_msc >= opened.get(p.ticket, 0)
        gain = 1 if p.side.value == "buy" else -1
        if p.sl and p.tp:
            assert (p.tp - p.sl) * gain > 0, p
    for login, state in states.items():
        assert sorted(state.positions(), key=lambda p: p.ticket) == sorted(
            broker.account(login).positions, key=lambda p: p.ticket)


def test_unknown_login_and_polling_a_closed_broker_are_gateway_errors() -> None:
    broker = SimulatedBroker(accounts=2, start_msc=START)
    with pytest.raises(GatewayError):
        broker.account(1)
    broker.close()
    with pytest.raises(GatewayError):
        broker.poll()


def test_injected_faults_spoil_only_the_next_batch() -> None:
    broker = SimulatedBroker(accounts=20, start_msc=START)
    run(broker, 20)
    for fault in (Fault.NAN_QUOTE, Fault.UNKNOWN_SYMBOL, Fault.CROSSED_QUOTE):
        broker.inject(fault)
    spoiled = broker.poll()
    assert any(math.isnan(q.bid) for q in spoiled.quotes)
    assert any(q.symbol not in {s.name for s in SYMBOL_SPECS} for q in spoiled.quotes)
    assert any(q.bid > q.ask for q in spoiled.quotes)
    clean = broker.poll()
    assert all(0 < q.bid < q.ask for q in clean.quotes)

    broker.inject(Fault.DISCONNECT)
    seq = clean.seq
    with pytest.raises(GatewayError):
        broker.poll()
    assert broker.poll().seq == seq + 1

    while not (batch := broker.poll()).deals:
        pass
    broker.inject(Fault.DUPLICATE_DEAL)
    assert batch.deals[-1] in broker.poll().deals


def test_stop_outs_happen_exactly_when_an_engine_sees_the_level_reached() -> None:
    """Replaying batches onto AccountState as the engine does: an account whose level the batch's
    prices bring to stop-out is stopped out in that batch, largest loss first, and every "[so ...]"
    deal comes while the account is at its stop-out level. (A trade can itself bring the level
    down - the spread of a huge new position - and is then stopped out at the next prices, as on
    MT5, which checks levels on ticks.)"""
    broker = SimulatedBroker(accounts=15, seed=8, start_msc=START, volatility=4.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    start = broker.accounts()
    batches = run(broker, 800)
    market = {q.symbol: q for q in batches[0].quotes}
    states = {a.login: AccountState(a, symbols, market) for a in start}
    stop_outs = 0
    for batch in batches:
        market.update((q.symbol, q) for q in batch.quotes)
        due = set()
        for login, state in states.items():
            figures = state.apply_quotes(batch.quotes)  # None when no quote matters to it
            if figures is not None and figures.state == "stop_out":
                due.add(login)
        for deal in batch.deals:
            state = states[deal.login]
            if deal.login in due:
                assert deal.comment.startswith("[so "), "the first deal of a stopped-out account"
                due.discard(deal.login)
            if deal.comment.startswith("[so "):
                figures = state.figures()
                assert figures.state == "stop_out"
                assert deal.comment == f"[so {figures.margin_level:.2f}%]"
                assert deal.position_id == state.stop_out_order()[0]
                stop_outs += 1
            state.apply_deal(deal)
        assert not due, f"accounts left at their stop-out level: {due}"
    assert stop_outs > 0
