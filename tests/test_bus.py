"""The bus: in-process and over the real Redis, same behaviour."""

from __future__ import annotations

import asyncio

import pytest

from veles.bus import LocalBus, RedisBus


async def _first(gen, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(gen.__anext__(), timeout)


async def test_local_bus_delivers_to_every_subscriber_and_forgets_them() -> None:
    bus = LocalBus()
    one, two = bus.subscribe("book:1"), bus.subscribe("book:1")
    first = asyncio.ensure_future(_first(one))
    second = asyncio.ensure_future(_first(two))
    await asyncio.sleep(0)
    await bus.publish("book:1", {"version": 1})
    await bus.publish("book:2", {"version": 99})  # another tenant's topic
    assert await first == {"version": 1}
    assert await second == {"version": 1}
    await one.aclose()
    await two.aclose()
    assert bus.subscriber_count("book:1") == 0


async def test_local_bus_slow_subscriber_gets_the_latest_message() -> None:
    bus = LocalBus()
    sub = bus.subscribe("t")
    pending = asyncio.ensure_future(_first(sub))
    await asyncio.sleep(0)
    for version in range(1, 6):
        await bus.publish("t", {"version": version})
    assert (await pending)["version"] == 5  # no backlog of stale versions
    await sub.aclose()


@pytest.mark.redis
async def test_redis_bus_round_trip_between_two_clients(redis_url: str) -> None:
    publisher, subscriber = RedisBus(redis_url), RedisBus(redis_url)
    sub = subscriber.subscribe("book:7")
    pending = asyncio.ensure_future(_first(sub))
    for _ in range(50):  # publish until the subscription is live
        await publisher.publish("book:7", {"version": 3, "totals": {"equity": 1.5}})
        await asyncio.sleep(0.05)
        if pending.done():
            break
    assert await pending == {"version": 3, "totals": {"equity": 1.5}}
    await sub.aclose()
    await publisher.aclose()
    await subscriber.aclose()


@pytest.mark.redis
async def test_redis_bus_subscriber_sees_a_connection_failure() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")  # nothing listens there
    with pytest.raises(Exception, match=r"(?i)connect"):
        await _first(bus.subscribe("t"))
    await bus.aclose()
