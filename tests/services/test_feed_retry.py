"""The web tier's followers retry with tenacity and a stop (`veles.services.feed_retry`): a pump
that cannot reach Redis gives up, ends cleanly, is logged and counted, and the next watcher
starts a new one; one that worked for a long time before failing gets its full time again.

Redis "away" is a real refused connection (a port nothing listens on), never a mock. The
aggregators are stand-ins (as in test_live_bounds.py); the feeds, their tasks and buses are real.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
import socketio

from tests.stubs.remote import Remote
from veles.api.deps import ApiContext
from veles.api.realtime import create_socket_server
from veles.config import Settings
from veles.services import feed_retry
from veles.services.alert_watch import AlertWatch
from veles.services.feed_retry import ALERT_TOPIC, ALERT_WATCH, BOOK, REPORT_TOPIC, Health, follow
from veles.services.live import LiveFeed
from veles.services.report_notices import ReportFeed

NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: every connection is refused
GIVE_UP_S = 0.4


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class _Aggregator:
    """Recent alerts over "Ray" (the poll, which must go on when the topic pump gave up)."""

    def __init__(self) -> None:
        self.recent: list[dict[str, Any]] = []
        self.seq = 0

        async def read_alerts() -> dict[str, Any]:
            return {"active": [], "recent": list(self.recent), "seq": self.seq}

        self.alerts = Remote(read_alerts)

    def raise_one(self) -> None:
        self.seq += 1
        self.recent.append({"rule_id": "margin_call", "subject": "100001", "status": "raised",
                            "time_msc": self.seq, "seq": self.seq, "severity": "warning"})


async def test_the_alert_topic_pump_gives_up_and_the_stream_goes_on_with_the_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    aggregator = _Aggregator()
    settings = Settings(_env_file=None, database_url="sqlite://", redis_url=NOWHERE)
    feed = LiveFeed(settings, aggregator=lambda _tenant: aggregator, give_up_s=GIVE_UP_S)
    gave_up = feed_retry.gave_up(ALERT_TOPIC)
    caplog.set_level(logging.WARNING, "veles.services.feed_retry")
    got: list[dict[str, Any]] = []

    async def consume(stream: AsyncIterator[dict[str, Any]]) -> None:
        async for alert in stream:
            got.append(alert)

    first = asyncio.create_task(consume(feed.alert_stream(7, poll_s=0.05)))
    try:
        await _until(lambda: feed_retry.gave_up(ALERT_TOPIC) > gave_up, "the pump to give up")
        assert not first.done(), "the stream itself goes on"
        assert any("tenant 7 alert topic: gave up" in r.getMessage() for r in caplog.records)
        aggregator.raise_one()  # after the pump ended, the poll still brings every alert
        await _until(lambda: [a.get("seq") for a in got] == [1], "the alert through the poll")

        # the next watcher's stream starts a pump of its own, which tries (and here gives up) again
        tries = feed_retry.retries(ALERT_TOPIC)
        second = asyncio.create_task(consume(feed.alert_stream(7, poll_s=0.05)))
        await _until(lambda: feed_retry.gave_up(ALERT_TOPIC) > gave_up + 1, "the second pump to give up")
        assert feed_retry.retries(ALERT_TOPIC) > tries
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await feed.aclose()


async def test_the_book_feed_gives_up_on_an_unreachable_engine_and_the_next_watcher_restarts_it() -> None:
    def unreachable(_tenant: int) -> Any:
        raise ConnectionError("Ray is not reachable")  # what ray_runtime.join raises (EngineUnreachable)

    feed = LiveFeed(Settings(_env_file=None, database_url="sqlite://", redis_url=None),
                    aggregator=unreachable, give_up_s=GIVE_UP_S)
    gave_up = feed_retry.gave_up(BOOK)
    first = cast(AsyncGenerator[Any, None], feed.watch(3))
    waiting = asyncio.ensure_future(anext(first))
    try:
        await _until(lambda: feed_retry.gave_up(BOOK) > gave_up, "the book feed to give up")
        task = feed._tasks[3]
        await _until(task.done, "its task to end")
        assert task.exception() is None  # ended cleanly, nothing raised out of it
        second = cast(AsyncGenerator[Any, None], feed.watch(3))
        restarted = asyncio.ensure_future(anext(second))
        await asyncio.sleep(0.05)
        assert feed._tasks[3] is not task, "the next watcher starts it"
        assert not feed._tasks[3].done()
        restarted.cancel()
        await asyncio.gather(restarted, return_exceptions=True)
        await second.aclose()
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await first.aclose()
        await feed.aclose()


def test_no_aggregator_is_an_answer_not_a_failure() -> None:
    """A tenant with no engine yet is looked for again while watched (it may add a connection),
    never given up on: the lookup answered."""
    async def run() -> None:
        def none_yet(_tenant: int) -> Any:
            raise ValueError("no such actor")

        feed = LiveFeed(Settings(_env_file=None, database_url="sqlite://", redis_url=None),
                        aggregator=none_yet, give_up_s=0.2)
        gave_up = feed_retry.gave_up(BOOK)
        watch = cast(AsyncGenerator[Any, None], feed.watch(4))
        waiting = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(1.5)  # several retries, well past give_up_s
        assert not feed._tasks[4].done()
        assert feed_retry.gave_up(BOOK) == gave_up
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await watch.aclose()
        await feed.aclose()

    asyncio.run(run())


@pytest.mark.postgres
async def test_the_report_pump_gives_up_reads_fall_back_to_polling_and_the_next_watcher_restarts_it(
    database: str,
) -> None:
    settings = Settings(_env_file=None, database_url=database, redis_url=NOWHERE)
    feed = ReportFeed(settings, poll_s=0.1, safety_s=5.0, give_up_s=GIVE_UP_S)
    gave_up = feed_retry.gave_up(REPORT_TOPIC)
    async with feed.watch(9, idle_s=0.2):
        assert feed.pumping(9)
        pump = feed._tenants[9].pump
        assert pump is not None
        await _until(lambda: not feed.pumping(9), "the pump to give up")
        assert pump.exception() is None  # ended cleanly
        assert feed_retry.gave_up(REPORT_TOPIC) == gave_up + 1
        follower = feed._tenants[9].task
        assert follower is not None
        assert not follower.done(), "the reads go on without the bus"
        async with feed.watch(9, idle_s=0.2):
            assert feed.pumping(9), "the next watcher starts a new pump"
            assert feed._tenants[9].pump is not pump


async def test_a_follower_that_worked_gets_its_full_time_again_after_a_failure() -> None:
    """tenacity's stop_after_delay counts from the first attempt: an alert watch that had run for
    an hour gave up at its first failure. The stop counts from the last healthy moment."""
    calls: list[float] = []

    async def once(health: Health) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:  # works for longer than give_up_s, then loses its connection
            health.mark()
            await asyncio.sleep(GIVE_UP_S * 2)
            raise ConnectionError("lost")
        if len(calls) < 4:
            raise ConnectionError("still away")  # fails quickly twice, within give_up_s
        health.mark()

    assert await follow(ALERT_WATCH, "test follower", once, give_up_s=GIVE_UP_S * 3, max_wait_s=0.05)
    assert len(calls) == 4


async def test_a_follower_that_never_works_gives_up_counted_and_unknown_names_are_refused() -> None:
    gave_up, tries = feed_retry.gave_up(ALERT_WATCH), feed_retry.retries(ALERT_WATCH)

    async def never(_health: Health) -> None:
        raise ConnectionError("away")

    assert not await follow(ALERT_WATCH, "test follower", never, give_up_s=0.2, max_wait_s=0.05)
    assert feed_retry.gave_up(ALERT_WATCH) == gave_up + 1
    assert feed_retry.retries(ALERT_WATCH) > tries
    with pytest.raises(ValueError, match="feed"):
        await follow("made-up", "x", never)


class _Streams:
    """An alert stream that brings alerts, fails once after a while, then brings more."""

    def __init__(self) -> None:
        self.started = 0

    async def alert_stream(self, _tenant_id: int) -> AsyncIterator[dict[str, Any]]:
        self.started += 1
        if self.started == 1:
            for seq in range(1, 6):  # healthy for longer than the give-up time
                yield {"seq": seq}
                await asyncio.sleep(GIVE_UP_S / 2)
            raise ConnectionError("the aggregator restarted")
        for seq in range(6, 1000):
            yield {"seq": seq}
            await asyncio.sleep(0.05)


async def test_the_alert_watch_follows_again_after_a_failure_late_in_its_life() -> None:
    streams = _Streams()
    watch = AlertWatch(cast(LiveFeed, streams), give_up_s=GIVE_UP_S)
    seen: list[int | None] = []
    async with watch.watch(5, idle_s=5.0) as changes:
        async for seq in changes:
            seen.append(seq)
            if seq is not None and seq >= 8:
                break
    assert streams.started == 2, "followed again after the failure, not given up"
    assert seen[-1] == 8


def test_the_socketio_manager_channel_carries_the_deployment_prefix() -> None:
    """Pub/sub ignores the database number: python-socketio's default channel ("socketio") was
    shared by every deployment on the Redis server, so one emitted to another's rooms."""
    settings = Settings(_env_file=None, database_url="sqlite://", redis_url="redis://127.0.0.1:6379/5",
                        veles_redis_prefix="deployment-a:")
    server, _namespace = create_socket_server(cast(ApiContext, SimpleNamespace(settings=settings)))
    manager = server.manager
    assert isinstance(manager, socketio.AsyncRedisManager)
    assert manager.channel == "deployment-a:socketio"
