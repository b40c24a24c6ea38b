"""MT5AccountActor: hosts one trading account's risk state and recomputes it incrementally."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ray

from veles.risk.account import AccountFigures, AccountState
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, Deal, Quote
from veles.risk.instruments import SymbolSpec


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """What one call changed: new figures (None if nothing it depends on moved), the symbols the
    account now depends on (so the supervisor can keep its symbol index right), and the events it
    refused with why."""

    login: int
    figures: AccountFigures | None
    symbols_needed: frozenset[str]
    rejected: tuple[str, ...] = ()


class AccountHost:
    """The actor's logic without Ray, so it can be tested and hosted in-process too."""

    def __init__(
        self,
        snapshot: AccountSnapshot,
        symbols: Mapping[str, SymbolSpec],
        quotes: Mapping[str, Quote],
    ) -> None:
        # The price board AccountState reads when a deal opens a symbol the account did not hold;
        # kept here by reference so `apply` can refresh it before such deals.
        self._board: dict[str, Quote] = dict(quotes)
        self.state = AccountState(snapshot, symbols, self._board)

    def apply(
        self, quotes: tuple[Quote, ...], deals: tuple[Deal, ...], board: tuple[Quote, ...] = ()
    ) -> AccountUpdate:
        """Apply a batch's quotes, then its deals (gateways fill a batch's orders at its prices).

        `board` is the connection's latest price of every symbol, sent along with deals so a
        position in a newly traded symbol is valued at today's price, not the one at start-up.
        A rejected event is reported, not raised: one bad event must not stall the account.
        With no events at all it reports the current figures (how a new account joins the book).
        """
        figures: AccountFigures | None = None if quotes or deals else self.state.figures()
        rejected: list[str] = []
        self._board.update((q.symbol, q) for q in board)
        if quotes:
            try:
                figures = self.state.apply_quotes(quotes)
            except RejectedEvent as exc:
                rejected.append(f"quotes: {exc}")
        for deal in deals:
            try:
                figures = self.state.apply_deal(deal)
            except RejectedEvent as exc:
                rejected.append(f"deal {deal.ticket}: {exc}")
        return AccountUpdate(
            login=self.state.login,
            figures=figures,
            symbols_needed=self.state.symbols_needed,
            rejected=tuple(rejected),
        )

    def figures(self) -> AccountFigures:
        """Current figures, computed from the state as it stands."""
        return self.state.figures()


@ray.remote(num_cpus=0, max_task_retries=0)
class MT5AccountActor(AccountHost):
    """One Ray actor per MT5 trading account.

    A sync actor on purpose: the work is CPU-bound and short, and sync actors measured faster
    than async ones for that. `max_task_retries=0` because a deal must never be applied twice.
    """
