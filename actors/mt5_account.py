"""The account actor: one MT5 trading account's risk state, recomputed incrementally.

A logical actor, not a process: thousands of them live in one account host
(`actors/account_host.py`), each with its own state, its own ordered steps, its own checkpoint
and its own failure. Its host applies its steps one at a time in batch order and never lets one
account's exception reach another.

Recovery is exact: the supervisor keeps each account's latest checkpoint (its pickled state) and
the batches sent since, so an account rebuilt from them has figures identical to an undisturbed
run's, path-dependent ones (peak equity, drawdown) included.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from veles.risk.account import AccountFigures, AccountState
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, Deal, Position, PositionSwap, Quote
from veles.risk.instruments import SymbolSpec

log = logging.getLogger(__name__)

RECENT_DEALS = 50  # deals an account keeps for its page (the deal log in the database has them all)

# What a checkpoint holds of one account: its price board, its AccountState and its recent deals.
Parts = tuple[dict[str, Quote], AccountState, deque[Deal]]




@dataclass(frozen=True, slots=True)
class Step:
    """What the supervisor sends an account for one batch.

    `board` is the connection's latest price of every symbol, sent along with deals so a position
    in a newly traded symbol is valued at today's price, not the one at start-up.
    """

    quotes: tuple[Quote, ...] = ()
    deals: tuple[Deal, ...] = ()
    board: tuple[Quote, ...] = ()
    swaps: tuple[PositionSwap, ...] = ()  # positions whose swap a rollover changed (before the deals)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """What one call changed: new figures (None if nothing it depends on moved), the symbols the
    account now depends on (so the supervisor can keep its symbol index right), the events it
    refused with why, the deals it applied, and a checkpoint when one was asked for.
    A restore reports no deals: replayed deals were reported when first applied."""

    login: int
    figures: AccountFigures | None
    symbols_needed: frozenset[str]
    rejected: tuple[str, ...] = ()
    checkpoint: bytes | None = None
    deals: tuple[Deal, ...] = ()  # the deals applied by this call (large-deal alerts read them)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its field values: thousands cross from a host to the supervisor per batch,
        and a frozen slotted dataclass otherwise pickles through Python-level state methods."""
        return AccountUpdate, (self.login, self.figures, self.symbols_needed, self.rejected,
                               self.checkpoint, self.deals)


@dataclass(frozen=True, slots=True)
class AccountDetail:
    """One account as its page shows it: figures, open positions and each position's profit, and
    the deals it applied most recently, newest first (at most RECENT_DEALS, since the engine
    started feeding it: older history is the MT5 server's), and the price digits of every symbol
    the server lists, so prices show as the terminal shows them (XAUUSD to 2 places, EURUSD to 5),
    older deals' in a statement too."""

    figures: AccountFigures
    positions: tuple[Position, ...]
    profits: dict[int, float]
    deals: tuple[Deal, ...] = ()
    digits: dict[str, int] = field(default_factory=dict)
    status: str = "live"  # "recovering": figures as of its checkpoint, while it is being restored
    # (bid, ask) now of each symbol the account holds: the position table's current price
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)
    stop_out_equity: float | None = None  # the equity that stops it out at today's margin


