"""The bus: in-process and over the real Redis, same behaviour."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from veles.bus import LocalBus, RedisBus
from veles.config import Settings, deployment_prefix

ROOT = Path(__file__).resolve().parents[1]


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
    publisher, subscriber = RedisBus(redis_url, "deploy-a:"), RedisBus(redis_url, "deploy-a:")
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
    bus = RedisBus("redis://127.0.0.1:1/0", "t:")  # nothing listens there
    with pytest.raises(Exception, match=r"(?i)connect"):
        await _first(bus.subscribe("t"))
    await bus.aclose()


async def _live(publisher: RedisBus, topic: str, pending: asyncio.Future) -> None:  # type: ignore[type-arg]
    """Publish a probe until the subscription behind `pending` is live (SUBSCRIBE is asynchronous)."""
    for _ in range(50):
        await publisher.publish(topic, {"probe": True})
        await asyncio.sleep(0.05)
        if pending.done():
            return


@pytest.mark.redis
async def test_two_deployments_on_one_redis_do_not_hear_each_other(redis_url: str) -> None:
    """Pub/sub ignores the database number, so only the prefix keeps deployments apart."""
    a, b = RedisBus(redis_url, "deploy-a:"), RedisBus(redis_url, "deploy-b:")
    a_sub, b_sub = a.subscribe("alerts:1"), b.subscribe("alerts:1")
    a_next = asyncio.ensure_future(_first(a_sub))
    await _live(a, "alerts:1", a_next)
    assert await a_next == {"probe": True}
    b_next = asyncio.ensure_future(_first(b_sub))
    await _live(b, "alerts:1", b_next)
    assert await b_next == {"probe": True}
    a_next, b_next = asyncio.ensure_future(_first(a_sub)), asyncio.ensure_future(_first(b_sub))
    await asyncio.sleep(0.1)
    await b.publish("alerts:1", {"from": "b"})
    await a.publish("alerts:1", {"from": "a"})
    assert await a_next == {"from": "a"}
    assert await b_next == {"from": "b"}
    a_next, b_next = asyncio.ensure_future(_first(a_sub)), asyncio.ensure_future(_first(b_sub))
    await asyncio.sleep(0.3)
    assert not a_next.done()  # neither heard the other deployment's message
    assert not b_next.done()
    a_next.cancel()
    b_next.cancel()
    await asyncio.gather(a_next, b_next, return_exceptions=True)
    for sub in (a_sub, b_sub):
        await sub.aclose()
    await a.aclose()
    await b.aclose()


@pytest.mark.redis
async def test_a_message_that_is_not_a_json_object_is_dropped_and_counted(redis_url: str) -> None:
    bus = RedisBus(redis_url, "deploy-a:")
    sub = bus.subscribe("alerts:1")
    pending = asyncio.ensure_future(_first(sub))
    await _live(bus, "alerts:1", pending)
    raw = aioredis.Redis.from_url(redis_url)
    for junk in (b"not json", b"[1, 2]", b'"text"'):
        await raw.publish(bus.channel("alerts:1"), junk)
    pending = asyncio.ensure_future(_first(sub))
    await bus.publish("alerts:1", {"good": 1})
    assert await pending == {"good": 1}  # the subscription outlived the junk
    assert bus.malformed == 3
    await raw.aclose()
    await sub.aclose()
    await bus.aclose()


def test_the_prefix_comes_from_the_setting_or_the_database() -> None:
    pg = "postgresql+psycopg://u:secret@db:5432/veles"
    assert deployment_prefix(pg, "acme") == "acme:"
    derived = deployment_prefix(pg)
    assert derived.startswith("veles:veles-")
    assert derived.endswith(":")
    assert deployment_prefix("postgresql+psycopg://u:other@db:5432/veles") == derived  # not the password
    assert deployment_prefix("postgresql+psycopg://u@db:5432/veles_staging") != derived
    assert deployment_prefix("postgresql+psycopg://u@db2:5432/veles") != derived
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=pg, veles_redis_prefix="acme-prod")
    assert settings.redis_prefix == "acme-prod:"
    with pytest.raises(ValueError, match="veles_redis_prefix"):
        Settings(_env_file=None, veles_redis_prefix="has space")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="prefix"):
        RedisBus("redis://127.0.0.1:6379/0", "")


# Modules that hold a raw Redis client only to ping it: they name no channel or key.
_PING_ONLY = {"veles/api/health.py", "veles/services/preflight.py"}
# What names channels and keys in the deployment's namespace.
_NAMERS = {"redis_name", "RedisBus", "RedisRateLimiter"}


def _sources() -> list[Path]:
    return [p for top in ("veles", "actors", "veles_ui") for p in sorted((ROOT / top).rglob("*.py"))]


def test_no_redis_name_bypasses_the_deployment_prefix() -> None:
    """Every module that talks to Redis names channels and keys through `redis_name` (or a
    `RedisBus` or `RedisRateLimiter`, which do), and no source spells the old fixed namespace
    "veles:" by hand."""
    talks_to_redis, literals = [], []
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        imports_redis = any(
            (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "redis" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "redis")
            for node in ast.walk(tree)
        )
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        if imports_redis and rel not in _PING_ONLY and rel != "veles/bus.py" and not names & _NAMERS:
            talks_to_redis.append(rel)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.startswith("veles:") and rel != "veles/config.py"):
                literals.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert talks_to_redis == []
    assert literals == []
