"""The web tier's live view of each tenant's book.

One `LiveFeed` per web process keeps a replica of each watched tenant's book (totals and every
account row) and tells that process's browser sessions when it changed, through an in-process
`LocalBus`. Each session then reads only the slice it shows (its page of accounts, in its sort
order), so per-session state stays small however large the book.

The replica is fed from the tenant's RiskAggregator: over Redis pub/sub when REDIS_URL is set,
otherwise by long-polling the aggregator over Ray. Diffs carry versions; a replica that sees a
gap (a missed message, a restarted aggregator) reloads the full snapshot. A tenant with no
aggregator (no connection: its engine is not running) has an empty, unpublished replica.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from actors.mt5_account import AccountDetail
from actors.tenant_directory import find
from actors.tenant_host import TenantNotHosted
from actors.wire import Row, alert_topic, book_message_problem, book_topic, book_totals
from veles.bus import LocalBus, RedisBus
from veles.config import Settings, get_settings
from veles.risk.book import BookFigures
from veles.services.alert_inbox import AlertInbox
from veles.services.alert_order import AlertSequencer, stored_since
from veles.services.engine_metrics import count_push
from veles.services.feed_retry import ALERT_TOPIC, BOOK, GIVE_UP_S, Health, follow
from veles.services.ray_runtime import join, tenant_actor

log = logging.getLogger(__name__)

# Seconds a tenant stays followed after its last watcher left (a reload, the next API read).
IDLE_S = 60.0
_GAP_CHECK_S = 0.5  # how often an idle alert stream looks whether a gap has waited long enough



@dataclass
class TenantReplica:
    """A tenant's book as last published: totals, every account row, and when it left the engine."""

    epoch: int = 0
    version: int = -1
    totals: Row = field(default_factory=dict)
    rows: dict[int, Row] = field(default_factory=dict)
    sent_at: float = 0.0
    published_at: float = 0.0

    def apply(self, message: Row) -> bool:
        """Merge a snapshot or the next diff; False on a gap or a restarted aggregator (the
        caller must reload a snapshot)."""
        if message["full"]:
            self.rows = {row["login"]: row for row in message["accounts"]}
            self.epoch = message["epoch"]
        elif message["epoch"] != self.epoch or message["version"] > self.version + 1:
            return False
        elif message["version"] <= self.version:
            return True  # already seen (a late duplicate): nothing to do
        else:
            for row in message["accounts"]:
                self.rows[row["login"]] = row
        self.version = message["version"]
        self.totals = message["totals"]
        self.sent_at = message["sent_at"]
        self.published_at = message["published_at"]
        return True

    def clear(self) -> None:
        """Forget the book: the tenant runs no engine (it has no connection, or its last one was
        removed), so nothing is published and the last rows must not linger as if live."""
        self.epoch, self.version, self.totals, self.rows = 0, -1, {}, {}
        self.sent_at = self.published_at = 0.0

    def page(
        self, sort: str = "login", descending: bool = False, offset: int = 0, limit: int | None = 50,
        query: str = "", state: str = "", label: str = "", servers: Mapping[str, str] | None = None,
    ) -> tuple[list[Row], int]:
        """One page of account rows (every matching row when `limit` is None) and the number of
        rows that match `query` (login, or part of the group, client name, country or server),
        `state` (margin state, "" for any) and carry the toxic-flow `label` (any of theirs; "" for
        every row). `servers` names the connections (id -> name, `connection_names`) as a screen
        shows them: the server is then matched and sorted by its name, not its id."""
        rows = list(self.rows.values())
        servers = servers or {}

        def value(row: Row, key: str) -> Any:
            found = row.get(key)
            return servers.get(found, found) if key == "server" and isinstance(found, str) else found

        if state:
            rows = [r for r in rows if r["state"] == state]
        if label:
            rows = [r for r in rows if label in str(r.get("flow_labels", "ordinary")).split(",")]
        if query:
            q = query.strip().lower()
            searched = ("group", "name", "country", "server")
            rows = [r for r in rows if q in str(r["login"])
                    or any(q in str(value(r, k) or "").lower() for k in searched)]

        def key(row: Row) -> tuple[bool, Any]:
            found = value(row, sort)
            missing = found is None or (isinstance(found, float) and math.isnan(found))
            return (missing != descending, found if not missing else 0)

        rows.sort(key=key, reverse=descending)
        return rows[offset : None if limit is None else offset + limit], len(rows)


