"""TenantSupervisor: one per tenant. Owns the tenant's MT5 connections and its actors.

For each connection it opens the gateway inside this process, starts one MT5AccountActor per
trading account and keeps a symbol → accounts index, so a price batch calls only the accounts
that hold (or convert through) a changed symbol. It polls each gateway at a fixed pace; when the
fan-out falls behind, the due polls are merged (quotes latest-wins, deals all kept, in order), so
at most one batch per connection is ever queued.

Price path. A connection's accounts are cut into partitions (`actors/partition.py`), each fed by
one Ray compiled graph: a batch is one graph execution per partition that has work, not one Ray
call per account. A connection of fewer than GRAPH_MIN_ACCOUNTS accounts uses plain calls only
(idle actors in a graph cost more CPU than plain calls at that size). A partition whose graph
breaks (one of its actors died) falls back to plain calls, restores the accounts that may or may
not have applied the failed batch, and has its graph torn down and recompiled in the background;
the other partitions keep their graphs throughout.
Deals travel in the same steps as prices, so per account they stay in order whichever way a step
goes, and every step is in the account's log until a checkpoint covers it.

Supervision. Each account has a checkpoint (its pickled state, refreshed every
`CHECKPOINT_EVERY` batches) and the log of batches sent since. An account whose call fails (its
process died) or that reports a restart is restored in the background from checkpoint + log while
the others carry on; batches that arrive meanwhile join its log. A dead aggregator is restarted
by Ray and rebuilt from the accounts' figures. A dead supervisor is restarted by Ray, starts
itself again and re-attaches to its (detached, named) children, re-synchronising each from the
gateway's current snapshot. Every restart is counted by cause and logged.

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
import logging
import math
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.actor import ActorHandle
from tenacity import AsyncRetrying, RetryCallState, retry_if_not_exception_type, wait_exponential, wait_random

from actors.alert_store import RuleSet
from actors.feeds import FeedStore, StoredFeed
from actors.mt5_account import AccountDetail, AccountHost, AccountUpdate, MT5AccountActor, Step
from actors.names import account_name, aggregator_name
from actors.partition import Partition, compile_graph, execute, partition, teardown
from actors.risk_aggregator import RiskAggregator
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import Gateway, GatewayError
from veles.plans import PlanLimitExceeded, check_usage
from veles.risk.events import Batch, Deal, Quote, merge_batches

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

# Ray's ways of saying an actor died or is being restarted.
_ACTOR_GONE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
CHECKPOINT_EVERY = 20  # batches between an account's checkpoints: bounds its replay log
RECENT_ERRORS = 20
# Connections smaller than this stay on plain calls. An actor parked in a compiled graph spends
# 13-16% of a core waiting on its channel even when no batch comes (README, "Measured"), while a
# plain call costs ~10 ms of CPU: at 4 batches/s that is ~4% of a core per account. Graphs pay
# off where plain calls cannot keep up (near 40 accounts per 2 cores at 4 batches/s).
GRAPH_MIN_ACCOUNTS = 30
COMPILE_ATTEMPTS = 5  # then the partition stays on plain calls (slower, still correct)
GRAPH_THREADS = 32  # blocking compiled-graph calls run here, off the event loop
SYNC_EVERY_S = 10.0  # stored connections are re-read this often (changes also arrive at once)
STATS_EVERY_S = 2.0  # actor counts and restarts handed to the aggregator for /metrics
RETRY_MIN_S, RETRY_MAX_S = 1.0, 300.0  # backoff between attempts to open a failing connection
CLOSE_WAIT_S = 30.0  # for a removed connection's batch in flight


@dataclass
class AccountSlot:
    """The supervisor's side of one account: its actor, last checkpoint and the batches since."""

    handle: ActorHandle
    checkpoint: bytes
    log: list[Step] = field(default_factory=list)
    restoring: asyncio.Task[None] | None = None

    @property
    def recovering(self) -> bool:
        """Whether a restore is under way (batches meanwhile only join the log)."""
        return self.restoring is not None and not self.restoring.done()


