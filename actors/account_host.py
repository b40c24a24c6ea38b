"""AccountHost: one Ray actor process hosting thousands of account actors.

Why. A Ray actor process costs ~100 MB and every Ray call milliseconds of CPU, against tens of
microseconds of risk math per account update; an account actor is a plain Python object
(`actors/mt5_account.py`), so a host process carries thousands of them and a batch costs one
Ray call per host, never one per account.

A batch arrives once per host (`apply`): the host routes it through its own symbol → accounts
index to the accounts it touches and applies each one's step in batch order. An account whose
step raises is marked failed and skipped from then on; the exception never reaches the other
accounts or the host, and the supervisor restores that account alone (`restore`) from its
checkpoint and the batches since. Checkpoints are taken in groups: every batch, the accounts of
one of `checkpoint_every` phases are pickled together (shared symbol specs and quotes are then
written once), so each account is checkpointed every `checkpoint_every` batches and the cost is
spread evenly over batches.

An idle host does nothing: no thread, task or timer per account or per host; it only answers calls.
A host that Ray restarted after its process died knows no connection: its answer says so
(`unknown`) and the supervisor restores all its accounts.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import ray

from actors import collector
from actors.mt5_account import AccountActor, AccountDetail, AccountUpdate, Step, pickle_parts, unpickle_parts
from veles.risk.account import AccountFigures
from veles.risk.columns import FigureColumns
from veles.risk.events import AccountSnapshot, Deal, PositionSwap, Quote
from veles.risk.instruments import SymbolSpec

log = logging.getLogger(__name__)


class InjectedFailure(RuntimeError):
    """Raised for an account told to fail (`HostCore.inject_failure`): failure drills and tests."""

CHECKPOINT_EVERY = 20  # batches between two checkpoints of one account (phases spread the work)


@dataclass(frozen=True, slots=True)
class HostBatch:
    """One gateway batch as every host of its connection receives it (and as the supervisor logs
    it for replays). `board` (every symbol's latest price) comes only with deals."""

    connection_id: str
    seq: int
    quotes: tuple[Quote, ...] = ()
    deals: tuple[Deal, ...] = ()
    board: tuple[Quote, ...] = ()
    swaps: tuple[PositionSwap, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Checkpoint:
    """Some accounts' state as of batch `seq`, pickled together (`pickle_parts`)."""

    seq: int
    blob: bytes
    logins: tuple[int, ...]


@dataclass(slots=True)
class HostAnswer:
    """What one call to a host changed for one connection.

    `figures`: the accounts' new figures (the latest per account); `updates`: only the accounts
    that refused events or applied deals, with them (their figures are in `figures` too);
    `failed`: accounts whose step raised, with why (they are skipped until restored);
    `checkpoint`: the accounts checkpointed by this call; `needs`: every symbol this host's
    accounts of the connection depend on, when it changed (the supervisor routes batches by it);
    `unknown`: the host does not know the connection (its process was restarted): nothing applied.
    """

    figures: list[AccountFigures] = field(default_factory=list)
    updates: list[AccountUpdate] = field(default_factory=list)
    # figures of the earlier batches of a call that stepped an account more than once (a catch-up,
    # a restore replaying batches never reported), oldest first, to be judged before `figures`:
    # an account that crossed a threshold and came back within them must still raise its alert
    replayed: list[AccountFigures] = field(default_factory=list)
    # `replayed` as columns (`_split`: runs without a repeated login, oldest first), so a dead
    # host's restore, which replays every batch of the outage, sends a few arrays per batch
    # through the supervisor instead of an object per account per batch
    replayed_columns: list[FigureColumns] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    needs: frozenset[str] | None = None
    unknown: bool = False
    figure_count: int = 0  # how many figures `apply_split` returned separately


@dataclass
class HostedConnection:
    """One connection's accounts inside a host."""

    symbols: dict[str, SymbolSpec]
    seq: int = 0
    accounts: dict[int, AccountActor] = field(default_factory=dict)
    phase: dict[int, int] = field(default_factory=dict)
    index: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    needs_of: dict[int, frozenset[str]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    next_phase: int = 0
    # logins by phase modulo `checkpoint_every`, built when asked (`in_phase`): a batch's
    # checkpoint takes one phase's accounts without walking every account of the connection
    _phases: tuple[int, int, dict[int, list[int]]] | None = None

    def in_phase(self, phase: int, every: int) -> list[int]:
        """The logins whose checkpoint phase is `phase` modulo `every` (hosted or not any more)."""
        cached = self._phases
        if cached is None or cached[0] != every or cached[1] != len(self.phase):
            buckets: dict[int, list[int]] = {}
            for login, own in self.phase.items():
                buckets.setdefault(own % every, []).append(login)
            cached = self._phases = (every, len(self.phase), buckets)
        return cached[2].get(phase, [])

    def add(self, actor: AccountActor) -> None:
        """Host an account (replacing one of the same login)."""
        login = actor.login
        self.accounts[login] = actor
        self.failed.pop(login, None)
        if login not in self.phase:
            self.phase[login] = self.next_phase
            self.next_phase += 1
        self.reindex(login, actor.state.symbols_needed)

    def reindex(self, login: int, needed: frozenset[str]) -> bool:
        """Point the index at what the account depends on now; whether that changed."""
        old = self.needs_of.get(login, frozenset())
        if old is needed or old == needed:  # an account's set is the same object until it changes
            return False
        for symbol in old - needed:
            self.index[symbol].discard(login)
            if not self.index[symbol]:
                del self.index[symbol]
        for symbol in needed - old:
            self.index[symbol].add(login)
        self.needs_of[login] = needed
        return True

    def needs(self) -> frozenset[str]:
        """Every symbol some account here depends on."""
        return frozenset(self.index)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _gc_paused(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `method` with Python's cyclic garbage collector paused.

    Why: opening or restoring a host builds thousands of accounts at once (a restore unpickles
    every checkpoint of a host's accounts), millions of objects none of which is garbage, and the
    collector, triggered by allocation counts, kept walking them: unpickling 5,000 accounts' checkpoints took
    several times longer with it running. Reference counting still frees what dies meanwhile.
    """

    @functools.wraps(method)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused


class HostCore:
    """The host's logic without Ray: tested in-process, run inside `AccountHost`."""

    def __init__(self, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.checkpoint_every = checkpoint_every
        self.connections: dict[str, HostedConnection] = {}
        self._faults: dict[int, int] = {}  # login -> steps still to fail (failure drills)
        self._stubborn: set[int] = set()  # drills a re-snapshot does not end

    # -- accounts in -----------------------------------------------------------------------------

    @_gc_paused
    def open(
        self, connection_id: str, symbols: Mapping[str, SymbolSpec], quotes: Mapping[str, Quote],
        snapshots: Sequence[AccountSnapshot], seq: int, keep_analytics: bool = True,
    ) -> HostAnswer:
        """Host these accounts as the gateway shows them at batch `seq`; each reports its figures.

        An account already hosted (the supervisor restarted, the host did not) takes the
        gateway's view but keeps its own analytics and recent deals (`AccountActor.resync`) when
        `keep_analytics`; otherwise it starts afresh from the snapshot (a re-snapshot).
        """
        conn = self.connections.get(connection_id)
        if conn is None:
            conn = self.connections[connection_id] = HostedConnection(dict(symbols))
        conn.symbols = dict(symbols)
        conn.seq = seq
        answer = HostAnswer()
        fresh: dict[int, AccountActor] = {}
        for snapshot in snapshots:
            self._end_drill(snapshot.login)  # a fresh snapshot replaces the faulty state
            actor = AccountActor(snapshot, conn.symbols, quotes)
            old = conn.accounts.get(snapshot.login)
            if keep_analytics and old is not None and snapshot.login not in conn.failed:
                old.resync(actor.checkpoint())
                actor = old
            conn.add(actor)
            fresh[snapshot.login] = actor
            answer.figures.append(actor.figures())
        answer.checkpoint = Checkpoint(seq, pickle_parts(fresh), tuple(fresh))
        answer.needs = conn.needs()
        return answer

    @_gc_paused
    def restore(
        self, connection_id: str, symbols: Mapping[str, SymbolSpec], checkpoints: Sequence[Checkpoint],
        logins: Iterable[int], batches: Sequence[HostBatch], seq: int, reset: bool,
        snapshots: Sequence[AccountSnapshot] = (), quotes: Mapping[str, Quote] | None = None,
        reported: int | None = None,
    ) -> HostAnswer:
        """Rebuild `logins` from their checkpoints and replay the logged batches after each one's
        checkpoint, up to batch `seq`; with `reset`, this host's other accounts of the connection
        are dropped first (a restarted host, or one the supervisor cannot trust).

        `snapshots` (with the connection's `quotes`) are accounts the log no longer reaches: they
        start afresh from the gateway's view as of `seq`, and only they are checkpointed by the
        answer. An account whose replay raises stays failed (reported in `failed`); the others
        answer with their figures.

        Why no new checkpoint of the replayed accounts: the checkpoints they were rebuilt from are
        still in the supervisor and the log still reaches them, and their phases checkpoint them
        again within `checkpoint_every` batches; pickling a whole host's accounts again made a
        host restore seconds slower. The replay routes each logged batch like `apply` does
        (symbol index, own deals), so an account is stepped exactly by the batches a live host
        would have stepped it by.

        `reported`: the last batch whose answer reached the aggregator (a dead host's restore). The
        replayed batches after it were never reported: their applied deals and refusals come back
        in `updates`, and every figure they produced in `replayed` (oldest first), so a large deal
        or an alert crossing within the outage is not lost. Batches up to it are replayed silently
        (their figures went out before; sending them again would take the alert rules back in time).
        """
        conn = self.connections.get(connection_id)
        if conn is None or reset:
            conn = self.connections[connection_id] = HostedConnection(dict(symbols))
        wanted = set(logins)
        restored: dict[int, tuple[AccountActor, int]] = {}
        for checkpoint in checkpoints:
            parts = unpickle_parts(checkpoint.blob)
            for login in wanted.intersection(parts):
                if login not in restored or restored[login][1] < checkpoint.seq:
                    restored[login] = (AccountActor.from_parts(parts[login], conn.symbols), checkpoint.seq)
        answer = HostAnswer()
        unreported: dict[int, AccountUpdate] = {}  # deals and refusals of batches after `reported`
        routing = HostedConnection(conn.symbols)  # the symbol index of the accounts being replayed
        for actor, _since in restored.values():
            routing.add(actor)
        for batch in batches:
            if batch.seq > seq:
                break
            own = _deals_by_login(batch.deals)
            swaps = _deals_by_login(batch.swaps)
            touched: set[int] = {login for login in (*own, *swaps) if login in restored}
            for quote in batch.quotes:
                touched.update(routing.index.get(quote.symbol, ()))
            for login in sorted(touched):
                actor, since = restored[login]
                if since >= batch.seq or login in answer.failed:
                    continue
                deals = tuple(own.get(login, ()))
                try:
                    update = self._apply(actor, Step(batch.quotes, deals, batch.board if deals else (),
                                                     tuple(swaps.get(login, ()))))
                except Exception as exc:  # this account's fault: it stays failed, nobody else is touched
                    answer.failed[login] = f"{type(exc).__name__}: {exc}"
                    unreported.pop(login, None)
                    continue
                routing.reindex(login, update.symbols_needed)
                if reported is not None and batch.seq > reported:
                    if update.figures is not None:
                        answer.replayed.append(update.figures)
                    unreported[login] = _merge(unreported.get(login), update)
        for login, (actor, _since) in restored.items():
            if login in answer.failed:
                conn.failed[login] = answer.failed[login]
                conn.accounts.pop(login, None)
                continue
            conn.add(actor)
            answer.figures.append(actor.figures())
        fresh: dict[int, AccountActor] = {}
        for snapshot in snapshots:
            self._end_drill(snapshot.login)  # a fresh snapshot replaces the faulty state
            actor = AccountActor(snapshot, conn.symbols, quotes or {})
            conn.add(actor)
            fresh[snapshot.login] = actor
            answer.figures.append(actor.figures())
        answer.updates = [u for login, u in unreported.items()
                          if (u.rejected or u.deals) and login not in answer.failed]
        for login in wanted - restored.keys():
            conn.failed[login] = answer.failed[login] = "no checkpoint"
        conn.seq = max(conn.seq, seq) if not reset else seq
        if fresh:
            answer.checkpoint = Checkpoint(conn.seq, pickle_parts(fresh), tuple(fresh))
        answer.needs = conn.needs()
        return answer

    def restore_split(self, *args: Any, **kwargs: Any) -> tuple[HostAnswer, FigureColumns]:
        """`restore`, with the figures apart from the rest of the answer (see `apply_split`): a
        host's restore answers with every account it rebuilt."""
        return _split(self.restore(*args, **kwargs))

    # -- batches -----------------------------------------------------------------------------------

    def apply(self, connection_id: str, batches: Sequence[HostBatch]) -> HostAnswer:
        """Apply batches in order to the accounts each one touches; one answer for all of them."""
        conn = self.connections.get(connection_id)
        if conn is None:
            return HostAnswer(unknown=True)
        latest: dict[int, AccountUpdate] = {}
        replayed: list[AccountFigures] = []
        failed: dict[int, str] = {}
        needs_changed = False
        first_seq = conn.seq
        for batch in batches:
            if batch.seq <= conn.seq:
                continue  # already applied (a catch-up overlapping a batch)
            touched: set[int] = set()
            for quote in batch.quotes:
                touched.update(conn.index.get(quote.symbol, ()))
            own = _deals_by_login(batch.deals)
            swaps = _deals_by_login(batch.swaps)
            touched.update(login for login in (*own, *swaps) if login in conn.accounts)
            prices_only = Step(batch.quotes)  # the step of every touched account without deals or swaps
            accounts, failed_here = conn.accounts, conn.failed
            for login in sorted(touched):
                actor = accounts.get(login)
                if actor is None or login in failed_here:
                    continue
                step = prices_only
                if login in own or login in swaps:
                    deals = tuple(own.get(login, ()))
                    step = Step(batch.quotes, deals, batch.board if deals else (),
                                tuple(swaps.get(login, ())))
                try:
                    update = self._apply(actor, step)
                except Exception as exc:  # isolate: only this account is failed, the batch goes on
                    conn.failed[login] = failed[login] = f"{type(exc).__name__}: {exc}"
                    log.warning("account %s failed on batch %s: %s", login, batch.seq, conn.failed[login])
                    latest.pop(login, None)
                    continue
                needs_changed |= conn.reindex(login, update.symbols_needed)
                earlier = latest.get(login)
                if earlier is not None and earlier.figures is not None and update.figures is not None:
                    replayed.append(earlier.figures)  # a catch-up: the rules must see every step
                latest[login] = _merge(earlier, update)
            conn.seq = batch.seq
        answer = HostAnswer([u.figures for u in latest.values() if u.figures is not None],
                            [u for u in latest.values() if u.rejected or u.deals])
        answer.failed = failed
        answer.replayed = [f for f in replayed if f.login not in failed]
        answer.checkpoint = self._due_checkpoint(conn, first_seq)
        if needs_changed:
            answer.needs = conn.needs()
        return answer

    def apply_split(self, connection_id: str, batches: Sequence[HostBatch]
                    ) -> tuple[HostAnswer, FigureColumns]:
        """`apply`, with the figures apart from the rest of the answer, as columns: the supervisor
        reads the answer and hands the figures on to the aggregator as they are (called with
        `num_returns=2`, the figures are an ObjectRef of their own), so the bulk of every batch
        is a few arrays, written once in the host and read once in the aggregator."""
        return _split(self.apply(connection_id, batches))

    def apply_many(self, calls: Sequence[tuple[str, Sequence[HostBatch]]]
                   ) -> list[tuple[HostAnswer, FigureColumns]]:
        """`apply_split` for several connections in one call, in order: a tenant host sends the
        batches all its tenants made in one turn of its event loop together, one Ray call per
        shared host instead of one per tenant (`actors/host_calls.py`)."""
        return [self.apply_split(key, batches) for key, batches in calls]

    def _apply(self, actor: AccountActor, step: Step) -> AccountUpdate:
        if self._faults.get(actor.login):
            self._faults[actor.login] -= 1
            raise InjectedFailure(f"account {actor.login}: injected failure")
        return actor.apply(step)

    def _due_checkpoint(self, conn: HostedConnection, since: int) -> Checkpoint | None:
        """Checkpoint the accounts whose phase came round between batch `since` and now."""
        every = self.checkpoint_every
        if conn.seq <= since:
            return None
        phases = {s % every for s in range(max(since + 1, conn.seq - every + 1), conn.seq + 1)}
        accounts, failed = conn.accounts, conn.failed
        due = {login: accounts[login] for phase in sorted(phases) for login in conn.in_phase(phase, every)
               if login in accounts and login not in failed}
        if not due:
            return None
        return Checkpoint(conn.seq, pickle_parts(due), tuple(due))

    # -- reads and control -----------------------------------------------------------------------

    def close(self, connection_id: str) -> int:
        """Drop a connection's accounts; how many there were."""
        conn = self.connections.pop(connection_id, None)
        return 0 if conn is None else len(conn.accounts)

    def figures(self, connection_id: str | None = None) -> dict[int, AccountFigures]:
        """Every hosted account's current figures (of one connection, or all), failed ones left out."""
        return {
            login: actor.figures()
            for cid, conn in self.connections.items() if connection_id in (None, cid)
            for login, actor in conn.accounts.items() if login not in conn.failed
        }

    def snapshots(self, connection_id: str) -> list[AccountSnapshot]:
        """Every hosted account of one connection as it stands now (balance, credit, open
        positions), failed ones left out: what a stress test of the live book starts from."""
        conn = self.connections.get(connection_id)
        if conn is None:
            return []
        return [actor.state.snapshot() for login, actor in conn.accounts.items() if login not in conn.failed]

    def account_snapshot(self, login: int, connection_id: str) -> AccountSnapshot | None:
        """One hosted account as it stands now (None if not here, or failed): the calculator's
        starting point for a live account."""
        conn = self.connections.get(connection_id)
        actor = conn.accounts.get(login) if conn is not None else None
        if conn is None or actor is None or login in conn.failed:
            return None
        return actor.state.snapshot()

    def detail(self, login: int, connection_id: str | None = None) -> AccountDetail | None:
        """One account's page (of one connection, or any: a host shared by tenants holds the same
        login under several connections); None if this host does not run it (or it is failed)."""
        for cid, conn in self.connections.items():
            if connection_id not in (None, cid):
                continue
            actor = conn.accounts.get(login)
            if actor is not None and login not in conn.failed:
                return actor.detail()
        return None

    def inject_failure(self, login: int, steps: int = 1, survive_snapshot: bool = False) -> bool:
        """Make an account's next `steps` step applications, replays included, raise
        InjectedFailure (failure drills and tests). The drill stands for corrupted account state:
        replays from its checkpoint keep failing, and a re-snapshot from the gateway, which
        replaces that state, ends it (so whether the account fails again does not hang on timing).
        With `survive_snapshot` it stands for a bug the account meets on every step instead,
        which no re-snapshot cures (the supervisor's restore budget then leaves it failed)."""
        if not any(login in conn.accounts for conn in self.connections.values()):
            return False
        self._faults[login] = steps
        if survive_snapshot:
            self._stubborn.add(login)
        return True

    def _end_drill(self, login: int) -> None:
        if login not in self._stubborn:
            self._faults.pop(login, None)

    def accounts(self) -> int:
        """How many account actors this host runs."""
        return sum(len(conn.accounts) for conn in self.connections.values())


def _split(answer: HostAnswer) -> tuple[HostAnswer, FigureColumns]:
    """An answer without its figures, and the figures as columns (counted in `figure_count`): a
    few arrays cross to the aggregator instead of an object per account."""
    figures, answer.figures = answer.figures, []
    answer.figure_count = len(figures)
    if answer.replayed:
        answer.replayed_columns, answer.replayed = FigureColumns.runs(answer.replayed), []
    return answer, FigureColumns.of(figures)


_E = TypeVar("_E", Deal, PositionSwap)


def _deals_by_login(deals: Iterable[_E]) -> dict[int, list[_E]]:
    """A batch's deals (or swaps) by account, each account's in batch order."""
    own: defaultdict[int, list[_E]] = defaultdict(list)
    for deal in deals:
        own[deal.login].append(deal)
    return own


def _merge(old: AccountUpdate | None, new: AccountUpdate) -> AccountUpdate:
    """Two updates of one account in one answer (a catch-up of several batches): latest figures,
    every refusal and applied deal."""
    if old is None:
        return new
    return AccountUpdate(
        new.login, new.figures if new.figures is not None else old.figures, new.symbols_needed,
        old.rejected + new.rejected, deals=old.deals + new.deals,
    )


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class AccountHost(HostCore):
    """The Ray actor: a process of account actors, restarted by Ray when it dies.

    A sync actor on purpose: the work is CPU-bound and short, and calls from one caller run in the
    order sent, so a restore runs exactly between the batches sent before and after it.
    `max_task_retries=0`: a batch must never be applied twice; the supervisor restores instead.
    The garbage collector is calmed and the accounts an open or a restore built are settled out
    of its sight (`actors/collector.py`): full collections of them stalled batches.
    """

    def __init__(self, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        super().__init__(checkpoint_every)
        collector.calm()

    def open(self, *args: Any, **kwargs: Any) -> HostAnswer:
        """`HostCore.open`, then the new accounts settled (see the class docstring)."""
        answer = super().open(*args, **kwargs)
        collector.settle()
        return answer

    def restore(self, *args: Any, **kwargs: Any) -> HostAnswer:
        """`HostCore.restore`, then the rebuilt accounts settled (see the class docstring)."""
        answer = super().restore(*args, **kwargs)
        collector.settle()
        return answer

    def pid(self) -> int:
        """The host's process (failure tests and `veles bench engine --kill` kill it)."""
        return os.getpid()

    def node(self) -> str:
        """The Ray node this host runs on (hosts are spread over the cluster's nodes)."""
        return str(ray.get_runtime_context().get_node_id())
