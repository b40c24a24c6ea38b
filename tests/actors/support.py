"""Helpers shared by the actor tests."""

from __future__ import annotations

from actors.mt5_account import AccountActor
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures


def account_figures(seed: int = 5) -> AccountFigures:
    """Real figures of one simulated account, for tests that then set its state and levels."""
    broker = SimulatedBroker(accounts=1, seed=seed, start_msc=1_790_000_000_000)
    symbols = {s.name: s for s in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    return AccountActor(broker.accounts()[0], symbols, board).figures()
