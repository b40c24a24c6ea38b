"""A tenant stopped on purpose leaves no engine-stats key, deleted by one owner only. In a tenant
host the logical aggregator's own writer deletes it when the aggregator closes; the supervisor
used to delete it a second time (`engine_stats.forget`) as a separate aggregator process's
supervisor must, since a killed process cannot. Real Redis; the supervisor and its aggregator are
the real classes, in this process, with no connection to feed (nothing here needs Ray)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from actors import engine_stats
from actors.engine_stats import engine_stats_key
from actors.tenant_host import HostedSupervisor
from veles.config import engine_prefix

TENANT = 7301


class _Host:
    """What a hosted supervisor asks of its tenant host: to be let go when it ends itself."""

    def forget(self, tenant_id: int) -> None:
        raise AssertionError(f"tenant {tenant_id} ended itself: it was only stopped")


async def test_a_hosted_tenant_stopped_on_purpose_deletes_its_stats_key_once(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[int] = []

    async def forget(url: str, prefix: str, tenant_id: int) -> None:
        forgotten.append(tenant_id)

    monkeypatch.setattr(engine_stats, "forget", forget)
    key = engine_stats_key(engine_prefix(None), TENANT)
    client: Any = aioredis.Redis.from_url(redis_url)
    supervisor = HostedSupervisor(_Host(), TENANT, [], 10.0, redis_url)
    try:
        await supervisor.start()
        for _ in range(100):  # the aggregator's writer writes the key at once, then every 2 s
            if await client.exists(key):
                break
            await asyncio.sleep(0.05)
        assert await client.exists(key), "the running aggregator writes its stats"
        await supervisor.stop()
        for _ in range(100):  # the cancelled writer deletes it on its way out
            if not await client.exists(key):
                break
            await asyncio.sleep(0.05)
        assert not await client.exists(key), "stopped on purpose: no key left to look stalled"
        assert forgotten == [], "the supervisor deleted the key a second time"
    finally:
        await supervisor.stop()
        await client.delete(key)
        await client.aclose()
