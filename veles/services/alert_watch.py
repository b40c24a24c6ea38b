"""Tells this web process's browser tabs that a tenant's alerts moved, so each tab re-reads its
unread count (and plays its sound) at once, without a database query per tab per second.

One `AlertWatch` per web process follows, for each tenant some tab watches, the tenant's ordered
alert stream (`LiveFeed.alert_stream`: the topic and the aggregator's recent list put back in
sequence order, a missing number reloaded from the database) and publishes the last number on
an in-process `LocalBus` topic. Tabs then read what they show from the database by number
(`veles.services.alert_reader`), so a tab that misses a wake-up still sees everything at the
next. The stream stops when the tenant's last watcher leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import lru_cache

from actors.wire import Row
from veles.bus import LocalBus
from veles.services.feed_retry import ALERT_WATCH, GIVE_UP_S, Health, follow
from veles.services.live import LiveFeed, get_live_feed

log = logging.getLogger(__name__)


def _topic(tenant_id: int) -> str:
    return f"alert-seq:{tenant_id}"


class AlertWatch:
    """Per-process: one ordered alert stream per watched tenant, fanned out to its tabs."""

    def __init__(self, feed: LiveFeed | None = None, give_up_s: float = GIVE_UP_S) -> None:
        self._feed = feed
        self._give_up_s = give_up_s
        self._bus = LocalBus()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._watchers: Counter[int] = Counter()

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
        some, and sees a number missing (the alerts page then reloads)."""
        subscription = self._bus.subscribe(_topic(tenant_id))
        self._watchers[tenant_id] += 1
        task = self._tasks.get(tenant_id)
        if task is None or task.done():
            self._tasks[tenant_id] = asyncio.create_task(self._follow(tenant_id))

        async def events() -> AsyncIterator[Row | None]:
            while True:
                try:
                    message = await asyncio.wait_for(anext(subscription), idle_s)
                except TimeoutError:
                    yield None
                else:
                    alert = message.get("alert")
                    yield alert if isinstance(alert, dict) else {"seq": message.get("seq")}

        try:
            yield events()
        finally:
            await subscription.aclose()
            self._watchers[tenant_id] -= 1
            if self._watchers[tenant_id] <= 0:
                del self._watchers[tenant_id]
                stopping = self._tasks.pop(tenant_id, None)
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


@lru_cache(maxsize=1)
def get_alert_watch() -> AlertWatch:
    """The process's watch; created on first use inside the web server's event loop."""
    return AlertWatch()
