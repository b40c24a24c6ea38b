"""MT5AccountActor: hosts one trading account's risk state and recomputes it incrementally.

Recovery is exact: every few batches the supervisor asks for a checkpoint (the pickled state)
and keeps the batches sent since. A restarted actor refuses to compute until it is restored from
that checkpoint plus the batches after it, so its figures come back identical to an undisturbed
run's, path-dependent ones (peak equity, drawdown) included.

Two ways in. Price batches of a partition arrive through a Ray compiled graph (`run_step`, on
Ray's `_ray_system` thread); deals of a partition being rebuilt, restores and reads arrive as
plain calls (on the actor's own thread). A lock keeps the two from interleaving on the state.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ray
from ray.dag.compiled_dag_node import ExecutableTask

from veles.risk.account import AccountFigures, AccountState
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, Deal, Position, Quote
from veles.risk.instruments import SymbolSpec

log = logging.getLogger(__name__)

RECENT_DEALS = 50  # deals an account keeps for its page (the deal log in the database has them all)


@dataclass(frozen=True, slots=True)
class Step:
    """What the supervisor sends an account for one batch.

    `board` is the connection's latest price of every symbol, sent along with deals so a position
    in a newly traded symbol is valued at today's price, not the one at start-up.
    """

    quotes: tuple[Quote, ...] = ()
    deals: tuple[Deal, ...] = ()
    board: tuple[Quote, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """What one call changed: new figures (None if nothing it depends on moved), the symbols the
    account now depends on (so the supervisor can keep its symbol index right), the events it
    refused with why, the deals it applied, and a checkpoint when one was asked for.
    `needs_restore` says the actor was restarted and computed nothing. A restore reports no deals:
    replayed deals were reported when first applied."""

    login: int
    figures: AccountFigures | None
    symbols_needed: frozenset[str]
    rejected: tuple[str, ...] = ()
    checkpoint: bytes | None = None
    needs_restore: bool = False
    deals: tuple[Deal, ...] = ()  # the deals applied by this call (large-deal alerts read them)
    restarted: bool = False  # a restore found the host restarted (its process had died)


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


class AccountHost:
    """The actor's logic without Ray, so it can be tested and hosted in-process too."""

    def __init__(
        self,
        snapshot: AccountSnapshot,
        symbols: Mapping[str, SymbolSpec],
        quotes: Mapping[str, Quote],
        restarted: bool = False,
    ) -> None:
        # The price board AccountState reads when a deal opens a symbol the account did not hold;
        # kept here by reference so `apply` can refresh it before such deals.
        self._board: dict[str, Quote] = dict(quotes)
        self.state = AccountState(snapshot, symbols, self._board)
        self._specs = symbols
        self._login = snapshot.login
        self._needs_restore = restarted
        self._lock = threading.RLock()  # compiled-graph thread vs plain calls
        self._recent: deque[Deal] = deque(maxlen=RECENT_DEALS)  # in every checkpoint, so restores keep it

    @property
    def login(self) -> int:
        """The MT5 login this host holds."""
        return self._login

    def apply(self, step: Step, checkpoint: bool = False) -> AccountUpdate:
        """Apply a batch's quotes, then its deals (gateways fill a batch's orders at its prices).

        A rejected event is reported, not raised: one bad event must not stall the account.
        With no events at all it reports the current figures (how a new account joins the book).
        """
        with self._lock:
            if self._needs_restore:
                return AccountUpdate(self._login, None, frozenset(), needs_restore=True)
            update = self._apply(step)
            if not checkpoint:
                return update
            return AccountUpdate(
                update.login, update.figures, update.symbols_needed, update.rejected, self.checkpoint(),
                deals=update.deals,
            )

    def run_step(self, steps: Mapping[int, tuple[Step, bool]]) -> AccountUpdate | None:
        """A compiled graph's entry: the partition's steps by login; None when this account has
        none in this batch (every actor of a graph runs on every execution)."""
        mine = steps.get(self._login)
        return None if mine is None else self.apply(*mine)

    def _apply(self, step: Step) -> AccountUpdate:
        figures: AccountFigures | None = None if step.quotes or step.deals else self.state.figures()
        rejected: list[str] = []
        applied: list[Deal] = []
        self._board.update((q.symbol, q) for q in step.board)
        if step.quotes:
            try:
                figures = self.state.apply_quotes(step.quotes)
            except RejectedEvent as exc:
                rejected.append(f"quotes: {exc}")
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
        with self._lock:
            return pickle.dumps((self._board, self.state, self._recent), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, checkpoint: bytes, steps: Sequence[Step]) -> AccountUpdate:
        """Become the account the checkpoint describes, then replay the steps sent after it.

        `restarted` in the answer says the host had been restarted (it was waiting for this)."""
        with self._lock:
            restarted = self._needs_restore
            self._board, self.state, self._recent = pickle.loads(checkpoint)  # noqa: S301 (our own bytes)
            self._needs_restore = False
            rejected: list[str] = []
            for step in steps:
                rejected.extend(self._apply(step).rejected)
            return AccountUpdate(
                self._login, self.state.figures(), self.state.symbols_needed, tuple(rejected),
                self.checkpoint(), restarted=restarted,
            )

    def resync(self, checkpoint: bytes) -> AccountUpdate:
        """Take the gateway's current view of the account (a checkpoint built from its snapshot)
        but keep this account's own analytics (peak equity, realised P/L, money flows), which no
        MT5 snapshot carries. A supervisor re-attaching after its own restart calls this; for an
        actor that was itself restarted there is nothing left to keep."""
        with self._lock:
            kept = None if self._needs_restore else self.state.analytics()
            deals = () if self._needs_restore else tuple(self._recent)
            self.restore(checkpoint, ())
            if kept is not None:
                self.state.restore_analytics(kept)
            self._recent.extend(deals)
            return AccountUpdate(
                self._login, self.state.figures(), self.state.symbols_needed, checkpoint=self.checkpoint()
            )

    def figures(self) -> AccountFigures:
        """Current figures, computed from the state as it stands."""
        with self._lock:
            return self.state.figures()

    def detail(self) -> AccountDetail:
        """Figures and open positions, with each position's floating profit in the deposit currency,
        and the recent deals, newest first."""
        with self._lock:
            positions, deals = self.state.positions(), tuple(reversed(self._recent))
            digits = {name: spec.digits for name, spec in self._specs.items()}
            profits = self.state.position_profits()
            return AccountDetail(self.state.figures(), positions, profits, deals, digits)

    def pid(self) -> int:
        """The process hosting this account (operators and failure tests kill it)."""
        return os.getpid()


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class MT5AccountActor(AccountHost):
    """One Ray actor per MT5 trading account.

    A sync actor on purpose: the work is CPU-bound and short, sync actors measured faster than
    async ones for it, and calls from one caller run in the order sent (a restore always runs
    before the batches sent after it). `max_task_retries=0`: a deal must never be applied twice;
    Ray restarts a dead actor (`max_restarts=-1`) and the supervisor restores it.
    """

    def __init__(
        self, snapshot: AccountSnapshot, symbols: Mapping[str, SymbolSpec], quotes: Mapping[str, Quote]
    ) -> None:
        super().__init__(
            snapshot, symbols, quotes, restarted=ray.get_runtime_context().was_current_actor_reconstructed
        )

    def leave_graphs(self) -> int:
        """Stop the compiled-graph loops a dead supervisor left on this actor; how many were found.

        A graph whose driver died is never torn down: its loop keeps waiting on its input and
        keeps Ray's single compiled-graph slot of the actor busy, so a new graph could never start
        here. Ray keeps no handle on the loop's tasks, hence the search of this process's objects
        (a few thousand: milliseconds). Only a supervisor that has no graph yet calls this.
        """
        stale = [obj for obj in gc.get_objects() if isinstance(obj, ExecutableTask)]
        for task in stale:
            try:
                task.cancel()  # closes its channels: the loop's read fails and the loop ends
            except Exception:  # already closed
                log.debug("stale graph task already closed", exc_info=True)
        return len(stale)
