"""Tells this web process's browser tabs that a tenant's alerts moved, so each tab re-reads its
unread count (and plays its sound) at once, without a database query per tab per second.

One `AlertWatch` per web process follows, for each tenant some tab watches, the tenant's ordered
alert stream (`LiveFeed.alert_stream`: the topic and the aggregator's recent list put back in
sequence order, a missing number reloaded from the database) and publishes the last number on
an in-process `LocalBus` topic. Tabs then read what they show from the database by number
(`veles.services.alert_reader`), so a tab that misses a wake-up still sees everything at the
next. The stream stops when the tenant's last watcher leaves.

It also hands each watcher the alert state changes people make (acknowledged, resolved:
`veles.services.alert_state`), which the engine does not number: with REDIS_URL from the tenant's
`alert-state:<tenant>` channel (followed while the tenant has a watcher here), without Redis
straight from the publisher in this process (`deliver_states`). These are never skipped
latest-wins: each watcher holds them in order in its own bounded inbox, and one that falls
STATE_HELD behind gets a single reload marker instead of the ones it could not hold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from typing import Any

import redis.asyncio as aioredis

from actors.wire import Row
from veles.bus import LocalBus
from veles.config import Settings, get_settings, redis_name
from veles.services.feed_retry import ALERT_WATCH, GIVE_UP_S, Health, follow
from veles.services.live import LiveFeed, get_live_feed

log = logging.getLogger(__name__)

STATE_KIND = "state"  # the `kind` of an alert state change (engine events carry none)
STATE_HELD = 256  # state changes one watcher may fall behind by; past it, one reload marker
RELOAD_MARK: Row = {"kind": STATE_KIND, "reload": True, "id": None, "seq": None}


def _topic(tenant_id: int) -> str:
    return f"alert-seq:{tenant_id}"


def alert_state_topic(tenant_id: int) -> str:
    """The topic of the alert state changes people make in a tenant (acknowledge, resolve)."""
    return f"alert-state:{tenant_id}"


def alert_state_channel(prefix: str, tenant_id: int) -> str:
    """Its Redis channel, in the deployment's namespace."""
    return redis_name(prefix, alert_state_topic(tenant_id))


