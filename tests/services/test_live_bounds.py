"""The web tier's LiveFeed is bounded: it stops following a tenant nobody watches any more, and
its alert stream holds at most a fixed number of alerts for a slow consumer, losing none.

The aggregators are stand-ins (as in tests/api/test_book.py): the feed, its follow tasks, its
bus and the alert stream are the real ones."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from actors.risk_aggregator import BookPublisher
from tests.actors.support import account_figures
from tests.stubs.remote import Remote
from veles.config import Settings
from veles.services.alert_inbox import AlertInbox
from veles.services.live import LiveFeed


class _Aggregator:
    """A book that moves every 20 ms, and a recent-alerts list of `alerts` distinct raises."""

    def __init__(self, tenant_id: int, alerts: int = 0) -> None:
        self.version = 0
        self.recent = [{"rule_id": "margin_call", "subject": str(1000 + i), "status": "raised",
                        "time_msc": i, "tenant_id": tenant_id} for i in range(alerts)]
        self.alert_reads = 0

        async def snapshot() -> dict[str, Any]:
            return self._message(True)

        async def diffs_since(version: int, timeout: float, epoch: int) -> list[dict[str, Any]]:
            await asyncio.sleep(0.02)
            self.version += 1
            return [self._message(False)]

        async def read_alerts() -> dict[str, list[dict[str, Any]]]:
            self.alert_reads += 1
            return {"active": [], "recent": list(self.recent)}

        self.snapshot = Remote(snapshot)
        self.diffs_since = Remote(diffs_since)
        self.alerts = Remote(read_alerts)

    def _message(self, full: bool) -> dict[str, Any]:
        return {"epoch": 1, "version": self.version, "full": full, "sent_at": 1.0, "published_at": 2.0,
                "totals": {"equity": 1.0, "accounts": 1},
                "accounts": [{"login": 1, "group": "g", "equity": 1.0}]}


def _settings() -> Settings:
    return Settings(_env_file=None, database_url="sqlite://", redis_url=None)


async def _next_update(updates: Any) -> Any:
    return await asyncio.wait_for(anext(updates), 5.0)


async def test_a_tenant_nobody_watches_is_no_longer_followed() -> None:
    aggregators: dict[int, _Aggregator] = {}

    def lookup(tenant_id: int) -> _Aggregator:
        return aggregators.setdefault(tenant_id, _Aggregator(tenant_id))

    feed = LiveFeed(_settings(), aggregator=lookup, idle_s=0.3)
    try:
        first, second = feed.watch(1), feed.watch(1)
        replica = await _next_update(first)
        assert await _next_update(second) is replica
        assert feed.followed() == [1]
        await first.aclose()
        await asyncio.sleep(0.6)
        assert feed.followed() == [1], "still watched by the second session"
        await second.aclose()

        # a reload within idle_s finds the same replica, still kept current by the same task
        task = feed._tasks[1]
        await asyncio.sleep(0.1)
        again = feed.watch(1)
        assert await _next_update(again) is replica
        assert feed._tasks[1] is task
        await again.aclose()

        await asyncio.sleep(0.6)
        assert feed.followed() == []
        assert feed.replica(1).version == -1, "the book of a tenant no longer followed is forgotten"
        await asyncio.sleep(0.05)
        assert task.done()
        moved = aggregators[1].version
        await asyncio.sleep(0.2)
        assert aggregators[1].version == moved, "nothing asks the aggregator any more"

        # watched again later: followed again from a fresh snapshot
        back = feed.watch(1)
        assert (await _next_update(back)).version >= moved
        assert feed.followed() == [1]
        await back.aclose()
    finally:
        await feed.aclose()


async def test_alert_stream_holds_a_bounded_backlog_and_loses_nothing() -> None:
    """A consumer that stops reading (an SMS send hanging) while the aggregator holds 50 new
    alerts: at most 10 wait, the poll waits for room, and once the consumer reads again every
    alert arrives exactly once."""
    aggregator = _Aggregator(1, alerts=50)
    feed = LiveFeed(_settings(), aggregator=lambda _t: aggregator)
    inbox = AlertInbox(limit=10)
    stream = feed.alert_stream(1, poll_s=0.05, inbox=inbox)
    try:
        got = [await asyncio.wait_for(anext(stream), 5.0)]
        await asyncio.sleep(0.5)  # ten polls' worth while the consumer does not read
        assert inbox.pending == 10
        reads = aggregator.alert_reads
        await asyncio.sleep(0.3)
        assert aggregator.alert_reads == reads, "the poll waits for room instead of queueing more"
        while len(got) < 50:
            got.append(await asyncio.wait_for(anext(stream), 5.0))
        assert sorted(int(a["subject"]) for a in got) == list(range(1000, 1050))
        await asyncio.sleep(0.3)  # later polls bring the same 50: nothing is handed over twice
        assert inbox.pending == 0
    finally:
        await stream.aclose()
        await feed.aclose()


def test_a_full_inbox_drops_topic_alerts_without_forgetting_them() -> None:
    """An alert from the topic that finds the inbox full is dropped and counted, and not taken as
    seen: the poll, which reads it again from the aggregator, takes it in once there is room."""

    async def run() -> None:
        inbox = AlertInbox(limit=2)
        alerts = [{"rule_id": "stop_out", "subject": str(n), "status": "raised", "time_msc": n}
                  for n in range(3)]
        assert inbox.offer(alerts[0])
        assert inbox.offer(alerts[1])
        assert not inbox.offer(alerts[2])
        assert (inbox.pending, inbox.dropped) == (2, 1)
        assert inbox.offer(alerts[0]), "a repeat is not a drop"
        assert await inbox.get() == alerts[0]
        await inbox.put(alerts[2])  # the poll brings it again
        assert [await inbox.get(), await inbox.get()] == [alerts[1], alerts[2]]
        assert inbox.pending == 0

    asyncio.run(run())


async def test_a_restarted_aggregator_reaches_the_replica_without_redis() -> None:
    """Without Redis the replica long-polls `diffs_since(version)`. A restarted aggregator numbers
    its versions from 0 again, so a replica ahead of it waited for versions it already had and
    stayed on the dead book (issue 15). Real BookPublishers, the second standing for the one Ray
    restarts; the caller's epoch now makes the new one answer with its snapshot at once."""
    figures = account_figures()
    life: dict[str, BookPublisher] = {"core": BookPublisher(7, None, None)}
    old = life["core"]
    for equity in (1_000.0, 1_001.0, 1_002.0, 1_003.0):
        old.apply([dataclasses.replace(figures, equity=equity)], time.time())
        await old.publish()

    class _Live:
        def __init__(self) -> None:
            self.snapshot = Remote(lambda: _now(life["core"].snapshot()))
            self.diffs_since = Remote(lambda *args: life["core"].diffs_since(*args))

    feed = LiveFeed(_settings(), aggregator=lambda _t: _Live())
    try:
        updates = feed.watch(7)
        replica = await _next_update(updates)
        while replica.version < old.version:
            replica = await _next_update(updates)
        assert (replica.epoch, replica.version) == (old.epoch, 4)
        new = BookPublisher(7, None, None)  # Ray restarted the aggregator: empty, versions from 0
        assert new.epoch != old.epoch
        new.apply([dataclasses.replace(figures, equity=2_000.0)], time.time())
        await new.publish()
        life["core"] = new
        deadline = time.monotonic() + 10
        while replica.epoch != new.epoch:
            assert time.monotonic() < deadline, "the replica stayed on the dead aggregator's book"
            await asyncio.sleep(0.05)
        assert replica.version == new.version == 1
        assert replica.rows[figures.login]["equity"] == 2_000.0
    finally:
        await feed.aclose()


async def _now(value: Any) -> Any:
    return value