@dataclass
class Connection:
    """Live state of one MT5 connection inside the supervisor."""

    spec: GatewaySpec
    gateway: Gateway
    symbols: frozenset[str]
    accounts: dict[int, AccountSlot] = field(default_factory=dict)
    partitions: list[Partition] = field(default_factory=list)
    partition_of: dict[int, Partition] = field(default_factory=dict)
    index: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    needs: dict[int, frozenset[str]] = field(default_factory=dict)
    last_quotes: dict[str, Quote] = field(default_factory=dict)
    polls: int = 0
    batches: int = 0
    account_calls: int = 0
    deals: int = 0
    merged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    recent_errors: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))
    paused: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def reindex(self, login: int, needed: frozenset[str]) -> None:
        """Point the symbol index at what the account depends on now."""
        old = self.needs.get(login, frozenset())
        if old == needed:
            return
        for symbol in old - needed:
            self.index[symbol].discard(login)
        for symbol in needed - old:
            self.index[symbol].add(login)
        self.needs[login] = needed

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


@ray.remote(num_cpus=0, max_restarts=-1)
class TenantSupervisor:
    """Supervises one tenant's gateways, account actors and aggregator."""

    def __init__(
        self,
        tenant_id: int,
        gateways: list[GatewaySpec],
        publish_hz: float,
        redis_url: str | None,
        plan: str = "enterprise",
        database_url: str | None = None,
        store: FeedStore | None = None,
        graph_min_accounts: int = GRAPH_MIN_ACCOUNTS,
    ) -> None:
        """`gateways` are fed as given (the demo's simulated broker); `store`, when given, supplies
        the tenant's stored connections, read at start, on `sync_connections` and every
        SYNC_EVERY_S. A connection of fewer than `graph_min_accounts` accounts is fed by plain
        calls, a larger one by compiled graphs (see GRAPH_MIN_ACCOUNTS)."""
        self.tenant_id = tenant_id
        self._graph_min_accounts = graph_min_accounts
        self._store = store
        self._feeds: dict[str, Feed] = {}
        self._sync_lock = asyncio.Lock()
        self._background = False  # the sync and stats loops run
        self._database_url = database_url
        self._rules: RuleSet | None = None  # pushed by set_rules; re-sent to a rebuilt aggregator
        self._plan = plan
        self._refused: dict[str, str] = {}  # connection id -> why it was refused (plan, logins)
        self._opening: dict[str, set[int]] = {}  # logins of connections being opened
        self._specs = gateways
        self._publish_hz = publish_hz
        self._redis_url = redis_url
        self._connections: dict[str, Connection] = {}
        self._aggregator: ActorHandle | None = None
        self._aggregator_restarts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool = ThreadPoolExecutor(GRAPH_THREADS, thread_name_prefix="graph")
        self._start_lock = asyncio.Lock()
        self._started = time.time()
        self._running = False
        self._reconstructed = ray.get_runtime_context().was_current_actor_reconstructed
        if self._reconstructed:
            # Ray restarted this supervisor after its process died: nobody will call start(), so
            # start again at once and re-attach to the children that outlived the old process.
            log.warning("tenant %s: supervisor restarted by Ray; re-attaching to its actors", tenant_id)
            self._spawn(self.start())

    async def start(self) -> dict[str, Any]:
        """Open every connection, start (or re-attach to) the actors and the pumps; returns `status()`.

        Attaching to actors that outlived a previous supervisor re-synchronises each of them
        from the gateway's current account snapshot, the source of truth. Serialised: a restarted
        supervisor starts itself while its owner may be calling start() too.
        """
        async with self._start_lock:
            await self._start_all()
        return await self.status()

    async def _start_all(self) -> None:
        if self._aggregator is None:
            self._aggregator = RiskAggregator.options(  # type: ignore[attr-defined]
                name=aggregator_name(self.tenant_id), lifetime="detached", get_if_exists=True
            ).remote(self.tenant_id, self._publish_hz, self._redis_url, self._database_url)
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
            wait=wait_exponential(multiplier=RETRY_MIN_S, max=RETRY_MAX_S) + wait_random(0, RETRY_MIN_S),
            before_sleep=failed,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    feed.settled.clear()
                    try:
                        feed.conn = await self._open(spec)
                        self._connections[spec.connection_id] = feed.conn
                    finally:
                        feed.settled.set()
        except REFUSALS as exc:
            feed.state, feed.error = "refused", str(exc)
            self._refused[spec.connection_id] = str(exc)
            log.warning("tenant %s: %s refused: %s", self.tenant_id, spec.connection_id, exc)
            await self._report(store.failed, stored, f"Refused: {exc}.")
            return
        assert feed.conn is not None
        feed.state, feed.error, feed.retry_in_s = "running", None, None
        self._refused.pop(spec.connection_id, None)
        await self._report(store.connected, stored, feed.conn.gateway.accounts())
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
        """Tear down a closed connection: restores, graphs, gateway, account actors, book rows."""
        restoring = [slot.restoring for slot in conn.accounts.values() if slot.restoring is not None]
        for task in restoring:
            task.cancel()
        await asyncio.gather(*restoring, return_exceptions=True)
        graphs = [p.graph for p in conn.partitions if p.graph is not None]
        await asyncio.gather(*(self._blocking(teardown, graph) for graph in graphs), return_exceptions=True)
        conn.gateway.close()
        for slot in conn.accounts.values():
            ray.kill(slot.handle)
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

    async def _send_stats(self) -> None:
        """Hand the aggregator what only the supervisor knows (actors alive, restarts), so the
        tenant's engine metrics come from one place."""
        if self._aggregator is None:
            return
        slots = self._slots().values()
        restarts: Counter[str] = Counter(self._aggregator_restarts)
        for conn in self._connections.values():
            restarts.update(conn.restarts)
        await self._aggregator.set_engine_stats.remote({
            "account_actors": len(slots),
            "recovering": sum(slot.recovering for slot in slots),
            "connections": len(self._connections),
            "restarts": dict(restarts),
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

    async def _open(self, spec: GatewaySpec) -> Connection:
        try:
            return await self._open_connection(spec)
        finally:
            self._opening.pop(spec.connection_id, None)  # open now (its accounts hold them) or not

    async def _open_connection(self, spec: GatewaySpec) -> Connection:
        # a real connector waits on the network, the simulator warms up: neither on the loop
        gateway = await asyncio.to_thread(open_gateway, spec)
        # the first batch carries the current prices every account needs to value its positions
        first = gateway.poll()
        snapshots = gateway.accounts()
        try:
            check_usage(
                self._plan,
                servers=len(self._connections) + 1,
                accounts=sum(len(c.accounts) for c in self._connections.values()) + len(snapshots),
            )
            self._check_logins_free(spec.connection_id, [snapshot.login for snapshot in snapshots])
        except REFUSALS:
            gateway.close()
            raise
        symbols = {s.name: s for s in gateway.symbols()}
        conn = Connection(spec=spec, gateway=gateway, symbols=frozenset(symbols))
        conn.polls = 1
        conn.last_quotes.update({q.symbol: q for q in conn.valid_quotes(first.quotes)})
        for snapshot in snapshots:
            checkpoint = AccountHost(snapshot, symbols, conn.last_quotes).checkpoint()
            handle = MT5AccountActor.options(  # type: ignore[attr-defined]
                name=account_name(self.tenant_id, spec.connection_id, snapshot.login),
                lifetime="detached",
                get_if_exists=True,
            ).remote(snapshot, symbols, dict(conn.last_quotes))
            conn.accounts[snapshot.login] = AccountSlot(handle=handle, checkpoint=checkpoint)
        updates: list[AccountUpdate] = await asyncio.gather(
            *(slot.handle.resync.remote(slot.checkpoint) for slot in conn.accounts.values())
        )
        for update in updates:
            assert update.checkpoint is not None
            conn.accounts[update.login].checkpoint = update.checkpoint
        await self._absorb(conn, updates, first.sent_at)
        # actors that outlived a previous supervisor may still sit in its compiled graphs
        await asyncio.gather(*(slot.handle.leave_graphs.remote() for slot in conn.accounts.values()))
        conn.partitions = partition(list(conn.accounts))
        conn.partition_of = {login: part for part in conn.partitions for login in part.logins}
        if len(conn.accounts) >= self._graph_min_accounts:
            for part in conn.partitions:  # one at a time: compiles contend for the same cores
                await self._compile(conn, part)
        log.info("tenant %s: connection %s open, %d accounts in %d partitions", self.tenant_id,
                 spec.connection_id, len(conn.accounts), len(conn.partitions))
        return conn

    def _check_logins_free(self, connection_id: str, logins: list[int]) -> None:
        """Raise LoginsTaken if another connection, open or opening, already holds any of
        `logins`; else hold them for `connection_id` while it opens (two connections opening at
        once must not both pass)."""
        held = {cid: set(conn.accounts) for cid, conn in self._connections.items()} | self._opening
        for cid, other in held.items():
            if cid != connection_id and (taken := sorted(other & set(logins))):
                raise LoginsTaken(taken, cid)
        self._opening[connection_id] = set(logins)

    async def _blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking compiled-graph call in the supervisor's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    async def _compile(self, conn: Connection, part: Partition) -> None:
        """Give a partition its compiled graph; it stays on plain calls if that keeps failing."""
        delay = 0.5
        for _ in range(COMPILE_ATTEMPTS):
            try:
                handles = [conn.accounts[login].handle for login in part.logins]
                part.graph = await self._blocking(compile_graph, handles)
            except Exception as exc:  # an actor died meanwhile, or Ray refused: retry, then give up
                conn.recent_errors.append(f"compile {part.logins[0]}..: {type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay *= 2
            else:
                part.compiles += 1
                return
        log.warning("tenant %s: partition from %s left on plain calls", self.tenant_id, part.logins[0])

    async def _pump(self, conn: Connection) -> None:
        interval = conn.spec.interval
        next_at = time.monotonic()
        while True:
            if conn.paused:
                conn.idle.set()
                await asyncio.sleep(interval)
                next_at = time.monotonic()
                continue
            due = 1 + max(0, int((time.monotonic() - next_at) / interval))
            if not conn.spec.merge_when_behind:
                due = 1
            next_at += due * interval
            batches = []
            for _ in range(due):
                try:
                    batches.append(conn.gateway.poll())
                except GatewayError as exc:
                    conn.reject("gateway_error", str(exc))
                conn.polls += 1
            if batches:
                conn.merged += len(batches) - 1
                try:
                    await self._dispatch(conn, merge_batches(batches))
                except Exception as exc:  # one bad batch must not stop the tenant
                    conn.reject("batch_error", f"{type(exc).__name__}: {exc}")
                    log.exception("tenant %s: batch failed on %s", self.tenant_id, conn.spec.connection_id)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _dispatch(self, conn: Connection, batch: Batch) -> None:
        quotes: defaultdict[int, list[Quote]] = defaultdict(list)
        for quote in conn.valid_quotes(batch.quotes):
            conn.last_quotes[quote.symbol] = quote
            for login in conn.index.get(quote.symbol, ()):
                quotes[login].append(quote)
        deals: defaultdict[int, list[Deal]] = defaultdict(list)
        for deal in batch.deals:
            if deal.login in conn.accounts:
                deals[deal.login].append(deal)
            else:
                conn.reject("unknown_login", f"deal {deal.ticket} for login {deal.login}")
        board = tuple(conn.last_quotes.values()) if deals else ()
        calls: list[tuple[int, Any]] = []
        by_graph: defaultdict[Partition, dict[int, tuple[Step, bool]]] = defaultdict(dict)
        for login in quotes.keys() | deals.keys():
            slot = conn.accounts[login]
            own_deals = tuple(deals.get(login, ()))
            step = Step(tuple(quotes.get(login, ())), own_deals, board if own_deals else ())
            slot.log.append(step)
            if slot.recovering:
                continue
            checkpoint = len(slot.log) >= CHECKPOINT_EVERY
            part = conn.partition_of[login]
            if part.graph is not None:
                by_graph[part][login] = (step, checkpoint)
            else:
                calls.append((login, slot.handle.apply.remote(step, checkpoint)))
        runs = [(part, steps, self._blocking(execute, part.graph, steps)) for part, steps in by_graph.items()]
        conn.account_calls += len(calls) + sum(len(steps) for _, steps, _ in runs)
        results = await asyncio.gather(*(ref for _, ref in calls), return_exceptions=True)
        answers = await asyncio.gather(*(run for _, _, run in runs), return_exceptions=True)
        updates: list[AccountUpdate] = []
        for (login, _), result in zip(calls, results, strict=True):
            self._take(conn, login, result, updates)
        for (part, steps, _), answer in zip(runs, answers, strict=True):
            if isinstance(answer, BaseException):
                self._partition_failed(conn, part, steps, answer)
                continue
            for login, result in zip(part.logins, answer, strict=True):
                if login in steps:
                    self._take(conn, login, result, updates)
        conn.batches += 1
        conn.deals += len(batch.deals)
        await self._absorb(conn, updates, batch.sent_at)

    def _take(self, conn: Connection, login: int, result: AccountUpdate | BaseException | None,
              updates: list[AccountUpdate]) -> None:
        """One account's answer to a step: keep its update and checkpoint, or restore it."""
        if isinstance(result, BaseException):
            self._recover(conn, login, type(result).__name__)
        elif result is None or result.needs_restore:
            self._recover(conn, login, "restarted")
        else:
            if result.checkpoint is not None:
                slot = conn.accounts[login]
                slot.checkpoint = result.checkpoint
                slot.log.clear()
            updates.append(result)

    def _partition_failed(self, conn: Connection, part: Partition, steps: dict[int, Any],
                          error: BaseException) -> None:
        """A graph broke mid-batch: its accounts go to plain calls, the ones that had a step are
        restored from checkpoint + log (which holds that step) since nobody knows whether they
        applied it, and the graph is rebuilt in the background."""
        graph, part.graph = part.graph, None
        part.failures += 1
        conn.recent_errors.append(f"graph {part.logins[0]}..: {type(error).__name__}")
        log.warning("tenant %s: compiled graph of partition from %s failed (%s); plain calls meanwhile",
                    self.tenant_id, part.logins[0], type(error).__name__)
        for login in steps:
            self._recover(conn, login, None)
        self._spawn(self._rebuild(conn, part, graph))

    async def _rebuild(self, conn: Connection, part: Partition, graph: Any) -> None:
        """Tear the broken graph down, wait for its accounts' restores, compile a new one."""
        await self._blocking(teardown, graph)
        while restoring := [
            slot.restoring for login in part.logins
            if (slot := conn.accounts[login]).restoring is not None and slot.recovering
        ]:
            await asyncio.wait(restoring)
        await self._compile(conn, part)

    def _recover(self, conn: Connection, login: int, cause: str | None) -> None:
        """Restore an account in the background. `cause` None: it may be alive (its graph broke);
        the restore counts a restart only if it finds the actor restarted."""
        slot = conn.accounts[login]
        if slot.recovering:
            return
        if cause is not None:
            conn.restarts[cause] += 1
            log.warning("tenant %s: account %s on %s failed (%s); restoring", self.tenant_id, login,
                        conn.spec.connection_id, cause)
        slot.restoring = asyncio.create_task(self._restore(conn, login, counted=cause is not None))
        self._tasks.add(slot.restoring)
        slot.restoring.add_done_callback(self._tasks.discard)

    async def _restore(self, conn: Connection, login: int, counted: bool) -> None:
        """Restore an account from its checkpoint and log, until no batch is left unapplied.

        Batches that arrive during a restore join the log and are replayed by the next round.
        Nothing may be awaited between finding the log empty and returning: `recovering` turns
        false exactly when this task ends, and from then on batches are sent, not logged.
        """
        slot = conn.accounts[login]
        delay = 0.1
        while True:
            sent = len(slot.log)
            try:
                update: AccountUpdate = await slot.handle.restore.remote(slot.checkpoint, list(slot.log))
            except Exception as exc:  # died again while restarting: wait for Ray, then retry
                conn.recent_errors.append(f"restore {login}: {type(exc).__name__}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            assert update.checkpoint is not None
            if update.restarted and not counted:
                conn.restarts["actor_died"] += 1
                counted = True
                log.warning("tenant %s: account %s on %s had died; restoring", self.tenant_id, login,
                            conn.spec.connection_id)
            slot.checkpoint = update.checkpoint
            del slot.log[:sent]
            await self._absorb(conn, [update], time.time())
            if not slot.log:
                log.info("tenant %s: account %s restored", self.tenant_id, login)
                return

    async def _absorb(self, conn: Connection, updates: list[AccountUpdate], sent_at: float) -> None:
        figures = []
        deals: list[Deal] = []
        for update in updates:
            conn.reindex(update.login, update.symbols_needed)
            for reason in update.rejected:
                conn.reject("account_rejected", f"{update.login} {reason}")
            if update.figures is not None:
                figures.append(update.figures)
            deals.extend(update.deals)
        if figures and self._aggregator is not None:
            try:
                await self._aggregator.apply.remote(figures, sent_at, deals)
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
        delay = 0.1
        while True:
            try:
                await self._start_aggregator()
                slots = [slot for slot in self._slots().values() if not slot.recovering]
                figures = await asyncio.gather(
                    *(slot.handle.figures.remote() for slot in slots), return_exceptions=True
                )
                good = [f for f in figures if not isinstance(f, BaseException)]
                await self._aggregator.apply.remote(good, time.time())
                return
            except _ACTOR_GONE:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _slots(self) -> dict[int, AccountSlot]:
        """Every account of every connection, by login."""
        return {login: slot for conn in self._connections.values() for login, slot in conn.accounts.items()}

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
            await asyncio.gather(*(s.restoring for s in conn.accounts.values() if s.restoring is not None))
        return {cid: conn.polls for cid, conn in self._connections.items()}

    async def resume(self) -> None:
        """Carry on polling after `pause`."""
        for conn in self._connections.values():
            conn.paused = False

    async def account_figures(self) -> dict[int, Any]:
        """Every account's current figures, straight from the account actors."""
        slots = self._slots()
        figures: list[Any] = await asyncio.gather(*(slot.handle.figures.remote() for slot in slots.values()))
        return dict(zip(slots, figures, strict=True))

    async def account_detail(self, login: int) -> AccountDetail | None:
        """One account's figures and positions; None when this tenant has no such account."""
        slot = self._slots().get(login)
        if slot is None:
            return None
        detail: AccountDetail = await slot.handle.detail.remote()
        return detail

    async def account_pids(self) -> dict[int, int]:
        """The process of each account actor that answers (one being restarted is left out)."""
        slots = self._slots()
        pids = await asyncio.gather(
            *(slot.handle.pid.remote() for slot in slots.values()), return_exceptions=True
        )
        answered: dict[int, int] = {}
        for login, pid in zip(slots, pids, strict=True):
            if isinstance(pid, int):
                answered[login] = pid
        return answered

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
            "refused_connections": dict(self._refused),
            "stored_connections": {cid: feed.view() for cid, feed in self._feeds.items()},
            "uptime_s": round(time.time() - self._started, 1),
            "aggregator_restarts": dict(self._aggregator_restarts),
            "connections": [
                {
                    "connection_id": cid,
                    "accounts": len(c.accounts),
                    "polls": c.polls,
                    "batches": c.batches,
                    "account_calls": c.account_calls,
                    "deals": c.deals,
                    "merged_batches": c.merged,
                    "recovering": sum(slot.recovering for slot in c.accounts.values()),
                    "partitions": len(c.partitions),
                    "compiled_partitions": sum(p.graph is not None for p in c.partitions),
                    "graph_failures": sum(p.failures for p in c.partitions),
                    "rejected": dict(c.rejected),
                    "restarts": dict(c.restarts),
                    "recent_errors": list(c.recent_errors),
                }
                for cid, c in self._connections.items()
            ],
        }

    async def stop(self) -> None:
        """Stop pumping and kill this tenant's children (the supervisor itself is killed by its owner)."""
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        graphs = [p.graph for c in self._connections.values() for p in c.partitions if p.graph is not None]
        await asyncio.gather(*(self._blocking(teardown, graph) for graph in graphs))
        for conn in self._connections.values():
            conn.gateway.close()
            for slot in conn.accounts.values():
                ray.kill(slot.handle)
        self._connections.clear()
        for cid in self._feeds:  # their refusals are re-decided when they are fed again
            self._refused.pop(cid, None)
        self._feeds.clear()
        self._background = False
        if self._aggregator is not None:
            ray.kill(self._aggregator)
            self._aggregator = None
        self._running = False
