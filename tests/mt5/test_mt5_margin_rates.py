"""The engine's margin equals the trade server's to the cent, for cross-currency symbols, over time.

MT5 fixes a position's margin conversion rate (margin currency -> deposit currency) when the
position opens, and the server stamps it on the deal (`Deal.margin_rate`, MT5's RateMargin). An
engine that fixed the rate itself, from the quotes it held when it applied the deal, drifted a few
cents from the server whenever it applied a deal at other prices than the fill saw: batches merged
behind a slow consumer (`merge_runs`, the account hosts' catch-up), or a conversion pair it had
no quote for yet. Here the engine is fed exactly that way and compared with the simulator's own
trade server after every merged batch, in minor units, with no tolerance.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veles.mt5.ledger import AccountBook
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountState
from veles.risk.errors import RejectedEvent
from veles.risk.events import Batch, Deal, DealKind, Quote, merge_runs
from veles.risk.money import to_minor

START = 1_710_000_000_000


def _cross(broker: SimulatedBroker, login: int) -> bool:
    """Whether the account holds a position whose margin currency is not its deposit currency."""
    currency = broker.account(login).currency
    specs = {s.name: s for s in broker.symbols()}
    return any(specs[p.symbol].effective_margin_currency != currency for p in broker.server.positions(login))


def _run(seed: int, polls: int, merge: int) -> tuple[int, int]:
    """Feed the simulator's batches to engine account states in runs of `merge` (as a consumer
    that fell behind gets them) and compare margins with the server after each run; how many
    cross-currency comparisons were made, and how many deals carried a rate."""
    broker = SimulatedBroker(accounts=20, seed=seed, start_msc=START, volatility=2.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    first = broker.poll()
    market: dict[str, Quote] = {q.symbol: q for q in first.quotes}
    states = {a.login: AccountState(a, symbols, market) for a in broker.accounts()}
    compared = stamped = 0
    pending: list[Batch] = []
    for _ in range(polls):
        pending.append(broker.poll())
        if len(pending) < merge:
            continue
        for batch in merge_runs(pending):
            market.update((q.symbol, q) for q in batch.quotes)
            for state in states.values():
                state.apply_quotes(batch.quotes)
            for update in batch.swaps:
                states[update.login].apply_swap(update)
            for deal in batch.deals:
                stamped += deal.margin_rate > 0.0
                states[deal.login].apply_deal(deal)
        pending.clear()
        for login, state in states.items():
            if not _cross(broker, login):
                continue
            compared += 1
            server = broker.server.figures(login)
            engine = state.figures()
            assert to_minor(engine.margin) == to_minor(server.margin), (login, engine.margin, server.margin)
            rates = {p.ticket: p.margin_rate for p in broker.server.positions(login)}
            assert {p.ticket: p.margin_rate for p in state.positions()} == rates
    return compared, stamped


def test_merged_batches_leave_the_engine_margin_equal_to_the_servers() -> None:
    """Regression: a consumer three batches behind fixed some rates at the newest prices."""
    compared, stamped = _run(seed=5, polls=600, merge=3)
    assert compared > 200  # cross-currency positions were held most of the run
    assert stamped > 20  # and opened through deals that carried the server's rate


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), merge=st.integers(1, 6))
def test_engine_margin_equals_the_servers_whatever_the_catch_up(seed: int, merge: int) -> None:
    compared, _stamped = _run(seed, polls=240, merge=merge)
    assert compared > 0


def test_a_deal_without_a_rate_is_fixed_from_the_engines_quotes() -> None:
    """A feed that does not carry the rate (a recording made before it, a connector that cannot
    read it) still works: the engine fixes the rate from the quotes it holds, as before."""
    broker = SimulatedBroker(accounts=20, seed=5, start_msc=START)
    symbols = {spec.name: spec for spec in broker.symbols()}
    first = broker.poll()
    market = {q.symbol: q for q in first.quotes}
    states = {a.login: AccountState(a, symbols, market) for a in broker.accounts()}
    opened = 0
    for _ in range(300):
        batch = broker.poll()
        market.update((q.symbol, q) for q in batch.quotes)
        for state in states.values():
            state.apply_quotes(batch.quotes)
        for update in batch.swaps:
            states[update.login].apply_swap(update)
        for deal in batch.deals:
            stripped = dataclasses.replace(deal, margin_rate=0.0)
            states[deal.login].apply_deal(stripped)
            opened += deal.kind in (DealKind.BUY, DealKind.SELL)
    assert opened > 0
    for login, state in states.items():  # one batch at a time: the same quotes the fill saw
        assert {p.ticket: p.margin_rate for p in state.positions()} == {
            p.ticket: p.margin_rate for p in broker.server.positions(login)}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.1])
def test_a_deal_with_a_bad_rate_is_refused_by_field_and_changes_nothing(bad: float) -> None:
    broker = SimulatedBroker(accounts=3, seed=1, start_msc=START)
    symbols = {spec.name: spec for spec in broker.symbols()}
    account = broker.accounts()[0]
    state = AccountState(account, symbols, {q.symbol: q for q in broker.poll().quotes})
    before = state.figures()
    quote = broker.server.quote("EURUSD")
    deal = Deal(ticket=account.last_deal_ticket + 10_000, login=account.login, kind=DealKind.BUY,
                time_msc=START, symbol="EURUSD", volume=0.1, price=quote.ask, margin_rate=bad)
    with pytest.raises(RejectedEvent) as refused:
        state.apply_deal(deal)
    assert refused.value.field == "margin_rate"
    assert state.figures() == before


def test_a_replayed_book_keeps_the_rates_its_deals_carried() -> None:
    """The plain ledger book (what the replay gateway re-snapshots from) now holds the server's
    rates too, so an engine re-synchronised from it starts with MT5's figures."""
    broker = SimulatedBroker(accounts=20, seed=3, start_msc=START)
    books = {a.login: AccountBook(a) for a in broker.accounts()}
    for _ in range(800):
        for deal in broker.poll().deals:
            books[deal.login].apply(deal)
    held = 0
    for login, book in books.items():
        assert book.snapshot() == broker.account(login)
        held += len(book.positions())
    assert held > 0
