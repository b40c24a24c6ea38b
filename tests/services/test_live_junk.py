"""A stray message on a book topic is skipped by the web replica, not half-applied.

Found by `veles chaos`: a malformed message on `book:<tenant>` raised inside the replica's follow,
which dropped its Redis subscription and reloaded the whole book over Ray, for every such message.
Real Redis, a real `BookPublisher` publishing on it, the real `LiveFeed`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from typing import Any

import redis.asyncio as aioredis

from actors.risk_aggregator import BookPublisher
from actors.wire import book_message_problem, book_topic
from tests.actors.support import account_figures
from tests.stubs.remote import Remote
from veles.config import Settings, redis_name
from veles.services.live import LiveFeed

TENANT = 9_001


async def _now(value: Any) -> Any:
    return value


def test_a_message_the_aggregator_could_not_have_made_is_named() -> None:
    good = {"full": False, "epoch": 1, "version": 2, "totals": {}, "accounts": [{"login": 5}],
            "sent_at": 1.0, "published_at": 2.0}
    assert book_message_problem(good) is None
    assert book_message_problem({**good, "accounts": 3}) == "accounts missing or of the wrong type"
    assert book_message_problem({"chaos": True}) == (
        "full, epoch, version, totals, accounts, sent_at, published_at missing or of the wrong type")


async def test_junk_on_the_book_topic_is_skipped_and_the_follow_goes_on(redis_url: str) -> None:
    prefix = os.environ["VELES_REDIS_PREFIX"]
    publisher = BookPublisher(TENANT, redis_url, None)
    figures = account_figures()
    publisher.apply([figures], time.time())
    await publisher.publish()
    snapshots = 0

    async def snapshot() -> Any:
        nonlocal snapshots
        snapshots += 1
        return publisher.snapshot()

    class _Aggregator:
        def __init__(self) -> None:
            self.snapshot = Remote(snapshot)

    feed = LiveFeed(Settings(_env_file=None, database_url="sqlite://", redis_url=redis_url,
                             veles_redis_prefix=prefix), aggregator=lambda _t: _Aggregator())
    client = aioredis.Redis.from_url(redis_url)
    channel = redis_name(prefix, book_topic(TENANT))
    try:
        updates = feed.watch(TENANT)
        replica = await asyncio.wait_for(anext(updates), 10)
        assert replica.version == 1
        while (await client.pubsub_numsub(channel))[0][1] == 0:  # noqa: ASYNC110 (the feed listens)
            await asyncio.sleep(0.02)
        junk = {"full": "yes", "epoch": [], "version": "x", "accounts": 3, "chaos": True}
        await client.publish(channel, json.dumps(junk))
        publisher.apply([dataclasses.replace(figures, equity=figures.equity + 1)], time.time())
        await publisher.publish()
        while replica.version < 2:
            replica = await asyncio.wait_for(anext(updates), 10)
        assert replica.rows[figures.login]["equity"] == figures.equity + 1
        assert snapshots == 1, "the junk made the replica drop its follow and reload the book"
        assert feed.malformed == 1
    finally:
        await client.aclose()
        await feed.aclose()