class AccountActor:
    """One trading account's actor: plain Python, hosted by an account host (or in-process)."""

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
        self._specs = symbols
        self._login = snapshot.login
        self._recent: deque[Deal] = deque(maxlen=RECENT_DEALS)  # in every checkpoint, so restores keep it

    @classmethod
    def from_parts(cls, parts: Parts, symbols: Mapping[str, SymbolSpec]) -> AccountActor:
        """The account a checkpoint's parts describe (see `parts`)."""
        actor = cls.__new__(cls)
        actor._board, actor.state, actor._recent = parts
        actor._specs = symbols
        actor._login = actor.state.login
        return actor

    @property
    def login(self) -> int:
        """The MT5 login this actor holds."""
        return self._login

    def parts(self) -> Parts:
        """What a checkpoint keeps: pickled together with other accounts' parts by the host (one
        pickle per group shares the symbol specs and quotes the accounts have in common)."""
        return self._board, self.state, self._recent

    def apply(self, step: Step, checkpoint: bool = False) -> AccountUpdate:
        """Apply a batch's quotes, then its swaps, then its deals (gateways fill a batch's orders at
        its prices; a rollover's swaps are as of before the batch's deals).

        A rejected event is reported, not raised: one bad event must not stall the account. Any
        other exception is a fault of this account: it propagates, and the host marks only this
        account failed. With no events at all it reports the current figures (how a new account
        joins the book).
        """
        update = self._apply(step)
        if not checkpoint:
            return update
        return AccountUpdate(
            update.login, update.figures, update.symbols_needed, update.rejected, self.checkpoint(),
            deals=update.deals,
        )

    def _apply(self, step: Step) -> AccountUpdate:
        figures: AccountFigures | None = (
            None if step.quotes or step.deals or step.swaps else self.state.figures()
        )
        rejected: list[str] = []
        applied: list[Deal] = []
        self._board.update((q.symbol, q) for q in step.board)
        if step.quotes:
            try:
                figures = self.state.apply_quotes(step.quotes)
            except RejectedEvent as exc:
                rejected.append(f"quotes: {exc}")
        for swap in step.swaps:
            try:
                figures = self.state.apply_swap(swap)
            except RejectedEvent as exc:
                rejected.append(f"swap of position {swap.position_id}: {exc}")
        for deal in step.deals:
            try:
                figures = self.state.apply_deal(deal)
                applied.append(deal)
            except RejectedEvent as exc:
                rejected.append(f"deal {deal.ticket}: {exc}")
        self._recent.extend(applied)
        return AccountUpdate(
            self._login, figures, self.state.symbols_needed, tuple(rejected), deals=tuple(applied)
        )

    def checkpoint(self) -> bytes:
        """The whole account state (with its price board and recent deals), as bytes to keep elsewhere."""
        return pickle.dumps(self.parts(), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint: bytes, steps: Sequence[Step]) -> AccountUpdate:
        """Become the account the checkpoint describes, then replay the steps sent after it."""
        self._board, self.state, self._recent = pickle.loads(checkpoint)  # noqa: S301 (our own bytes)
        rejected: list[str] = []
        for step in steps:
            rejected.extend(self._apply(step).rejected)
        return AccountUpdate(
            self._login, self.state.figures(), self.state.symbols_needed, tuple(rejected), self.checkpoint()
        )

    def resync(self, checkpoint: bytes) -> AccountUpdate:
        """Take the gateway's current view of the account (a checkpoint built from its snapshot)
        but keep this account's own analytics (peak equity, realised P/L, money flows), which no
        MT5 snapshot carries. A supervisor re-attaching after its own restart calls this."""
        kept = self.state.analytics()
        deals = tuple(self._recent)
        self.restore(checkpoint, ())
        self.state.restore_analytics(kept)
        self._recent.extend(deals)
        return AccountUpdate(
            self._login, self.state.figures(), self.state.symbols_needed, checkpoint=self.checkpoint()
        )

    def figures(self) -> AccountFigures:
        """Current figures, computed from the state as it stands."""
        return self.state.figures()

    def detail(self) -> AccountDetail:
        """Figures and open positions, with each position's floating profit in the deposit currency,
        and the recent deals, newest first."""
        positions, deals = self.state.positions(), tuple(reversed(self._recent))
        digits = {name: spec.digits for name, spec in self._specs.items()}
        profits = self.state.position_profits()
        quotes = {p.symbol: (q.bid, q.ask) for p in positions
                  if (q := self.state.quote(p.symbol)) is not None}
        return AccountDetail(self.state.figures(), positions, profits, deals, digits, quotes=quotes,
                             stop_out_equity=self.state.stop_out_equity())

    def pid(self) -> int:
        """The process hosting this account (operators and failure tests kill it)."""
        return os.getpid()


def pickle_parts(accounts: Mapping[int, AccountActor]) -> bytes:
    """One checkpoint for a group of accounts: their parts in one pickle, by login."""
    return pickle.dumps({login: actor.parts() for login, actor in accounts.items()},
                        protocol=pickle.HIGHEST_PROTOCOL)


def unpickle_parts(blob: bytes) -> dict[int, Any]:
    """The parts `pickle_parts` kept, by login (our own bytes: the supervisor's checkpoints)."""
    parts: dict[int, Any] = pickle.loads(blob)  # noqa: S301
    return parts