def empty_replica() -> TenantReplica:
    """The book of a tenant that stores no MT5 connection: no accounts and zero totals, in the shape
    the engine publishes, so clients read "nothing to risk yet" rather than an error."""
    nothing = BookFigures(accounts=0, balance=0.0, credit=0.0, equity=0.0, profit=0.0, margin=0.0,
                          free_margin=0.0, exposure=(), margin_call=(), stop_out=(), top_risky=())
    return TenantReplica(version=0, totals=book_totals(nothing))


class LiveFeed:
    """Per-process registry of tenant replicas and the tasks that keep them current.

    A tenant is followed only while something in this process watches it: when its last watcher
    leaves (the last tab on its live pages closed, the followers let it go), the follow task and
    the replica are dropped after `idle_s`, which a reload or the next API read within that time
    does not notice. Before, a web process followed every tenant it had ever shown until it was
    restarted, each with a task, a Redis subscription and a copy of the book."""

    def __init__(self, settings: Settings, aggregator: Callable[[int], Any] | None = None,
                 idle_s: float = IDLE_S, give_up_s: float = GIVE_UP_S) -> None:
        self._settings = settings
        self._give_up_s = give_up_s  # a follower failing this long ends (`feed_retry`)
        self._bus = LocalBus()
        self._replicas: dict[int, TenantReplica] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._watchers: Counter[int] = Counter()
        self._letting_go: dict[int, asyncio.TimerHandle] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._idle_s = idle_s
        self._aggregator = aggregator or self._lookup_aggregator
        # Per followed tenant: set once its follower's first look for the aggregator came back
        # (a book loaded, no engine, or the engine out of reach), so a reader knows what is known.
        self._looked: dict[int, asyncio.Event] = {}
        self.malformed = 0  # messages on a book topic skipped as junk (`book_message_problem`)

    def replica(self, tenant_id: int) -> TenantReplica:
        """The tenant's replica (empty until the first snapshot arrives, and for a tenant this
        process does not follow: `watch` starts following it). Reading a replica nobody watches
        puts off letting it go by another `idle_s` (an API client reading the book every second)."""
        if tenant_id in self._letting_go:
            self._letting_go.pop(tenant_id).cancel()
            self._schedule_let_go(tenant_id)
        return self._replicas.get(tenant_id) or TenantReplica()

    async def published(self, tenant_id: int, timeout: float) -> TenantReplica | None:
        """The tenant's replica once it holds a published book, or None as soon as this process
        knows there is none to have: the first look for the tenant's aggregator found none (it
        runs no engine) or could not reach the engine. Follows the tenant if nobody here does yet
        and waits for that first look only, never for a book that is not coming; `timeout` bounds
        a look that hangs. An API read: it holds the tenant like a watcher for that while."""
        replica = self.replica(tenant_id)
        if replica.version >= 0:
            return replica
        self._hold(tenant_id)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._looked[tenant_id].wait(), timeout)
        finally:
            self._release(tenant_id)
        replica = self._replicas.get(tenant_id) or TenantReplica()
        return replica if replica.version >= 0 else None

    def followed(self) -> list[int]:
        """The tenants this process follows now (health pages and tests)."""
        return sorted(self._tasks)

    async def watch(self, tenant_id: int) -> AsyncIterator[TenantReplica]:
        """The replica each time it changes (latest-wins: a slow session skips versions)."""
        self._hold(tenant_id)
        try:
            replica = self._replicas.setdefault(tenant_id, TenantReplica())
            subscription = self._bus.subscribe(book_topic(tenant_id))
            try:
                if replica.version >= 0:
                    count_push("browser")
                    yield replica
                async for _ in subscription:
                    count_push("browser")
                    yield replica
            finally:
                await subscription.aclose()
        finally:
            self._release(tenant_id)

    def _hold(self, tenant_id: int) -> None:
        timer = self._letting_go.pop(tenant_id, None)
        if timer is not None:
            timer.cancel()
        self._watchers[tenant_id] += 1
        task = self._tasks.get(tenant_id)
        if task is None or task.done():
            self._looked[tenant_id] = asyncio.Event()
            self._tasks[tenant_id] = asyncio.create_task(self._keep_current(tenant_id))

    def _release(self, tenant_id: int) -> None:
        self._watchers[tenant_id] -= 1
        if self._watchers[tenant_id] > 0:
            return
        del self._watchers[tenant_id]
        self._schedule_let_go(tenant_id)

    def _schedule_let_go(self, tenant_id: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a watcher finalised after its loop stopped: nothing runs any more
            self._let_go(tenant_id)
            return
        self._letting_go[tenant_id] = loop.call_later(self._idle_s, self._let_go, tenant_id)

    def _let_go(self, tenant_id: int) -> None:
        """Stop following a tenant nobody here has watched for `idle_s`, and forget its book."""
        self._letting_go.pop(tenant_id, None)
        if self._watchers[tenant_id] > 0:
            return
        self._replicas.pop(tenant_id, None)
        self._looked.pop(tenant_id, None)
        task = self._tasks.pop(tenant_id, None)
        if task is not None:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        log.info("tenant %s: no watcher for %.0f s, no longer followed", tenant_id, self._idle_s)

    async def aclose(self) -> None:
        """Stop following every tenant (server shutdown, end of a test)."""
        for timer in self._letting_go.values():
            timer.cancel()
        self._letting_go.clear()
        tasks = [*self._tasks.values(), *self._stopping]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def account_detail(self, tenant_id: int, login: int) -> AccountDetail | None:
        """One account of this tenant with its positions; None if the tenant has no such login.

        Asked of the tenant's own supervisor, so another tenant's login is simply not found.
        Joining Ray and finding the supervisor happen off the event loop and never start a cluster
        (`ray_runtime.join`): EngineUnreachable (a ConnectionError) when the engine is elsewhere
        and RAY_ADDRESS is not set. A tenant with no supervisor has no connection, so no account.
        """
        supervisor = await tenant_actor(self._settings, tenant_id, "supervisor")
        if supervisor is None:
            return None
        try:
            detail: AccountDetail | None = await supervisor.account_detail.remote(login)
        except TenantNotHosted:  # its tenant host let it go meanwhile (its last connection went)
            return None
        return detail

    async def flow_profile(self, tenant_id: int, login: int) -> dict[str, Any] | None:
        """One account's toxic-flow profile from the tenant's aggregator (its detectors run there);
        None when the account is not in the book. ValueError when the tenant runs no engine."""
        profile: dict[str, Any] | None = await (await self._handle(tenant_id)).flow_profile.remote(login)
        return profile

    async def alerts(self, tenant_id: int) -> dict[str, Any]:
        """The tenant's alerts raised now (`active`), the latest raises and clears (`recent`) and
        the last alert sequence number published (`seq`)."""
        alerts: dict[str, Any] = await (await self._handle(tenant_id)).alerts.remote()
        return alerts

    async def alert_stream(self, tenant_id: int, poll_s: float = 1.0,
                           inbox: AlertInbox | None = None) -> AsyncIterator[Row]:
        """Each alert the tenant's aggregator raises or clears, once, in sequence order.

        With Redis the alert topic brings them at once. The aggregator's recent alerts are also read
        over Ray every `poll_s` s (the only source without Redis), because the bus is latest-wins and
        can skip an alert in a storm. A new stream starts with the recent alerts the aggregator
        still holds (its first answer says from which number), so consumers must be idempotent
        (alert delivery is, by alert key). Alerts wait for a slow consumer in a bounded
        `AlertInbox` (pass one to watch its size). The two sources are merged back into the
        engine's order by `AlertSequencer`; a number still missing after its wait is filled from
        the database (`stored_since`: the alerts changed since, as `reloaded` messages).
        """
        inbox = inbox if inbox is not None else AlertInbox()
        start: list[int] = []  # where the stream starts, once the aggregator has answered
        tasks = [asyncio.create_task(self._poll_alerts(tenant_id, inbox, poll_s, start))]
        if self._settings.redis_url:
            tasks.append(asyncio.create_task(self._pump_alerts(tenant_id, inbox, self._settings.redis_url)))
        sequencer = AlertSequencer()
        try:
            while True:
                ready: list[Row] = []
                with suppress(TimeoutError):  # none came: look at the gap and the start all the same
                    # Whatever arrived (a foreign publisher's junk too) goes to the consumer, which
                    # names what is wrong with it; the stream itself must never die of a message.
                    ready = sequencer.offer(await asyncio.wait_for(inbox.get(), _GAP_CHECK_S))
                if sequencer.last is None and start:
                    ready.extend(sequencer.resync(start[0]))
                if sequencer.needs_reload():
                    ready.extend(await self._fill_gap(tenant_id, sequencer))
                for alert in ready:
                    yield alert
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _fill_gap(self, tenant_id: int, sequencer: AlertSequencer) -> list[Row]:
        """The alerts missed behind a gap, from the database, then those held after it."""
        after = sequencer.reload_after()
        try:
            reached, loaded = await asyncio.to_thread(
                stored_since, self._settings.database_url, tenant_id, after)
        except Exception as exc:  # the database away: the gap waits, and is tried again
            log.warning("tenant %s alerts after %d not reloaded: %s", tenant_id, after, exc)
            return []
        log.info("tenant %s: alert numbers after %d were missing; reloaded %d alerts up to %d",
                 tenant_id, after, len(loaded), reached)
        return [*loaded, *sequencer.resync(reached)]

    async def _poll_alerts(self, tenant_id: int, inbox: AlertInbox, poll_s: float, start: list[int]) -> None:
        while True:
            try:
                answer = await self.alerts(tenant_id)
            except Exception as exc:  # no aggregator yet, or restarting: ask again next time
                log.debug("tenant %s alerts: %s", tenant_id, exc)
            else:
                if not start:  # the stream starts before the oldest recent alert the aggregator holds
                    numbers = [a["seq"] for a in answer["recent"] if isinstance(a.get("seq"), int)]
                    start.append(min(numbers) - 1 if numbers else int(answer.get("seq") or 0))
                for alert in answer["recent"]:
                    await inbox.put(alert)  # waits while the consumer is behind
            await asyncio.sleep(poll_s)

    async def _pump_alerts(self, tenant_id: int, inbox: AlertInbox, url: str) -> None:
        """The alert topic into the inbox, resubscribed after a failure (`feed_retry.follow`): the
        Ray poll covers the gap meanwhile. After `give_up_s` of failures it ends (logged, counted)
        and the stream goes on with the poll alone; the next stream (the next watcher) starts a
        new pump."""
        async def once(health: Health) -> None:
            bus = RedisBus(url, self._settings.redis_prefix)
            try:
                await bus.ping()
                health.mark()
                async for alert in bus.subscribe(alert_topic(tenant_id)):
                    health.mark()
                    inbox.offer(alert)  # full: dropped here, the poll brings it again
            finally:
                with suppress(Exception):
                    await bus.aclose()

        await follow(ALERT_TOPIC, f"tenant {tenant_id} alert topic", once, give_up_s=self._give_up_s)

    def _lookup_aggregator(self, tenant_id: int) -> Any:
        """The tenant's aggregator wherever it runs (`actors/tenant_directory.py`); ValueError
        when it runs none (blocking)."""
        aggregator = find(tenant_id, "aggregator", self._settings.ray_namespace)
        if aggregator is None:
            raise ValueError(f"tenant {tenant_id} runs no aggregator")
        return aggregator

    async def _handle(self, tenant_id: int) -> Any:
        """The tenant's aggregator; the default look-up joins Ray and looks up off the event
        loop (and never starts a cluster in this process: see `ray_runtime.join`)."""
        if self._aggregator == self._lookup_aggregator:
            await join(self._settings)
            return await asyncio.to_thread(self._lookup_aggregator, tenant_id)
        return self._aggregator(tenant_id)

    async def _keep_current(self, tenant_id: int) -> None:
        """Follow the aggregator while the tenant is watched, again after any failure with capped
        backoff (`feed_retry.follow`). "No aggregator" is an answer, not a failure: the tenant runs
        no engine yet, and is looked for again until it does. Failures (Ray or Redis away) for
        `give_up_s` end the task (logged, counted); the next watcher starts a new one (`_hold`)."""
        async def once(health: Health) -> None:
            try:
                aggregator = await self._look(tenant_id, health)
            finally:  # a book, no engine or no reach: each is an answer for `published`
                looked = self._looked.get(tenant_id)
                if looked is not None:
                    looked.set()
            if self._settings.redis_url:
                await self._follow_redis(tenant_id, aggregator, self._settings.redis_url, health)
            else:
                await self._follow_ray(tenant_id, aggregator, health)

        await follow(BOOK, f"tenant {tenant_id} book feed", once, give_up_s=self._give_up_s, max_wait_s=5.0)

    async def _look(self, tenant_id: int, health: Health) -> Any:
        """Find the tenant's aggregator and load its book; ValueError when it runs none (the
        replica is then emptied: a book that was live must not linger)."""
        try:
            aggregator = await self._handle(tenant_id)
        except ValueError:  # no aggregator: the tenant runs no engine (no connection)
            health.mark()
            replica = self._replicas.get(tenant_id)
            if replica is not None and (replica.version >= 0 or replica.rows):
                replica.clear()
                await self._bus.publish(book_topic(tenant_id), {"version": -1})
            raise
        await self._load_snapshot(tenant_id, aggregator)
        health.mark()
        return aggregator

    async def _load_snapshot(self, tenant_id: int, aggregator: Any) -> None:
        await self._deliver(tenant_id, await aggregator.snapshot.remote())

    async def _deliver(self, tenant_id: int, message: Row) -> bool:
        replica = self._replicas.setdefault(tenant_id, TenantReplica())
        if not replica.apply(message):
            return False
        await self._bus.publish(book_topic(tenant_id), {"version": replica.version})
        return True

    async def _follow_ray(self, tenant_id: int, aggregator: Any, health: Health) -> None:
        while True:  # a long poll, one call per change (or second): not a retry loop
            replica = self._replicas.setdefault(tenant_id, TenantReplica())
            for message in await aggregator.diffs_since.remote(replica.version, 1.0, replica.epoch):
                if not await self._deliver(tenant_id, message):
                    await self._load_snapshot(tenant_id, aggregator)
            health.mark()

    async def _follow_redis(self, tenant_id: int, aggregator: Any, url: str, health: Health) -> None:
        bus = RedisBus(url, self._settings.redis_prefix)
        try:
            async for message in bus.subscribe(book_topic(tenant_id)):
                health.mark()
                if (problem := book_message_problem(message)) is not None:
                    # a stray writer's junk: skipped, never half-applied, and the follow goes on
                    self.malformed += 1
                    log.error("tenant %s book topic: skipped a message: %s", tenant_id, problem)
                    continue
                if not await self._deliver(tenant_id, message):
                    await self._load_snapshot(tenant_id, aggregator)
        finally:
            await bus.aclose()


@lru_cache(maxsize=1)
def get_live_feed() -> LiveFeed:
    """The process's feed; created on first use inside the web server's event loop."""
    return LiveFeed(get_settings())
