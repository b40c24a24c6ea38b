"""TenantSupervisor: one per tenant. Owns the tenant's MT5 connections and its actors.

For each connection it opens the gateway inside this process and places the connection's account
actors on the tenant's account hosts (`actors/account_host.py`, a few Ray actor processes each
running thousands of account actors) through a shard map it owns (`actors/shard_map.py`). It polls
each gateway at a fixed pace; when the fan-out falls behind, the due polls are merged (quotes
latest-wins, deals all kept, in order), so at most one batch per connection is ever queued.

Price path. A batch is one Ray call per host that has an account holding (or converting through)
a changed symbol or dealing in it (a symbol → hosts index, from what each host reports its
accounts need), never one per account; inside the host it goes to the touched accounts only.

Supervision. Each account has a checkpoint (pickled in groups by its host, every
CHECKPOINT_EVERY batches) and the connection keeps a bounded log of its batches. An account whose
step raised is restored alone from its checkpoint plus the batches since, with a bounded retry,
then from the gateway's snapshot, then left failed with the reason. A host whose call fails (its
process died) or that answers that it knows nothing (Ray restarted it) has its accounts marked
recovering and restored from checkpoints + log in the background, while every other host goes on
with the batches; it then catches up on the batches that came meanwhile. A host whose whole node
was lost is started again on a live node first (its shards move with it). An account whose
checkpoint is older than the log reaches is re-snapshotted from the gateway (the MT5 server is
the source of truth) rather than the log growing without end. A dead aggregator is restarted
by Ray and rebuilt from the accounts' figures. A dead supervisor is restarted by Ray, starts
itself again and re-attaches to its (detached, named) hosts, re-synchronising each account from
the gateway's current snapshot. Every restart is counted by cause and logged.

Lifetime. A supervisor runs only while its tenant has a connection to feed: the engine starts
none for a tenant without one, and a supervisor whose last stored connection is removed (and that
was given none) stops its aggregator and hosts and ends itself.

Bad input is counted per connection and dropped, never allowed to stop the tenant: quotes for
unknown symbols, non-finite, non-positive or crossed prices, deals for unknown logins, batches
the gateway failed to produce. Deals the account itself refuses (duplicate or out-of-order
tickets, unknown positions) are counted too. The newest reasons are kept for the operator.

Refusals. A connection is refused, not retried, when the plan has no room for it or when it
brings trading-account logins another connection of the tenant already feeds: the book, the
portal's account pages and the API name an account by its login within the tenant, so a second
server whose logins overlap would silently mix two clients' figures. The refusal names the
logins and the other connection and lands on the connection's row; changing or removing either
connection decides again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.actor import ActorHandle
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from actors import collector, death_notice, engine_stats
from actors.account_host import CHECKPOINT_EVERY, Checkpoint, HostAnswer, HostBatch
from actors.alert_store import RuleSet
from actors.close_keeper import CLOSES_EVERY_S, backfill_closes, record_closes
from actors.feeds import FeedStore, StoredFeed
from actors.host_placement import AccountHosts
from actors.mt5_account import AccountActor, AccountDetail, AccountUpdate, unpickle_parts
from actors.names import aggregator_name
from actors.risk_aggregator import RiskAggregator
from actors.shard_map import DEFAULT_SHARDS, ShardMap, host_count
from veles.config import engine_prefix
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import Gateway, GatewayError
from veles.mt5.reconciliation import Reconciliation
from veles.mt5.server_figures import ServerFigures, server_figures
from veles.plans import PlanLimitExceeded, check_usage
from veles.risk.account import AccountFigures
from veles.risk.columns import FigureColumns
from veles.risk.events import AccountSnapshot, Batch, Deal, NewsEvent, PositionSwap, Quote, merge_runs
from veles.risk.stress import BookPart

log = logging.getLogger(__name__)


class LoginsTaken(Exception):
    """A connection's trading accounts overlap another connection's logins (see the docstring)."""

    def __init__(self, logins: list[int], other: str) -> None:
        shown = ", ".join(map(str, logins[:5])) + (f" and {len(logins) - 5} more" if len(logins) > 5 else "")
        super().__init__(f"{len(logins)} of its logins ({shown}) are already fed by connection {other}; "
                         "an account is named by its login within the tenant, so two servers may not "
                         "share one")
        self.logins, self.other = logins, other


REFUSALS = (PlanLimitExceeded, LoginsTaken)  # the connection is not retried until it changes

# Ray's ways of saying an actor died, is being restarted, or cannot be placed (a host pinned to a
# node that is gone: see actors/host_placement.py).
_ACTOR_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
               ray.exceptions.ActorUnschedulableError)
RECENT_ERRORS = 20
LOG_LIMIT = 12 * CHECKPOINT_EVERY  # batches a connection keeps for replays; older: re-snapshot
RESTORE_ATTEMPTS = 3  # an account whose step raised: replays tried, then the gateway's snapshot
ACCOUNT_FAILURES = 3  # step failures of one account within FAILURE_WINDOW_S that leave it failed
FAILURE_WINDOW_S = 600.0
LATE_AFTER_S = 0.25  # at least: a host answering a batch later than this (or one gateway interval) is late
STRAGGLER_GRACE_S = 0.05  # at least: a host answering this long (or as long again) after the first is late
RESTORE_POLL_S = 0.2  # at most: between tries of a restore while Ray brings a dead host back
HOST_RESTORE_S = 300.0  # a dead host (or aggregator) is waited for this long, then left failed
OPEN_GIVE_UP_S = 24 * 3600.0  # a stored connection that keeps failing to open is then left failed
SHOWN_ACCOUNTS = 50  # recovering / failed logins listed in status()
SYNC_EVERY_S = 10.0  # stored connections are re-read this often (changes also arrive at once)
STATS_EVERY_S = 2.0  # actor counts and restarts handed to the aggregator for /metrics
RETRY_MIN_S, RETRY_MAX_S = 1.0, 300.0  # backoff between attempts to open a failing connection
CLOSE_WAIT_S = 30.0  # for a removed connection's batch in flight
RECONCILED_KINDS = frozenset({"simulator", "webapi"})  # servers that publish their own figures
HELD_KINDS = frozenset({"simulator"})  # servers that stand still while their pump waits



def _stamped(snapshots: Iterable[AccountSnapshot], connection_id: str) -> list[AccountSnapshot]:
    """The gateway's snapshots marked with the connection that feeds them, so each account's
    figures (and the accounts list's Server column) say which server it is on."""
    return [dataclasses.replace(s, server=connection_id) if s.server != connection_id else s
            for s in snapshots]

async def _answers_in_time(answers: list[asyncio.Future[Any]], limit: float) -> None:
    """Wait for a batch's host answers: all of them, `limit` seconds at most, and once the first
    is in, the others only as long again as it took (STRAGGLER_GRACE_S at least).

    Why the grace. A host killed under a batch does not answer until Ray says it died; waiting the
    whole `limit` for it held every other host's figures of that batch back by that much, and on a
    loaded machine one such batch was the surviving hosts' p99. Healthy hosts of one connection
    answer within about the same time (they share its batch); one that takes more than twice the
    fastest is treated as late (`Supervisor._late`): its answer is taken when it comes."""
    started = time.monotonic()
    pending = set(answers)
    while pending:  # until a host has answered (a failed call, a dead host, does not count)
        done, pending = await asyncio.wait(pending, timeout=limit - (time.monotonic() - started),
                                           return_when=asyncio.FIRST_COMPLETED)
        if not done or any(not answer.exception() for answer in done):
            break
    if pending:
        first = time.monotonic() - started
        grace = min(max(STRAGGLER_GRACE_S, first), limit - first)
        if grace > 0:
            await asyncio.wait(pending, timeout=grace)


@dataclass
class Changes:
    """What hosts answered, on its way to the aggregator: figures, and the few updates that
    carry refusals or applied deals."""

    figures: list[AccountFigures] = field(default_factory=list)
    updates: list[AccountUpdate] = field(default_factory=list)
    # hosts' figures, passed on unread (refs), and replayed figures as columns, each host's in order
    refs: list[ray.ObjectRef | FigureColumns] = field(default_factory=list)
    in_refs: int = 0  # how many figures `refs` hold
    hosts: list[int] = field(default_factory=list)  # the hosts these figures came from
    quotes: list[Quote] = field(default_factory=list)  # the batch's prices, for the flow detectors
    news: list[NewsEvent] = field(default_factory=list)  # the batch's calendar releases, for them too

    @property
    def count(self) -> int:
        """How many figures are on their way, in `figures` and in `refs`."""
        return len(self.figures) + self.in_refs


class StepFailed(Exception):
    """An account's replay raised again in its host (retried, then re-snapshotted)."""


@dataclass
class AccountSlot:
    """The supervisor's side of one account: its host, latest checkpoint and status."""

    host: int
    checkpoint: Checkpoint
    status: str = "live"  # "live", "recovering" (being restored), "failed" (gave up: see error)
    error: str | None = None
    # when its steps failed lately: the restore budget (ACCOUNT_FAILURES within FAILURE_WINDOW_S)
    failures: deque[float] = field(default_factory=lambda: deque(maxlen=ACCOUNT_FAILURES))


@dataclass
class HostLink:
    """One host as one connection uses it."""

    needs: frozenset[str] = frozenset()
    recovering: bool = False  # its accounts are being restored: batches meanwhile only join the log
    # it has not answered a batch in time: batches meanwhile only join the log, and this task takes
    # its answer when it comes and catches it up from the log (or restores it, if it died)
    late: asyncio.Task[None] | None = None
    restoring: asyncio.Task[None] | None = None
    last_seq: int = 0  # the last batch sent to it
    # the last batch whose answer was taken: every figure and deal of it and of the batches before
    # reached the aggregator (a restore reports what its replay of the later ones produces)
    answered: int = 0
    failed: str | None = None  # gave up waiting for it (HOST_RESTORE_S): batches skip it, accounts failed


@dataclass
class Connection:
    """Live state of one MT5 connection inside the supervisor."""

    spec: GatewaySpec
    gateway: Gateway
    symbols: frozenset[str]
    key: str = ""  # what its hosts know it by: unique across tenants (hosts may be shared)
    specs: dict[str, Any] = field(default_factory=dict)
    accounts: dict[int, AccountSlot] = field(default_factory=dict)
    hosts: dict[int, HostLink] = field(default_factory=dict)
    log: deque[HostBatch] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    seq: int = 0
    last_quotes: dict[str, Quote] = field(default_factory=dict)
    polls: int = 0
    batches: int = 0
    account_calls: int = 0
    host_calls: int = 0
    deals: int = 0
    merged: int = 0
    late_answers: int = 0  # batches a host answered too late to go with the others
    last_sent_at: float = 0.0  # when the newest batch left the gateway
    # wall-clock time (this process's) the newest quote and the newest deal arrived: the desk's
    # freshness badge per connection (a quote's own time is the MT5 server's clock, hours off UTC)
    quote_at: float = 0.0
    deal_at: float = 0.0
    last_poll_at: float = 0.0  # wall clock of the pump's last poll (/metrics: a stalled engine shows)
    resnapshots: int = 0
    gateway_cpu_s: float = 0.0
    account_tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    absorbing: asyncio.Task[None] | None = None  # the newest figures on their way to the aggregator
    rejected: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    recent_errors: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    # each host restore's timing (time.monotonic() it was noticed, seconds waiting for Ray to bring
    # the process back, seconds of the restore call, of the catch-up): where recovery time goes
    recoveries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    paused: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    reconciliation: Reconciliation | None = None  # None: not reconciled (turned off, or a replay)
    server_figures: ServerFigures | None = None  # opened at the first check, closed with the connection
    reconciling: asyncio.Task[None] | None = None  # a check of a real server, off the pump

    def kind_holds_still(self) -> bool:
        """Whether the server only moves when polled (the simulator), so holding the pump gives
        both sides of a reconciliation at the same moment."""
        return self.spec.kind in HELD_KINDS

    def reject(self, reason: str, detail: str) -> None:
        """Count a refused event and remember why, for the operator."""
        self.rejected[reason] += 1
        self.recent_errors.append(f"{reason}: {detail}")

    def valid_quotes(self, quotes: Iterable[Quote]) -> list[Quote]:
        """The quotes fit to use; the rest are counted and dropped."""
        good = []
        for quote in quotes:
            if quote.symbol not in self.symbols:
                self.reject("unknown_symbol", quote.symbol)
            elif not (0.0 < quote.bid < math.inf and 0.0 < quote.ask < math.inf):
                self.reject("bad_price", f"{quote.symbol} bid={quote.bid} ask={quote.ask}")
            elif quote.bid > quote.ask:
                self.reject("crossed_quote", f"{quote.symbol} bid={quote.bid} > ask={quote.ask}")
            else:
                good.append(quote)
        return good

    def log_since(self, seq: int) -> list[HostBatch] | None:
        """The logged batches after `seq`; None when the log no longer reaches back that far."""
        if seq >= self.seq:
            return []
        if not self.log or self.log[0].seq > seq + 1:
            return None
        return [batch for batch in self.log if batch.seq > seq]

    def logins_on(self, host: int) -> list[int]:
        """The accounts this connection runs on `host` (those left failed excepted)."""
        return [lg for lg, slot in self.accounts.items() if slot.host == host and slot.status != "failed"]

    def count(self, status: str) -> int:
        """Accounts in a status."""
        return sum(slot.status == status for slot in self.accounts.values())


@dataclass
class Feed:
    """A stored connection the supervisor feeds: opening (with backoff), running or refused."""

    stored: StoredFeed
    state: str = "opening"  # "opening", "retrying", "running", "refused", "failed"
    attempts: int = 0
    error: str | None = None
    retry_in_s: float | None = None
    # set while no open is under way: closing waits for it, then closes what the open made
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    conn: Connection | None = None
    task: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        """What the operator's status shows of it (never the credentials)."""
        return {"row_id": self.stored.row_id, "state": self.state, "attempts": self.attempts,
                "error": self.error, "retry_in_s": self.retry_in_s}


class Supervisor:
    """Supervises one tenant's gateways, account actors and aggregator: the logic, wherever it
    runs. `TenantSupervisor` (below) runs it as a Ray actor process of its own with a named
    aggregator process beside it; `actors/tenant_host.py` runs many tenants' supervisors and
    aggregators as logical actors in one process (dense tenant hosting)."""

    def __init__(
        self,
        tenant_id: int,
        gateways: list[GatewaySpec],
        publish_hz: float,
        redis_url: str | None,
        plan: str = "enterprise",
        database_url: str | None = None,
        store: FeedStore | None = None,
        hosts: int = 0,
        accounts_per_host: int = 0,
        shards: int = DEFAULT_SHARDS,
        checkpoint_every: int = CHECKPOINT_EVERY,
        log_limit: int = LOG_LIMIT,
        restore_s: float = HOST_RESTORE_S,
        open_give_up_s: float = OPEN_GIVE_UP_S,
        shared_hosts: str | None = None,
        reconstructed: bool = False,
    ) -> None:
        """`gateways` are fed as given (the demo's simulated broker); `store`, when given, supplies
        the tenant's stored connections, read at start, on `sync_connections` and every
        SYNC_EVERY_S. Account hosts: `hosts` of them, or enough for `accounts_per_host` each, or
        (both 0) one per CPU of the cluster, decided when the first connection opens; accounts are
        placed on them by `shards` virtual shards. Each account is checkpointed every
        `checkpoint_every` batches; a connection's log keeps `log_limit` batches. Retries stop:
        a dead host or aggregator is waited for `restore_s`, a stored connection that fails to
        open is retried for `open_give_up_s`; then each is left failed, with why, in `status()`.
        `shared_hosts`: the account hosts are that pool's, shared with other tenants (each
        tenant's accounts kept apart by connection key), instead of the tenant's own; stopping
        then closes the tenant's connections on them instead of ending them. `reconstructed`:
        this supervisor replaces one that died (it starts itself and re-attaches)."""
        if log_limit <= checkpoint_every:
            raise ValueError("log_limit must exceed checkpoint_every: the log must reach the checkpoints")
        self.tenant_id = tenant_id
        collector.calm()  # millions of live objects here with a simulated broker: `actors/collector.py`
        self._incarnation = time.time_ns()  # a restarted supervisor's calls outrank its predecessor's
        self._host_setting = (hosts, accounts_per_host, shards)
        self._checkpoint_every = checkpoint_every
        self._log_limit = log_limit
        self._restore_s, self._open_give_up_s = restore_s, open_give_up_s
        self._aggregator_failed: str | None = None  # gave up rebuilding it (see _rebuild_aggregator)
        self._shard_map: ShardMap | None = None
        self._shared = shared_hosts is not None
        self._hosts = AccountHosts(shared_hosts if shared_hosts is not None else tenant_id, checkpoint_every)
        self._hosts_lock = asyncio.Lock()
        self._store = store
        self._feeds: dict[str, Feed] = {}
        self._sync_lock = asyncio.Lock()
        self._admit_lock = asyncio.Lock()
        self._background = False  # the sync and stats loops run
        self._database_url = database_url
        self._backfilled: set[str] = set()  # connections whose server history is in daily_close
        self._rules: RuleSet | None = None  # pushed by set_rules; re-sent to a rebuilt aggregator
        self._plan = plan
        self._refused: dict[str, str] = {}  # connection id -> why it was refused (plan, logins)
        self._opening: dict[str, set[int]] = {}  # logins of connections being opened
        self._specs = gateways
        self._publish_hz = publish_hz
        self._redis_url = redis_url
        self._connections: dict[str, Connection] = {}
        self._aggregator: Any = None  # a Ray actor handle, or a logical actor's (tenant_host.py)
        self._aggregator_restarts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._start_lock = asyncio.Lock()
        self._started = time.time()
        self._running = False
        self._ending: asyncio.Task[None] | None = None  # no connection left: stopping for good
        self._reconstructed = reconstructed
        if self._reconstructed:
            # Ray restarted this supervisor after its process died: nobody will call start(), so
            # start again at once and re-attach to the hosts that outlived the old process.
            log.warning("tenant %s: supervisor restarted by Ray; re-attaching to its actors", tenant_id)
            self._spawn(self.start())

    async def start(self) -> dict[str, Any]:
        """Open every connection, start (or re-attach to) the hosts and the pumps; returns `status()`.

        Attaching to hosts that outlived a previous supervisor re-synchronises each account from
        the gateway's current account snapshot, the source of truth. Serialised: a restarted
        supervisor starts itself while its owner may be calling start() too.
        """
        async with self._start_lock:
            await self._start_all()
        return await self.status()

    async def _start_all(self) -> None:
        if self._aggregator is None:
            self._aggregator = self._new_aggregator()
            await self._start_aggregator()
        for spec in self._specs:
            if spec.connection_id not in self._connections and spec.connection_id not in self._refused:
                try:
                    conn = await self._open(spec)
                except REFUSALS as exc:
                    self._refused[spec.connection_id] = str(exc)
                    log.warning("tenant %s: %s refused: %s", self.tenant_id, spec.connection_id, exc)
                    continue
                self._connections[spec.connection_id] = conn
                self._spawn(self._pump(conn))
        if self._store is not None:
            try:
                await self._sync()
            except Exception:  # the database is away: the sync loop tries again
                log.exception("tenant %s: stored connections not read", self.tenant_id)
        if not self._background:
            self._background = True
            if self._store is not None:
                self._spawn(self._every(SYNC_EVERY_S, self._sync))
            self._spawn(self._every(STATS_EVERY_S, self._send_stats))
            if self._database_url is not None:
                self._spawn(self._keep_closes_every(CLOSES_EVERY_S))
        self._running = True

    # -- stored connections --------------------------------------------------------------------

    async def sync_connections(self, wait: bool = True) -> dict[str, Any]:
        """Feed the stored connections as they are now: start new ones, stop removed ones, restart
        changed ones (new server, login or password); returns `status()`. The API and the portal
        call this after a change with `wait` False (the sync runs on, closing a feed can take
        seconds, and the request need not wait for it); the supervisor also syncs every SYNC_EVERY_S."""
        if self._running and self._store is not None:
            if wait:
                await self._sync()
            else:
                self._spawn(self._sync())
        return await self.status()

    async def _sync(self) -> None:
        assert self._store is not None
        async with self._sync_lock:
            wanted = {feed.connection_id: feed for feed in await asyncio.to_thread(self._store.feeds)}
            removed = False
            for cid, feed in list(self._feeds.items()):
                if cid not in wanted or wanted[cid].fingerprint != feed.stored.fingerprint:
                    await self._close_feed(cid)
                    removed = True
            for cid, stored in wanted.items():
                if removed and cid in self._feeds and self._feeds[cid].state == "refused":
                    await self._close_feed(cid)  # room may have been made: try it again
                if cid not in self._feeds:
                    feed = Feed(stored)
                    feed.settled.set()
                    self._feeds[cid] = feed
                    feed.task = asyncio.create_task(self._run_feed(feed))
                    self._tasks.add(feed.task)
                    feed.task.add_done_callback(self._tasks.discard)
            if not self._feeds and not self._specs and self._ending is None:
                # A task of its own, outside `_tasks` (which `stop` cancels); it waits for this
                # sync to let go of the lock, so the call that got here is answered first.
                self._ending = asyncio.create_task(self._end())

    async def _end(self) -> None:
        """No connection left to feed (stored or given): flush the book's last change to the
        consumers, stop the aggregator and the hosts, and end this supervisor for good, so a
        tenant without a connection runs nothing. Its next connection starts a new one
        (`veles.services.engine.apply_connections`)."""
        async with self._sync_lock:
            if self._feeds or self._specs:  # a connection came back meanwhile
                self._ending = None
                return
            log.info("tenant %s: no connection left; its engine stops", self.tenant_id)
            if self._aggregator is not None:
                with contextlib.suppress(*_ACTOR_GONE):
                    await self._aggregator.flush.remote()
            await self.stop()
        self._end_self()

    # -- where it runs (`TenantSupervisor`, `actors/tenant_host.py`) -------------------------------

    def abandon(self) -> None:
        """Drop everything at once, as the death of this supervisor's process would: every task
        cancelled mid-way, no host, aggregator or database told (a tenant host uses it when a
        tenant's logical actor fails; it then starts a new one, which re-attaches)."""
        for task in [*self._tasks, *(t for t in (self._ending,) if t is not None)]:
            task.cancel()
        for conn in self._connections.values():
            for task in conn.account_tasks.values():
                task.cancel()
            if conn.absorbing is not None:
                conn.absorbing.cancel()
            conn.gateway.close()  # a dead process's connections close with it

    def _new_aggregator(self) -> Any:
        """The tenant's aggregator: a handle whose methods are called as `.method.remote(...)`."""
        raise NotImplementedError

    async def _kill_aggregator(self, aggregator: Any) -> None:
        """End the aggregator (the tenant stops on purpose), and with it its engine-stats key
        (`actors/engine_stats.py`): whoever ends the aggregator deletes the key, once."""
        raise NotImplementedError

    def _end_self(self) -> None:
        """End this supervisor for good (no connection left)."""
        raise NotImplementedError

    async def _run_feed(self, feed: Feed) -> None:
        """Open the connection, retrying with exponential backoff (and jitter, so many failing
        connections do not knock in step) while it fails; then pump it. A plan refusal is final
        until the connections change."""
        assert self._store is not None
        store, stored = self._store, feed.stored
        if stored.spec is None:
            feed.state, feed.error = "failed", stored.problem
            await self._report(store.failed, stored, stored.problem or "cannot be opened")
            return
        spec = stored.spec

        async def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            sleep = state.upcoming_sleep
            feed.state, feed.attempts, feed.retry_in_s = "retrying", state.attempt_number, round(sleep, 1)
            feed.error = str(error) if isinstance(error, GatewayError) else f"{type(error).__name__}: {error}"
            log.warning("tenant %s: %s failed to open (attempt %d): %s; retrying in %.0f s", self.tenant_id,
                        stored.connection_id, state.attempt_number, feed.error, sleep)
            await self._report(store.failed, stored,
                               f"{feed.error} (attempt {state.attempt_number}; retrying in {sleep:.0f} s)")

        retrying = AsyncRetrying(
            retry=retry_if_not_exception_type(REFUSALS),
            stop=stop_after_delay(self._open_give_up_s),
            wait=wait_exponential(multiplier=RETRY_MIN_S, max=RETRY_MAX_S) + wait_random(0, RETRY_MIN_S),
            before_sleep=failed,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    feed.settled.clear()
                    try:
                        feed.conn = await self._open(spec, stored)
                        self._connections[spec.connection_id] = feed.conn
                    finally:
                        feed.settled.set()
        except REFUSALS as exc:
            feed.state, feed.error = "refused", str(exc)
            self._refused[spec.connection_id] = str(exc)
            log.warning("tenant %s: %s refused: %s", self.tenant_id, spec.connection_id, exc)
            await self._report(store.failed, stored, f"Refused: {exc}.")
            return
        except Exception as exc:  # retried for open_give_up_s: left failed until the row changes
            feed.state, feed.retry_in_s = "failed", None
            feed.error = (f"gave up after {feed.attempts + 1} attempts in {self._open_give_up_s:.0f} s: "
                          + (str(exc) if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"))
            log.error("tenant %s: %s left failed: %s", self.tenant_id, stored.connection_id, feed.error)
            await self._report(store.failed, stored, f"{feed.error[0].upper()}{feed.error[1:]}; "
                               "change the connection to try again.")
            return
        assert feed.conn is not None
        feed.state, feed.error, feed.retry_in_s = "running", None, None
        self._refused.pop(spec.connection_id, None)  # admitted: its row says connected already
        await self._pump(feed.conn)

    async def _report(self, call: Callable[..., None], *args: Any) -> None:
        """Write a feed's outcome to the database; a database that is away must not stop the feed."""
        try:
            await asyncio.to_thread(call, *args)
        except Exception:
            log.exception("tenant %s: connection status not stored", self.tenant_id)

    async def _close_feed(self, cid: str) -> None:
        """Stop feeding a connection and take its accounts out of the book."""
        feed = self._feeds.pop(cid)
        while not feed.settled.is_set():  # an open's actors are named and detached: never abandon one
            await feed.settled.wait()
        conn = feed.conn
        if conn is not None and feed.task is not None and not feed.task.done():
            conn.idle.clear()
            conn.paused = True  # the batch in flight finishes first
            try:
                await asyncio.wait_for(conn.idle.wait(), CLOSE_WAIT_S)
            except TimeoutError:
                log.warning("tenant %s: %s did not stop in time; closing anyway", self.tenant_id, cid)
        if feed.task is not None:
            feed.task.cancel()
            await asyncio.gather(feed.task, return_exceptions=True)
        self._refused.pop(cid, None)
        if conn is not None:
            await self._discard(conn)
        log.info("tenant %s: connection %s closed", self.tenant_id, cid)

    async def _discard(self, conn: Connection) -> None:
        """Tear down a closed connection: restores, gateway, its accounts on the hosts, book rows."""
        restoring = [link.restoring for link in conn.hosts.values() if link.restoring is not None]
        restoring += list(conn.account_tasks.values())
        if conn.absorbing is not None:
            restoring.append(conn.absorbing)
        if conn.reconciling is not None:
            restoring.append(conn.reconciling)
        for task in restoring:
            task.cancel()
        await asyncio.gather(*restoring, return_exceptions=True)
        if conn.server_figures is not None:
            await asyncio.to_thread(conn.server_figures.close)
        conn.gateway.close()
        await asyncio.gather(*(self._hosts[h].close.remote(conn.key) for h in conn.hosts),
                             return_exceptions=True)
        self._connections.pop(conn.spec.connection_id, None)
        if self._aggregator is not None:
            await self._aggregator.remove.remote(list(conn.accounts))

    # -- background ----------------------------------------------------------------------------

    async def _every(self, seconds: float, work: Callable[[], Any]) -> None:
        """Run `work` every `seconds` for the supervisor's life; a failure is logged, not fatal."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:
                log.exception("tenant %s: %s failed", self.tenant_id, getattr(work, "__name__", work))

    async def _keep_closes_every(self, seconds: float) -> None:
        """Daily closes from the live feeds (`actors/close_keeper.py`): at once, then every
        `seconds`; a failure (the database away) is logged and the next round writes the same."""
        while True:
            try:
                await self._keep_closes()
            except Exception:
                log.exception("tenant %s: daily closes not stored", self.tenant_id)
            await asyncio.sleep(seconds)

    async def _keep_closes(self) -> None:
        assert self._database_url is not None
        latest: dict[str, Quote] = {}
        for conn in list(self._connections.values()):
            if conn.key not in self._backfilled and callable(getattr(conn.gateway, "daily_history", None)):
                # the server's own chart history for the days before the engine ran (the simulator's)
                history = await asyncio.to_thread(conn.gateway.daily_history)  # type: ignore[attr-defined]
                await asyncio.to_thread(backfill_closes, self._database_url, self.tenant_id, history)
                self._backfilled.add(conn.key)
            for name, quote in conn.last_quotes.items():
                latest.setdefault(name, quote)
        if latest:
            await asyncio.to_thread(record_closes, self._database_url, self.tenant_id, latest)

    async def _send_stats(self) -> None:
        """Hand the aggregator what only the supervisor knows (actors alive, restarts), so the
        tenant's engine metrics come from one place."""
        if self._aggregator is None or self._aggregator_failed is not None:
            return
        slots = self._slots().values()
        restarts: Counter[str] = Counter(self._aggregator_restarts)
        for conn in self._connections.values():
            restarts.update(conn.restarts)
        await self._aggregator.set_engine_stats.remote({
            "account_actors": len(slots),
            "recovering": sum(slot.status != "live" for slot in slots),
            "connections": len(self._connections),
            "restarts": dict(restarts),
            # a pump that stops polling (paused, hung) leaves last_poll_at behind the clock; polls
            # merged are polls the pump fell behind on (due together, dispatched as one batch)
            "polls": sum(c.polls for c in self._connections.values()),
            "polls_merged": sum(c.merged for c in self._connections.values()),
            "last_poll_at": max((c.last_poll_at for c in self._connections.values()), default=0.0),
            "reconciliation": [c.reconciliation.view() for c in self._connections.values()
                               if c.reconciliation is not None],
        })

    async def _start_aggregator(self) -> None:
        """Start (or restart) the aggregator; rules pushed by `set_rules` are handed to it again
        when there is no database (with one, it reads the stored rules itself)."""
        assert self._aggregator is not None
        await self._aggregator.start.remote()
        if self._rules is not None and self._database_url is None:
            await self._aggregator.set_rules.remote(self._rules)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, spec: GatewaySpec, stored: StoredFeed | None = None) -> Connection:
        try:
            return await self._open_connection(spec, stored)
        finally:
            self._opening.pop(spec.connection_id, None)  # open now (its accounts hold them) or not

    async def _open_connection(self, spec: GatewaySpec, stored: StoredFeed | None = None) -> Connection:
        """Open a gateway and its accounts. The plan is checked before any account is placed: a
        stored connection is admitted by its store, atomically in the database (see
        `StoredConnections.admit`); one given as a spec (the demo's broker) against this
        supervisor's plan and the connections it runs."""
        # a real connector waits on the network, the simulator warms up: neither on the loop
        gateway = await asyncio.to_thread(open_gateway, spec)
        # the first batch carries the current prices every account needs to value its positions
        first = gateway.poll()
        snapshots = _stamped(gateway.accounts(), spec.connection_id)
        logins = [snapshot.login for snapshot in snapshots]
        try:
            if stored is None or self._store is None:
                # the plan first: over the plan is the reason a broker can act on (upgrade)
                check_usage(
                    self._plan,
                    servers=len(self._connections) + 1,
                    accounts=sum(len(c.accounts) for c in self._connections.values()) + len(snapshots),
                )
                self._check_logins_free(spec.connection_id, logins)
            else:
                # logins before admission: admitting marks the row connected in the database
                self._check_logins_free(spec.connection_id, logins)
                unstored = [c for cid, c in self._connections.items() if cid not in self._feeds]
                besides = (len(unstored), sum(len(c.accounts) for c in unstored))
                async with self._admit_lock:  # one at a time here; the database's lock across processes
                    await asyncio.to_thread(self._store.admit, stored, snapshots, besides)
        except BaseException:  # refused, or the database away (retried): nothing of it stays open
            gateway.close()
            raise
        symbols = {s.name: s for s in gateway.symbols()}
        conn = Connection(spec=spec, gateway=gateway, symbols=frozenset(symbols), specs=symbols,
                          log=deque(maxlen=self._log_limit), key=f"{self.tenant_id}:{spec.connection_id}")
        conn.polls = 1
        if spec.reconcile_every_s > 0 and spec.kind in RECONCILED_KINDS:
            conn.reconciliation = Reconciliation(spec.connection_id, spec.reconcile_every_s,
                                                 next_at=time.monotonic() + spec.reconcile_every_s)
        conn.last_quotes.update({q.symbol: q for q in conn.valid_quotes(first.quotes)})
        await self._ensure_hosts(len(snapshots))
        assert self._shard_map is not None
        by_host: dict[int, list[AccountSnapshot]] = {}
        for snapshot in snapshots:
            by_host.setdefault(self._shard_map.host_of(snapshot.login), []).append(snapshot)
        answers: list[HostAnswer] = await asyncio.gather(*(
            self._hosts[h].open.remote(conn.key, symbols, dict(conn.last_quotes), group, 0)
            for h, group in by_host.items()
        ))
        changes = Changes(news=list(first.news))
        for h, answer in zip(by_host, answers, strict=True):
            assert answer.checkpoint is not None
            conn.hosts[h] = HostLink(needs=answer.needs or frozenset())
            for login in answer.checkpoint.logins:
                conn.accounts[login] = AccountSlot(host=h, checkpoint=answer.checkpoint)
            changes.figures.extend(answer.figures)
        await self._absorb(conn, changes, first.sent_at)
        collector.settle()  # the gateway and the accounts' checkpoints live as long as the connection
        log.info("tenant %s: connection %s open, %d accounts on %d hosts", self.tenant_id,
                 spec.connection_id, len(conn.accounts), len(conn.hosts))
        return conn

    async def _ensure_hosts(self, accounts: int) -> None:
        """Start the tenant's account hosts (or re-attach to the running ones) when the first
        connection opens: how many is decided then, from the settings and that connection's size.

        The shard map is a function of the number of hosts, and the hosts are detached, named
        actors (`host:<tenant>:<n>`) that outlive this supervisor: a restarted supervisor counts
        the hosts that are there and rebuilds the same map, even when the cluster has since
        gained or lost nodes (its CPU count, which sized the hosts, has changed). Where hosts run
        (dealt round the live nodes, pinned there) is `actors/host_placement.py`'s."""
        async with self._hosts_lock:  # two connections opening at once start one set of hosts
            if self._hosts:
                return
            hosts, per_host, shards = self._host_setting
            count = await asyncio.to_thread(self._hosts.running)
            if self._shared:
                # A shared pool is sized by the settings alone, never by one tenant's size or by
                # how many of its hosts another tenant, starting at the same time, has named yet.
                cores = max(1, int(ray.cluster_resources().get("CPU", 1)))
                count = max(count, host_count(shards, cores, hosts, 0, shards))
            elif not count:
                cores = max(1, int(ray.cluster_resources().get("CPU", 1)))
                count = host_count(accounts, cores, hosts, per_host, shards)
            self._shard_map = ShardMap(count, shards)
            await self._hosts.start(count)

    def _check_logins_free(self, connection_id: str, logins: list[int]) -> None:
        """Raise LoginsTaken if another connection, open or opening, already holds any of
        `logins`; else hold them for `connection_id` while it opens (two connections opening at
        once must not both pass)."""
        held = {cid: set(conn.accounts) for cid, conn in self._connections.items()} | self._opening
        for cid, other in held.items():
            if cid != connection_id and (taken := sorted(other & set(logins))):
                raise LoginsTaken(taken, cid)
        self._opening[connection_id] = set(logins)

    def _first_poll(self, interval: float) -> float:
        """When a pump polls first: now; with shared hosts, on the next tick of a clock common to
        every tenant of the process with that interval, so their batches reach a shared host in
        one turn of the event loop and go as one call (`actors/host_calls.py`)."""
        now = time.monotonic()
        return math.ceil(now / interval) * interval if self._shared and interval > 0 else now

    async def _pump(self, conn: Connection) -> None:
        interval = conn.spec.interval
        next_at = self._first_poll(interval)
        while True:
            if conn.paused:
                conn.idle.set()
                await asyncio.sleep(interval)
                next_at = self._first_poll(interval)
                continue
            due = 1 + max(0, int((time.monotonic() - next_at) / interval))
            if not conn.spec.merge_when_behind:
                due = 1
            next_at += due * interval
            batches = []
            cpu = time.thread_time()
            for _ in range(due):
                try:
                    batches.append(conn.gateway.poll())
                except GatewayError as exc:
                    conn.reject("gateway_error", str(exc))
                conn.polls += 1
            conn.last_poll_at = time.time()
            conn.gateway_cpu_s += time.thread_time() - cpu
            if batches:
                conn.merged += len(batches) - 1
                try:
                    for merged in merge_runs(batches):
                        await self._dispatch(conn, merged)
                except Exception as exc:  # one bad batch must not stop the tenant
                    conn.reject("batch_error", f"{type(exc).__name__}: {exc}")
                    log.exception("tenant %s: batch failed on %s", self.tenant_id, conn.spec.connection_id)
            if conn.reconciliation is not None and conn.reconciliation.due(time.monotonic()):
                await self._reconcile(conn)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _reconcile(self, conn: Connection) -> None:
        """One reconciliation check of a connection (`veles/mt5/reconciliation.py`), between two
        batches: every live account's figures straight from its host (each host has answered the
        last batch), then the server's own, compared in a worker thread, never on this loop.

        A simulated server stands still while its pump waits here, so both sides are read at the
        same batch (matching time: drift is exactly 0 unless a figure is wrong). A real server
        moves on whatever Veles does, so the pump is not held for it: its check runs in the
        background (one at a time) and the two-checks rule absorbs its update lag. Alerts go out
        through the aggregator, as every other alert does."""
        assert conn.reconciliation is not None
        live = {login for login, slot in conn.accounts.items()
                if slot.status == "live" and not conn.hosts[slot.host].recovering
                and conn.hosts[slot.host].late is None}
        hosts = {conn.accounts[login].host for login in live}
        answers: list[Any] = await asyncio.gather(*(self._hosts[h].figures.remote(conn.key) for h in hosts),
                                                  return_exceptions=True)
        veles = {login: f for answer in answers if isinstance(answer, dict)
                 for login, f in answer.items() if login in live}
        if conn.kind_holds_still():
            await self._check_server(conn, veles)
        elif conn.reconciling is None or conn.reconciling.done():
            conn.reconciling = asyncio.create_task(self._check_server(conn, veles))

    async def _check_server(self, conn: Connection, veles: dict[int, AccountFigures]) -> None:
        reconciliation = conn.reconciliation
        assert reconciliation is not None
        if conn.server_figures is None:
            try:  # a simulated server's fake Web API starts here: not on the loop either
                conn.server_figures = await asyncio.to_thread(server_figures, conn.spec, conn.gateway)
            except Exception as exc:
                reconciliation.failed(f"the server's figures cannot be read: {type(exc).__name__}: {exc}")
                return
            if conn.server_figures is None:
                conn.reconciliation = None  # nothing to compare with (a replay)
                return
        alerts = await asyncio.to_thread(reconciliation.check, conn.server_figures.read, veles)
        if alerts and self._aggregator is not None and self._aggregator_failed is None:
            try:
                await self._aggregator.announce.remote(alerts)
            except Exception as exc:  # away or restarting: the drift stays in the status and metrics
                log.warning("tenant %s: %d reconciliation alerts not announced: %s: %s",
                            self.tenant_id, len(alerts), type(exc).__name__, exc)

    async def _dispatch(self, conn: Connection, batch: Batch) -> None:
        quotes = conn.valid_quotes(batch.quotes)
        for quote in quotes:
            conn.last_quotes[quote.symbol] = quote
        deals = []
        for deal in batch.deals:
            if deal.login in conn.accounts:
                deals.append(deal)
            else:
                conn.reject("unknown_login", f"deal {deal.ticket} for login {deal.login}")
        swaps: list[PositionSwap] = []
        for swap in batch.swaps:
            if swap.login in conn.accounts:
                swaps.append(swap)
            else:
                conn.reject("unknown_login", f"swap of position {swap.position_id} for login {swap.login}")
        conn.seq += 1
        conn.last_sent_at = batch.sent_at
        if quotes:
            conn.quote_at = time.time()
        if deals:
            conn.deal_at = time.time()
        board = tuple(conn.last_quotes.values()) if deals else ()
        sent = HostBatch(conn.key, conn.seq, tuple(quotes), tuple(deals), board, tuple(swaps))
        conn.log.append(sent)
        # The hosts whose accounts this batch touches, and hosts not called for a checkpoint
        # period (so their accounts' checkpoints stay within the log's reach).
        changed = {quote.symbol for quote in quotes}
        stale = conn.seq - self._checkpoint_every
        targets = [h for h, link in conn.hosts.items()
                   if link.needs & changed or link.last_seq <= stale]
        moved = {d.login for d in deals} | {w.login for w in swaps}
        targets += [h for h in {conn.accounts[login].host for login in moved} if h not in targets]
        calls: list[tuple[int, Any, ray.ObjectRef]] = []
        for h in targets:
            link = conn.hosts[h]
            if link.recovering or link.late is not None:
                continue  # the batch is in the log: the restore or the late host's catch-up replays it
            link.last_seq = conn.seq
            calls.append((h, *self._hosts[h].apply_split.options(num_returns=2).remote(conn.key, [sent])))
        conn.host_calls += len(calls)
        # A host that has not answered in time (dead and not yet noticed by Ray, or just slow) does
        # not hold the batch up for the others: its answer is taken when it comes (`_late`).
        answers = [asyncio.ensure_future(ref) for _, ref, _ in calls]
        await _answers_in_time(answers, max(LATE_AFTER_S, conn.spec.interval))
        changes = Changes(quotes=quotes, news=list(batch.news))
        for (h, _, figures), answer in zip(calls, answers, strict=True):
            if not answer.done():
                self._late(conn, h, answer, figures, batch.sent_at, sent.seq)
            elif self._take(conn, h, answer.exception() or answer.result(), changes, figures):
                conn.hosts[h].answered = sent.seq
        conn.account_calls += changes.count
        conn.batches += 1
        conn.deals += len(batch.deals)
        # The aggregator takes this batch's figures while the hosts work on the next one; sends
        # stay in order (each waits for the one before) and at most one waits behind another.
        previous = conn.absorbing
        self._send(conn, changes, batch.sent_at)
        if previous is not None:
            await previous

    def _late(self, conn: Connection, host: int, answer: asyncio.Future[HostAnswer], figures: ray.ObjectRef,
              sent_at: float, seq: int) -> None:
        """A host did not answer a batch in time: the batch goes on without it, and it gets no
        further batches until its answer is in (they join the log meanwhile)."""
        link = conn.hosts[host]
        conn.late_answers += 1
        link.late = asyncio.create_task(self._catch_up_late(conn, host, answer, figures, sent_at, seq))
        self._tasks.add(link.late)
        link.late.add_done_callback(self._tasks.discard)

    async def _catch_up_late(self, conn: Connection, host: int, answer: asyncio.Future[HostAnswer],
                             figures: ray.ObjectRef, sent_at: float, seq: int) -> None:
        """Take a late host's answer, then send it the batches it missed meanwhile, until it has
        them all; one call at a time, so its figures reach the aggregator in order. If the call
        failed (the host died), `_take` starts its restore, which replays the log instead."""
        link = conn.hosts[host]
        try:
            while True:
                try:
                    result: HostAnswer | BaseException = await answer
                except Exception as exc:  # the host died (or Ray could not reach it)
                    result = exc
                changes = Changes()
                if self._take(conn, host, result, changes, figures):
                    link.answered = max(link.answered, seq)
                conn.account_calls += changes.count
                self._send(conn, changes, sent_at)
                if link.recovering:
                    return
                missed = conn.log_since(link.last_seq)
                if missed is None:
                    self._host_failed(conn, host, "fell behind the log")
                    return
                if not missed:
                    return
                link.last_seq, sent_at, seq = conn.seq, conn.last_sent_at, missed[-1].seq
                reply: ray.ObjectRef
                reply, figures = self._hosts[host].apply_split.options(num_returns=2).remote(conn.key, missed)
                answer = asyncio.ensure_future(reply)
        finally:
            link.late = None

    def _take(self, conn: Connection, host: int, answer: HostAnswer | BaseException,
              changes: Changes, figures: ray.ObjectRef | None = None) -> bool:
        """One host's answer: keep its updates and checkpoint, restore what failed; False when the
        host failed instead of answering. `figures`: the answer's figures as the host's own object
        (`apply_split`), passed on unread, after its earlier (`replayed`) figures."""
        if isinstance(answer, BaseException):
            self._host_failed(conn, host, type(answer).__name__)
            return False
        if answer.unknown:
            self._host_failed(conn, host, "restarted")
            return False
        if answer.needs is not None:
            conn.hosts[host].needs = answer.needs
        if answer.checkpoint is not None:
            for login in answer.checkpoint.logins:
                slot = conn.accounts.get(login)
                if slot is not None and slot.host == host:
                    slot.checkpoint = answer.checkpoint
        changes.figures.extend(answer.replayed)  # before the latest: the aggregator applies in order
        changes.figures.extend(answer.figures)
        changes.refs.extend(answer.replayed_columns)  # a split answer's: before its figures' ref
        changes.in_refs += sum(len(columns) for columns in answer.replayed_columns)
        if answer.figures or answer.figure_count:
            changes.hosts.append(host)
        if figures is not None and answer.figure_count:
            changes.refs.append(figures)
            changes.in_refs += answer.figure_count
        changes.updates.extend(answer.updates)
        for login, why in answer.failed.items():
            self._account_failed(conn, login, why)
        return True

    # -- recovery --------------------------------------------------------------------------------

    def _account_failed(self, conn: Connection, login: int, why: str) -> None:
        """An account's step raised in its (live) host: restore it alone, in the background.

        Bounded: a restore ends with a re-snapshot, which a fault in the account's own data (or a
        bug it meets on every step) survives, so the account would fail, restore and fail again
        for ever, a warning and a restart each time. The ACCOUNT_FAILURES-th failure within
        FAILURE_WINDOW_S leaves it failed instead: skipped by its host, shown as failed with the
        reason (status, the account's page, the admin page) until its connection is opened again.
        """
        slot = conn.accounts.get(login)
        if slot is None or slot.status != "live":
            return
        now = time.monotonic()
        slot.failures.append(now)
        conn.recent_errors.append(f"account {login}: {why}")
        if len(slot.failures) == ACCOUNT_FAILURES and now - slot.failures[0] <= FAILURE_WINDOW_S:
            slot.status = "failed"
            slot.error = f"failed {ACCOUNT_FAILURES} times in {FAILURE_WINDOW_S:.0f} s, left failed: {why}"
            log.error("tenant %s: account %s on %s %s", self.tenant_id, login, conn.spec.connection_id,
                      slot.error)
            return
        slot.status, slot.error = "recovering", why
        conn.restarts["step_error"] += 1
        log.warning("tenant %s: account %s on %s failed (%s); restoring", self.tenant_id, login,
                    conn.spec.connection_id, why)
        task = asyncio.create_task(self._restore_account(conn, login))
        conn.account_tasks[login] = task
        task.add_done_callback(lambda _: conn.account_tasks.pop(login, None))

    async def _restore_account(self, conn: Connection, login: int) -> None:
        """Checkpoint + log, a few times with backoff; then the gateway's snapshot; then give up
        with the reason in the status. Calls reach the host in the order sent, so a restore lands
        exactly between the batches sent before it and after it."""
        slot = conn.accounts[login]
        retrying = AsyncRetrying(stop=stop_after_attempt(RESTORE_ATTEMPTS), reraise=True,
                                 wait=wait_exponential(multiplier=0.1, max=2.0),
                                 retry=retry_if_exception_type((StepFailed, *_ACTOR_GONE)))
        try:
            async for attempt in retrying:
                with attempt:
                    if conn.hosts[slot.host].recovering:
                        return  # its host is being restored whole, this account with it
                    while (late := conn.hosts[slot.host].late) is not None:
                        # a late host first gets every batch before this restore's (it restores
                        # the account up to the last batch sent, which moves the host on to it)
                        await asyncio.gather(late, return_exceptions=True)
                    if conn.hosts[slot.host].recovering:
                        return
                    failed, _ = await self._restore_on(conn, slot.host, [login], reset=False)
                    if login in failed:
                        raise StepFailed(failed[login])
        except StepFailed as exc:
            slot.error = str(exc)
            log.warning("tenant %s: account %s still fails after %d restores (%s); re-snapshotting",
                        self.tenant_id, login, RESTORE_ATTEMPTS, exc)
            try:
                await self._resnapshot(conn, slot.host, [login])
            except Exception as again:
                slot.status, slot.error = "failed", f"{type(again).__name__}: {again}"
                log.error("tenant %s: account %s left failed: %s", self.tenant_id, login, slot.error)
                return
        if slot.status == "recovering":
            slot.status, slot.error = "live", None
            log.info("tenant %s: account %s restored", self.tenant_id, login)

    def _host_failed(self, conn: Connection, host: int, cause: str) -> None:
        """A host died (its call failed) or was restarted by Ray (it knows nothing): its accounts
        are recovering until restored; the other hosts carry on."""
        link = conn.hosts[host]
        if link.recovering:
            return
        conn.restarts["host_died" if cause != "restarted" else "host_restarted"] += 1
        conn.recent_errors.append(f"host {host}: {cause}")
        log.warning("tenant %s: host %s of %s failed (%s); restoring its accounts", self.tenant_id,
                    host, conn.spec.connection_id, cause)
        for login in conn.logins_on(host):
            conn.accounts[login].status = "recovering"
        link.recovering = True
        link.restoring = asyncio.create_task(self._restore_host(conn, host))
        self._tasks.add(link.restoring)
        link.restoring.add_done_callback(self._tasks.discard)

    async def _restore_host(self, conn: Connection, host: int) -> None:
        """Rebuild every account of a host (retried while Ray restarts the process), then catch it
        up on the batches that came meanwhile; nothing is awaited between sending the catch-up and
        batches going to the host again, so none is missed or applied twice."""
        # Tried often: each try is one call that fails at once while the host restarts, and a
        # long wait between tries was recovery time lost after the host was back.
        retrying = AsyncRetrying(stop=stop_after_delay(self._restore_s), reraise=True,
                                 wait=wait_exponential(multiplier=0.05, max=RESTORE_POLL_S),
                                 retry=retry_if_exception_type(_ACTOR_GONE))
        logins = conn.logins_on(host)
        noticed = tried = time.monotonic()
        failed: dict[int, str] = {}
        restored_at = 0
        try:
            async for attempt in retrying:
                with attempt:
                    await self._hosts.replace_if_lost(host)  # its node was lost: start it on another
                    # a cheap call first: it fails at once while Ray restarts the host, and the
                    # restore's checkpoints (megabytes for thousands of accounts) go only to a live one
                    await self._hosts[host].pid.remote()
                    tried = time.monotonic()
                    failed, restored_at = await self._restore_on(conn, host, logins, reset=True,
                                                                 reported=conn.hosts[host].answered)
        except _ACTOR_GONE as exc:  # Ray could not bring it back: stop waiting, say so
            why = f"host {host} did not come back within {self._restore_s:.0f} s: {type(exc).__name__}"
            conn.hosts[host].failed = why
            for login in logins:
                conn.accounts[login].status, conn.accounts[login].error = "failed", why
            conn.recent_errors.append(why)
            log.error("tenant %s: %s; its %d accounts of %s left failed", self.tenant_id, why, len(logins),
                      conn.spec.connection_id)
            return
        restored = time.monotonic()
        timing = {"host": host, "accounts": len(logins), "noticed_at": noticed,
                  "waiting_s": round(tried - noticed, 3), "restore_s": round(restored - tried, 3)}
        conn.recoveries.append(timing)
        catch_up = conn.log_since(restored_at) or []
        link = conn.hosts[host]
        link.last_seq, link.recovering = conn.seq, False
        reference = self._hosts[host].apply.remote(conn.key, catch_up) if catch_up else None
        for login in logins:
            if conn.accounts[login].status == "recovering" and login not in failed:
                conn.accounts[login].status = "live"
        for login, why in failed.items():
            conn.accounts[login].status = "live"
            self._account_failed(conn, login, why)
        log.info("tenant %s: host %s restored (%d accounts)", self.tenant_id, host, len(logins))
        if reference is not None:
            changes = Changes()
            try:
                answer: HostAnswer | BaseException = await reference
            except _ACTOR_GONE as exc:
                answer = exc
            if self._take(conn, host, answer, changes):
                link.answered = max(link.answered, catch_up[-1].seq)
            await self._send(conn, changes, time.time())
        timing["catch_up_s"] = round(time.monotonic() - restored, 3)

    async def _restore_on(
        self, conn: Connection, host: int, logins: list[int], reset: bool, reported: int | None = None,
    ) -> tuple[dict[int, str], int]:
        """Send `logins`' checkpoints and the log since to their host, up to the last batch sent
        (accounts the log no longer reaches go as the gateway's snapshots instead). Returns the
        accounts whose replay failed, with why, and the batch they were restored to. `reported`
        (a whole host's restore): the last batch of the host the aggregator heard of; what the
        replay of later batches produced (figures, deals) is reported (see `HostCore.restore`)."""
        seq = conn.seq
        reach = conn.log[0].seq - 1 if conn.log else seq
        keep = [login for login in logins if conn.accounts[login].checkpoint.seq >= reach]
        old = set(logins) - set(keep)
        snapshots = _stamped([s for s in conn.gateway.accounts() if s.login in old],
                             conn.spec.connection_id) if old else []
        checkpoints = list({id(c): c for c in (conn.accounts[login].checkpoint for login in keep)}.values())
        since = min((c.seq for c in checkpoints), default=seq)
        batches = conn.log_since(since) or []
        reply: ray.ObjectRef
        figures: ray.ObjectRef
        reply, figures = self._hosts[host].restore_split.options(num_returns=2).remote(
            conn.key, conn.specs, checkpoints, keep, batches, seq, reset, snapshots,
            dict(conn.last_quotes), reported)
        answer: HostAnswer = await reply
        if snapshots:
            conn.resnapshots += len(snapshots)
            log.warning("tenant %s: %d accounts of %s re-snapshotted from the gateway (older than the "
                        "log)", self.tenant_id, len(snapshots), conn.spec.connection_id)
        changes = Changes()
        taken = self._take(conn, host, dataclasses.replace(answer, failed={}), changes, figures)
        if taken and reported is not None:
            conn.hosts[host].answered = seq
        await self._send(conn, changes, time.time())
        return answer.failed, seq

    async def _resnapshot(self, conn: Connection, host: int, logins: list[int]) -> None:
        """Rebuild accounts from the gateway's current snapshot (the MT5 server is the source of
        truth), as of the last batch sent: for checkpoints older than the log reaches, and for an
        account whose replay keeps failing. Their own analytics start again from the snapshot."""
        wanted = set(logins)
        snapshots = _stamped([s for s in conn.gateway.accounts() if s.login in wanted],
                             conn.spec.connection_id)
        seq = conn.seq
        answer: HostAnswer = await self._hosts[host].open.remote(
            conn.key, conn.specs, dict(conn.last_quotes), snapshots, seq, False)
        conn.resnapshots += len(snapshots)
        log.warning("tenant %s: %d accounts of %s re-snapshotted from the gateway", self.tenant_id,
                    len(snapshots), conn.spec.connection_id)
        changes = Changes()
        self._take(conn, host, answer, changes)
        await self._send(conn, changes, time.time())

    def _send(self, conn: Connection, changes: Changes, sent_at: float) -> asyncio.Task[None]:
        """Hand figures to the aggregator after every earlier send of this connection (a restored
        account's figures must not be overtaken by older ones still on their way)."""
        previous = conn.absorbing
        conn.absorbing = asyncio.create_task(self._absorb_after(previous, conn, changes, sent_at))
        return conn.absorbing

    async def _absorb_after(self, previous: asyncio.Task[None] | None, conn: Connection, changes: Changes,
                            sent_at: float) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        await self._absorb(conn, changes, sent_at)

    async def _absorb(self, conn: Connection, changes: Changes, sent_at: float) -> None:
        deals: list[Deal] = []
        for update in changes.updates:
            for reason in update.rejected:
                conn.reject("account_rejected", f"{update.login} {reason}")
            deals.extend(update.deals)
        moved = changes.count or changes.quotes or changes.news
        if moved and self._aggregator is not None and self._aggregator_failed is None:
            try:
                await self._aggregator.apply.remote(changes.figures, sent_at, deals, *changes.refs,
                                                   incarnation=self._incarnation, hosts=tuple(changes.hosts),
                                                   quotes=changes.quotes, news=changes.news)
            except _ACTOR_GONE:
                await self._rebuild_aggregator()

    async def _rebuild_aggregator(self) -> None:
        """The aggregator died: Ray restarts it empty; feed it every account's current figures.

        Retried until the new aggregator answers. Sending figures twice is harmless (each
        account's contribution is replaced), so "may or may not have run" needs no bookkeeping.
        An account that is itself being restored is left out: its restore sends its figures.
        """
        assert self._aggregator is not None
        self._aggregator_restarts["actor_died"] += 1
        log.warning("tenant %s: aggregator died; rebuilding its book from the accounts", self.tenant_id)
        retrying = AsyncRetrying(stop=stop_after_delay(self._restore_s), reraise=True,
                                 wait=wait_exponential(multiplier=0.1, max=2.0),
                                 retry=retry_if_exception_type(_ACTOR_GONE))
        try:
            async for attempt in retrying:
                with attempt:
                    await self._start_aggregator()
                    answers: list[Any] = await asyncio.gather(*self._figures_calls(), return_exceptions=True)
                    slots = self._slots()
                    good = [f for answer in answers if isinstance(answer, dict) for login, f in answer.items()
                            if login in slots and slots[login].status == "live"]
                    await self._aggregator.apply.remote(good, time.time(), incarnation=self._incarnation)
        except _ACTOR_GONE as exc:  # not restarted by Ray (killed for good, or no room): say so
            self._aggregator_failed = (f"did not come back within {self._restore_s:.0f} s: "
                                       f"{type(exc).__name__}")
            log.error("tenant %s: aggregator %s; the book is not updated until the engine is "
                      "restarted", self.tenant_id, self._aggregator_failed)

    def _figures_calls(self) -> list[Any]:
        """One `figures` call per host of each connection: only this tenant's accounts (a shared
        host holds other tenants' too, under their own connection keys)."""
        return [self._hosts[h].figures.remote(conn.key)
                for conn in self._connections.values() for h in conn.hosts]

    def _slots(self) -> dict[int, AccountSlot]:
        """Every account of every connection, by login."""
        return {login: slot for conn in self._connections.values() for login, slot in conn.accounts.items()}

    async def set_plan(self, plan: str) -> dict[str, Any]:
        """The tenant's plan changed: apply it now, without a restart; returns `status()`.

        A supervisor used to keep the plan it was created with. Now a downgrade closes the newest
        stored connections the new plan has no room for (their rows say why; the oldest keep
        running), and an upgrade opens those refused before. Connections reopened are admitted by
        the store against the plan as stored, like any other open.
        """
        self._plan = plan
        if not self._running or self._store is None:
            return await self.status()
        store = self._store
        async with self._sync_lock:
            for feed in list(self._feeds.values()):  # opens under way were admitted on the old plan
                await feed.settled.wait()
            unstored = [c for cid, c in self._connections.items() if cid not in self._feeds]
            servers, accounts = len(unstored), sum(len(c.accounts) for c in unstored)
            over: list[tuple[str, str]] = []
            for cid, feed in sorted(self._feeds.items(), key=lambda item: item[1].stored.row_id):
                if feed.conn is None:  # not open: a later attempt is admitted on the new plan
                    if feed.state == "refused":
                        over.append((cid, ""))  # room may have been made: try it again
                    continue
                try:
                    check_usage(plan, servers + 1, accounts + len(feed.conn.accounts))
                except PlanLimitExceeded as exc:
                    over.append((cid, f"Refused: {exc}."))
                    continue
                servers, accounts = servers + 1, accounts + len(feed.conn.accounts)
            for cid, why in over:
                stored = self._feeds[cid].stored
                await self._close_feed(cid)
                if why:  # not counted as connected by the admissions that follow
                    await self._report(store.failed, stored, why)
        await self._sync()
        return await self.status()

    async def set_rules(self, rules: RuleSet) -> dict[str, Any]:
        """Run new alert rules from now on, without a restart; returns the aggregator's `rules()`.

        Alerts of rules that still exist stay raised; those of removed rules are resolved.
        """
        self._rules = rules
        if self._aggregator is None:  # stopped (a suspended tenant): they apply when it starts
            return {"rules": [rule.id for rule in rules.rules], "skipped": list(rules.skipped)}
        await self._aggregator.set_rules.remote(rules)
        answer: dict[str, Any] = await self._aggregator.rules.remote()
        return answer

    async def pause(self) -> dict[str, int]:
        """Stop polling after the batch in flight and wait for every restore; returns polls made.

        For tests and benchmarks that compare the engine's figures with a reference fed the same
        number of polls.
        """
        for conn in self._connections.values():
            conn.idle.clear()
            conn.paused = True
        for conn in self._connections.values():
            await conn.idle.wait()
            while tasks := [t for t in (*(link.restoring for link in conn.hosts.values()),
                                        *conn.account_tasks.values(), conn.absorbing)
                           if t is not None and not t.done()]:
                await asyncio.gather(*tasks, return_exceptions=True)
        return {cid: conn.polls for cid, conn in self._connections.items()}

    async def resume(self) -> None:
        """Carry on polling after `pause`."""
        for conn in self._connections.values():
            conn.paused = False

    async def account_figures(self) -> dict[int, Any]:
        """Every account's current figures, straight from the hosts."""
        answers: list[dict[int, Any]] = await asyncio.gather(*self._figures_calls())
        slots = self._slots()
        return {login: f for answer in answers for login, f in answer.items() if login in slots}

    async def book_parts(self) -> list[BookPart]:
        """The live book as a stress test needs it, per connection: the server's symbols, the
        latest quote of each, and every live account's current snapshot (an account being
        restored or left failed is not in it: `BookPart.left_out` counts them)."""
        parts = []
        for conn in self._connections.values():
            answers: list[list[AccountSnapshot]] = await asyncio.gather(
                *(self._hosts[h].snapshots.remote(conn.key) for h in conn.hosts))
            live = {login for login, slot in conn.accounts.items() if slot.status == "live"}
            snapshots = tuple(s for answer in answers for s in answer if s.login in live)
            parts.append(BookPart(conn.spec.connection_id, dict(conn.specs), dict(conn.last_quotes),
                                  snapshots, left_out=len(conn.accounts) - len(snapshots)))
        return parts

    async def account_part(self, login: int) -> BookPart | None:
        """One account as it stands now, with its server's symbols and latest quotes (the what-if
        calculator loads it); None when this tenant has no such login. An account being restored
        is taken from its checkpoint."""
        found = self._find(login)
        if found is None:
            return None
        conn, slot = found
        snapshot: AccountSnapshot | None = None
        if slot.status == "live":
            snapshot = await self._hosts[slot.host].account_snapshot.remote(login, conn.key)
        if snapshot is None:
            actor = AccountActor.from_parts(unpickle_parts(slot.checkpoint.blob)[login], conn.specs)
            snapshot = actor.state.snapshot()
        return BookPart(conn.spec.connection_id, dict(conn.specs), dict(conn.last_quotes), (snapshot,))

    async def account_detail(self, login: int) -> AccountDetail | None:
        """One account's figures and positions; None when this tenant has no such account. An
        account being restored (or given up) shows its checkpoint's figures with its status."""
        found = self._find(login)
        if found is None:
            return None
        _conn, slot = found
        if slot.status == "live":
            detail: AccountDetail | None = await self._hosts[slot.host].detail.remote(login, _conn.key)
            if detail is not None:
                return detail
        actor = AccountActor.from_parts(unpickle_parts(slot.checkpoint.blob)[login], _conn.specs)
        status = slot.status if slot.status != "live" else "recovering"
        return dataclasses.replace(actor.detail(), status=status)

    async def desk_info(self, logins: bool = True) -> dict[str, Any]:
        """What the dealer's desk needs of the connections (`veles.services.desk`): per
        connection, its accounts' logins (unless `logins` is False: the dashboard's badges, each
        second, need none) and the wall-clock time its newest quote and deal arrived;
        per symbol any connection lists, its base and profit currencies (net exposure by currency)."""
        currencies: dict[str, tuple[str, str]] = {}
        for conn in self._connections.values():
            for name, spec in conn.specs.items():
                currencies.setdefault(name, (getattr(spec, "base_currency", "") or "",
                                             getattr(spec, "profit_currency", "") or ""))
        return {
            "now": time.time(),
            "connections": [
                {"connection_id": cid, "logins": sorted(c.accounts) if logins else [],
                 "accounts": len(c.accounts), "quote_at": c.quote_at, "deal_at": c.deal_at}
                for cid, c in self._connections.items()
            ],
            "currencies": currencies,
        }

    def _find(self, login: int) -> tuple[Connection, AccountSlot] | None:
        for conn in self._connections.values():
            slot = conn.accounts.get(login)
            if slot is not None:
                return conn, slot
        return None

    async def host_pids(self) -> dict[int, int]:
        """The process of each account host that answers (one being restarted is left out)."""
        pids: list[Any] = await asyncio.gather(*(host.pid.remote() for host in self._hosts),
                                               return_exceptions=True)
        return {index: pid for index, pid in enumerate(pids) if isinstance(pid, int)}

    async def host_nodes(self) -> dict[int, str]:
        """The Ray node each host that answers runs on, by host index (multi-node placement)."""
        nodes: list[Any] = await asyncio.gather(*(host.node.remote() for host in self._hosts),
                                                return_exceptions=True)
        return {index: node for index, node in enumerate(nodes) if isinstance(node, str)}

    async def placement(self) -> dict[int, int]:
        """Each account's host, by login (the shard map's answer)."""
        return {login: slot.host for login, slot in self._slots().items()}

    async def inject_failure(self, login: int, steps: int = 1, survive_snapshot: bool = False) -> bool:
        """Make an account's next `steps` steps raise in its host (failure drills and tests; see
        `HostCore.inject_failure`)."""
        found = self._find(login)
        if found is None:
            return False
        host = self._hosts[found[1].host]
        injected: bool = await host.inject_failure.remote(login, steps, survive_snapshot)
        return injected

    async def pid(self) -> int:
        """The supervisor's own process (failure tests kill it)."""
        return os.getpid()

    async def status(self) -> dict[str, Any]:
        """What an operator needs: per connection, progress, merges, rejections and restarts."""
        return {
            "tenant_id": self.tenant_id,
            "plan": self._plan,
            "running": self._running,
            "reconstructed": self._reconstructed,
            "incarnation": self._incarnation,  # changes when the supervisor is started again
            "refused_connections": dict(self._refused),
            "stored_connections": {cid: feed.view() for cid, feed in self._feeds.items()},
            "uptime_s": round(time.time() - self._started, 1),
            "aggregator_restarts": dict(self._aggregator_restarts),
            "aggregator_failed": self._aggregator_failed,
            "hosts": len(self._hosts),
            "hosts_moved": self._hosts.moved,
            "connections": [
                {
                    "connection_id": cid,
                    "accounts": len(c.accounts),
                    "polls": c.polls,
                    "batches": c.batches,
                    "account_calls": c.account_calls,
                    "deals": c.deals,
                    "merged_batches": c.merged,
                    "host_calls": c.host_calls,
                    "hosts": len(c.hosts),
                    "hosts_recovering": sum(link.recovering and not link.failed for link in c.hosts.values()),
                    "hosts_late": sum(link.late is not None for link in c.hosts.values()),
                    "late_answers": c.late_answers,
                    "hosts_failed": {h: link.failed for h, link in c.hosts.items() if link.failed},
                    "recovering": c.count("recovering"),
                    "failed": c.count("failed"),
                    "recovering_logins": [lg for lg, s in c.accounts.items() if s.status == "recovering"][
                        :SHOWN_ACCOUNTS],
                    "failed_accounts": {lg: s.error for lg, s in c.accounts.items() if s.status == "failed"},
                    "resnapshots": c.resnapshots,
                    "log": len(c.log),
                    "gateway_cpu_s": round(c.gateway_cpu_s, 3),
                    # a gateway with its own state (the Web API's: live, reconnecting, failed...)
                    "gateway": c.gateway.view() if hasattr(c.gateway, "view") else None,
                    "rejected": dict(c.rejected),
                    "restarts": dict(c.restarts),
                    "recent_errors": list(c.recent_errors),
                    "recoveries": list(c.recoveries),
                    "reconciliation": c.reconciliation.view() if c.reconciliation is not None else None,
                }
                for cid, c in self._connections.items()
            ],
        }

    async def stop(self) -> None:
        """Stop pumping and kill this tenant's children (the supervisor itself is killed by its owner)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        for conn in self._connections.values():
            for task in conn.account_tasks.values():
                task.cancel()
            if conn.reconciling is not None:
                conn.reconciling.cancel()
            if conn.server_figures is not None:
                await asyncio.to_thread(conn.server_figures.close)
            conn.gateway.close()
        if self._shared:  # other tenants' accounts live on them too: take only this tenant's out
            await asyncio.gather(*(self._hosts[h].close.remote(conn.key)
                                   for conn in self._connections.values() for h in conn.hosts),
                                 return_exceptions=True)
        else:
            for host in self._hosts:
                ray.kill(host)
        self._hosts.clear()
        self._shard_map = None
        self._connections.clear()
        for cid in self._feeds:  # their refusals are re-decided when they are fed again
            self._refused.pop(cid, None)
        self._feeds.clear()
        self._background = False
        if self._aggregator is not None:
            await self._kill_aggregator(self._aggregator)
            self._aggregator = None
        self._aggregator_failed = None
        self._running = False


@ray.remote(num_cpus=0, max_restarts=-1, runtime_env=death_notice.RUNTIME_ENV)
class TenantSupervisor(Supervisor):
    """A tenant's supervisor as a Ray actor process of its own, its aggregator a named, detached
    Ray actor process beside it (one tenant per process: see `actors/tenant_host.py` for many)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As `Supervisor`; whether Ray restarted this process after it died is Ray's to say."""
        kwargs["reconstructed"] = ray.get_runtime_context().was_current_actor_reconstructed
        super().__init__(*args, **kwargs)

    def _new_aggregator(self) -> ActorHandle:
        return RiskAggregator.options(  # type: ignore[attr-defined]
            name=aggregator_name(self.tenant_id), lifetime="detached", get_if_exists=True
        ).remote(self.tenant_id, self._publish_hz, self._redis_url, self._database_url)

    async def _kill_aggregator(self, aggregator: Any) -> None:
        """A killed aggregator process cannot delete its own stats key: this does (stopped on
        purpose, not a stalled engine)."""
        ray.kill(aggregator)
        if self._redis_url:
            await engine_stats.forget(self._redis_url, engine_prefix(self._database_url), self.tenant_id)

    def _end_self(self) -> None:
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