class _StateInbox:
    """One watcher's alert state changes, in order, on the watcher's event loop; bounded."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Row] = asyncio.Queue(STATE_HELD)

    def offer(self, messages: Iterable[Row]) -> None:
        """Hold the changes (on the inbox's loop); a full inbox is replaced by one reload marker:
        its watcher re-reads the database, which has every change it could not hold."""
        for message in messages:
            if self.queue.full():
                while not self.queue.empty():
                    self.queue.get_nowait()
                message = RELOAD_MARK
            self.queue.put_nowait(message)


class AlertWatch:
    """Per-process: one ordered alert stream per watched tenant, fanned out to its tabs."""

    def __init__(self, feed: LiveFeed | None = None, give_up_s: float = GIVE_UP_S,
                 settings: Settings | None = None) -> None:
        self._feed = feed
        self._settings = settings
        self._give_up_s = give_up_s
        self._bus = LocalBus()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._state_tasks: dict[int, asyncio.Task[None]] = {}
        self._watchers: Counter[int] = Counter()
        # written on the watchers' loop, read by publishers in any thread (`deliver_states`)
        self._inboxes: dict[int, set[_StateInbox]] = {}
        self._inboxes_lock = threading.Lock()
        self.malformed = 0  # state channel messages that were not a JSON object (dropped)

    def deliver_states(self, tenant_id: int, messages: list[Row]) -> None:
        """Hand alert state changes to this process's watchers of the tenant, from any thread
        (the in-process path without Redis, and the Redis follower's)."""
        with self._inboxes_lock:
            inboxes = tuple(self._inboxes.get(tenant_id, ()))
        for inbox in inboxes:
            with suppress(RuntimeError):  # its loop has closed: the watcher is gone
                inbox.loop.call_soon_threadsafe(inbox.offer, list(messages))

    @asynccontextmanager
    async def watch(self, tenant_id: int, idle_s: float) -> AsyncIterator[AsyncIterator[int | None]]:
        """Wake-ups of the tenant's alerts: the last sequence number applied, or None after
        `idle_s` seconds without one (so the caller can check it is still wanted)."""
        async with self.alerts(tenant_id, idle_s) as events:
            async def changes() -> AsyncIterator[int | None]:
                async for alert in events:
                    if alert is None:
                        yield None
                    else:
                        seq = alert.get("seq")
                        yield seq if isinstance(seq, int) else 0

            yield changes()

    @asynccontextmanager
    async def alerts(self, tenant_id: int, idle_s: float) -> AsyncIterator[AsyncIterator[Row | None]]:
        """The tenant's alert events themselves (`actors.wire.alert_row`, in `seq` order), or None
        after `idle_s` seconds without one. Latest-wins: a watcher slower than the events skips
        some, and sees a number missing (the alerts page then reloads). Between them, the alert
        state changes people make (`kind: state`, `alert_state.state_message`), each in order."""
        subscription = self._bus.subscribe(_topic(tenant_id))
        inbox = _StateInbox()
        with self._inboxes_lock:
            self._inboxes.setdefault(tenant_id, set()).add(inbox)
        self._watchers[tenant_id] += 1
        task = self._tasks.get(tenant_id)
        if task is None or task.done():
            self._tasks[tenant_id] = asyncio.create_task(self._follow(tenant_id))
        settings = self._settings or get_settings()
        state_task = self._state_tasks.get(tenant_id)
        if settings.redis_url and (state_task is None or state_task.done()):
            self._state_tasks[tenant_id] = asyncio.create_task(
                self._follow_states(tenant_id, settings.redis_url, settings.redis_prefix))
        pending: dict[str, asyncio.Future[Any]] = {}  # the waits under way, cancelled at the end

        async def events() -> AsyncIterator[Row | None]:
            while True:
                if "bus" not in pending:
                    pending["bus"] = asyncio.ensure_future(anext(subscription))
                if "state" not in pending:
                    pending["state"] = asyncio.ensure_future(inbox.queue.get())
                done, _ = await asyncio.wait(pending.values(), timeout=idle_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    yield None
                    continue
                if pending["state"] in done:
                    yield pending.pop("state").result()
                if pending["bus"] in done:
                    message = pending.pop("bus").result()
                    alert = message.get("alert")
                    yield alert if isinstance(alert, dict) else {"seq": message.get("seq")}

        try:
            yield events()
        finally:
            for waiting in pending.values():
                waiting.cancel()
            await subscription.aclose()
            with self._inboxes_lock:
                self._inboxes.get(tenant_id, set()).discard(inbox)
                if not self._inboxes.get(tenant_id, True):
                    del self._inboxes[tenant_id]
            self._watchers[tenant_id] -= 1
            if self._watchers[tenant_id] <= 0:
                del self._watchers[tenant_id]
                for tasks in (self._tasks, self._state_tasks):
                    stopping = tasks.pop(tenant_id, None)
                    if stopping is not None:
                        stopping.cancel()
                        with suppress(asyncio.CancelledError, Exception):
                            await stopping

    async def _follow(self, tenant_id: int) -> None:
        """Follow the tenant's ordered stream until cancelled; a stream that fails is followed anew
        (`feed_retry.follow`). One that fails for `give_up_s` without bringing an alert ends
        (logged, counted); the next tab that watches the tenant starts a new one (`watch`)."""
        feed = self._feed or get_live_feed()

        async def follow_once(health: Health) -> None:
            async for alert in feed.alert_stream(tenant_id):
                health.mark()
                seq = alert.get("seq") if isinstance(alert, dict) else None
                await self._bus.publish(_topic(tenant_id), {"seq": seq, "alert": alert})
            raise ConnectionError("the alert stream ended")  # a stream only ends on failure

        await follow(ALERT_WATCH, f"tenant {tenant_id} alert watch", follow_once,
                     give_up_s=self._give_up_s, max_wait_s=1.0)

    async def _follow_states(self, tenant_id: int, url: str, prefix: str) -> None:
        """The tenant's alert state channel into its watchers' inboxes until cancelled, followed
        anew after a failure (`feed_retry.follow`). Read message by message, not latest-wins (a
        skipped acknowledgement would leave a page wrong with nothing to tell it so); a message
        that is not a JSON object is dropped, logged and counted (`malformed`)."""
        async def follow_once(health: Health) -> None:
            client = aioredis.Redis.from_url(url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(alert_state_channel(prefix, tenant_id))
                health.mark()
                async for raw in pubsub.listen():
                    if raw.get("type") != "message":
                        continue
                    health.mark()
                    try:
                        message = json.loads(raw["data"])
                    except ValueError:
                        message = None
                    if not isinstance(message, dict):
                        self.malformed += 1
                        log.error("tenant %s alert state channel: dropped a message that is not a JSON "
                                  "object: %.200r", tenant_id, raw["data"])
                        continue
                    self.deliver_states(tenant_id, [message])
            finally:
                with suppress(Exception):
                    await pubsub.aclose()
                with suppress(Exception):
                    await client.aclose()
            raise ConnectionError("the alert state subscription ended")

        await follow(ALERT_WATCH, f"tenant {tenant_id} alert state watch", follow_once,
                     give_up_s=self._give_up_s, max_wait_s=1.0)


@lru_cache(maxsize=1)
def get_alert_watch() -> AlertWatch:
    """The process's watch; created on first use inside the web server's event loop."""
    return AlertWatch()
