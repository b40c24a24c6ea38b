"""The bus: publish a JSON message on a topic, subscribe to a topic. Same interface, two transports.

- `LocalBus` fans messages out inside one process (the embedded default, and the hand-off from a
  web worker's engine feed to its browser sessions).
- `RedisBus` carries them between processes and machines over Redis pub/sub.

Subscribers are latest-wins: a slow subscriber skips to the newest message rather than building an
unbounded queue. That is right for book snapshots and diffs that carry a version (a consumer that
sees a gap re-reads the full book); alerts that must never be skipped go to durable storage, not
only the bus.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from veles.config import redis_name

Message = dict[str, Any]
log = logging.getLogger(__name__)


class Bus(Protocol):
    """Topic-based publish/subscribe of JSON-serialisable dicts."""

    async def publish(self, topic: str, message: Message) -> None:
        """Deliver `message` to every current subscriber of `topic`."""
        ...

    def subscribe(self, topic: str) -> AsyncIterator[Message]:
        """Messages published on `topic` from now on (latest-wins for slow consumers)."""
        ...


class _Latest:
    """A one-slot mailbox: `put` replaces what is unread, `get` waits for something new."""

    def __init__(self) -> None:
        self._item: Message | None = None
        self._event = asyncio.Event()

    def put(self, item: Message) -> None:
        self._item = item
        self._event.set()

    async def get(self) -> Message:
        await self._event.wait()
        self._event.clear()
        item, self._item = self._item, None
        assert item is not None
        return item


class _LocalSubscription:
    """Registered the moment it is created, so nothing published after `subscribe()` is missed."""

    def __init__(self, bus: LocalBus, topic: str) -> None:
        self._bus, self._topic, self._box = bus, topic, _Latest()
        bus._subscribers[topic].add(self._box)

    def __aiter__(self) -> _LocalSubscription:
        return self

    async def __anext__(self) -> Message:
        return await self._box.get()

    async def aclose(self) -> None:
        """Stop receiving; the topic is forgotten when its last subscriber leaves."""
        subscribers = self._bus._subscribers.get(self._topic)
        if subscribers is not None:
            subscribers.discard(self._box)
            if not subscribers:
                del self._bus._subscribers[self._topic]


class LocalBus:
    """In-process fan-out; must be used from one event loop."""

    def __init__(self) -> None:
        self._subscribers: defaultdict[str, set[_Latest]] = defaultdict(set)

    async def publish(self, topic: str, message: Message) -> None:
        for box in tuple(self._subscribers.get(topic, ())):
            box.put(message)

    def subscribe(self, topic: str) -> _LocalSubscription:
        return _LocalSubscription(self, topic)

    def subscriber_count(self, topic: str) -> int:
        """How many subscribers listen on a topic (for tests and health pages)."""
        return len(self._subscribers.get(topic, ()))


class RedisBus:
    """Redis pub/sub in one deployment's namespace.

    Pub/sub channels ignore the Redis database number, so the deployment prefix
    (`Settings.redis_prefix`) is required: two deployments or test runs sharing a Redis server
    never see each other's books and alerts. A message that is not a JSON object (a foreign or
    broken publisher) is dropped and counted in `malformed`, never handed to a subscriber."""

    def __init__(self, url: str, prefix: str) -> None:
        if not prefix:
            raise ValueError("prefix: a Redis bus needs its deployment's prefix (Settings.redis_prefix)")
        self._url = url
        self._prefix = prefix
        self._client: aioredis.Redis = aioredis.Redis.from_url(url)
        self.malformed = 0

    def channel(self, topic: str) -> str:
        """The Redis channel a topic travels on."""
        return redis_name(self._prefix, topic)

    async def publish(self, topic: str, message: Message) -> None:
        await self._client.publish(self.channel(topic), json.dumps(message, separators=(",", ":")))

    async def subscribe(self, topic: str) -> AsyncIterator[Message]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel(topic))
        box = _Latest()

        async def pump() -> None:
            async for raw in pubsub.listen():
                if raw.get("type") != "message":
                    continue
                try:
                    message = json.loads(raw["data"])
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    self.malformed += 1
                    log.error("bus %s: dropped a message that is not a JSON object: %.200r",
                              topic, raw["data"])
                    continue
                box.put(message)

        task = asyncio.create_task(pump())
        try:
            while True:
                getter = asyncio.ensure_future(box.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    task.result()  # the connection failed: raise its error to the subscriber
                    # (a listener that ended without an error is no longer subscribed: say so,
                    # rather than hand the subscriber the cancelled getter's CancelledError)
                    raise ConnectionError(f"bus {topic}: the subscription ended")
                yield getter.result()
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError, redis.RedisError):
                await task
            with suppress(redis.RedisError):
                await pubsub.aclose()

    async def ping(self) -> None:
        """Reach the server once (a redis error when it cannot be reached): how a follower knows
        its connection works before the first message, which may be hours away."""
        await self._client.ping()  # type: ignore[misc]  # redis-py types sync and async as one

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

