"""A tenant's engine metrics, kept by its aggregator and read by the web tier's `/metrics`.

Why the aggregator: it sees every batch's lag (gateway → publish) and every alert; the supervisor
hands it the rest (account actors alive, restarts) every few seconds. Why Redis keys and not a
Ray call per scrape: with REDIS_URL set, the aggregator writes its numbers to one key per tenant
(`engine_stats_key`) every `WRITE_EVERY_S`, so a web process reads every tenant's engine with one
async Redis round trip and needs no Ray connection for it. Without Redis the web tier asks the
aggregators over Ray instead (`RiskAggregator.stats`).

A tenant stopped on purpose deletes its key at once, by one owner: a logical aggregator (in a
tenant host) closes, and its cancelled writer deletes the key (`keep_in_redis`); an aggregator
process of its own is killed, and the supervisor that killed it deletes the key (`forget`).
A paused, hung or dead engine does not: its key outlives it by `TTL_S`, long enough for its
`last_poll_at` to fall behind the clock and the stall alert (deploy/prometheus/alerts.yml: 20 s
behind, for 10 s) to fire. With a TTL of a few write periods the key vanished before the alert could
fire, and the series with it.

Counters are cumulative over the aggregator's life; a restarted aggregator starts them again from
zero, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

from veles.config import redis_name
from veles.risk.alerts import Alert, AlertStatus

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the lag histogram's buckets; the target is p99 under 0.25 s.
LAG_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WRITE_EVERY_S = 2.0
TTL_S = 600  # a stopped engine's key outlives it this long: see the module's docstring
KEY_PREFIX = "engine-stats:"  # after the deployment's prefix


def engine_stats_key(prefix: str, tenant_id: int) -> str:
    """The Redis key holding one tenant's engine metrics, in deployment `prefix`."""
    return redis_name(prefix, f"{KEY_PREFIX}{tenant_id}")


class LagHistogram:
    """Seconds from a batch leaving its gateway to the diff carrying it being published, as
    Prometheus histogram buckets (cumulative counts per upper bound, sum and count)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe_many(self, samples: Iterable[float]) -> None:
        """Count each sample in its bucket."""
        for sample in samples:
            self.counts[bisect_left(LAG_BUCKETS, sample)] += 1
            self.total += sample
            self.count += 1

    def cumulative(self) -> list[int]:
        """Counts at or below each bound, +Inf last (what Prometheus' `le` buckets hold)."""
        running, out = 0, []
        for n in self.counts:
            running += n
            out.append(running)
        return out


class EngineStats:
    """What `/metrics` shows of one tenant's engine."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.lag = LagHistogram()
        self.alerts: Counter[str] = Counter()  # raised, by severity
        self.supervisor: dict[str, Any] = {}  # actors, recovering, connections, restarts, reconciliation

    def count_alerts(self, alerts: Sequence[Alert]) -> None:
        """Count the raises (clears are not new alerts)."""
        self.alerts.update(a.severity.value for a in alerts if a.status is AlertStatus.RAISED)

    def as_row(self) -> dict[str, Any]:
        """Plain JSON: crosses Ray and Redis unchanged."""
        return {
            "tenant_id": self.tenant_id,
            "lag_buckets": list(LAG_BUCKETS),
            "lag_cumulative": self.lag.cumulative(),
            "lag_sum": self.lag.total,
            "lag_count": self.lag.count,
            "alerts": dict(self.alerts),
            "account_actors": self.supervisor.get("account_actors", 0),
            "recovering": self.supervisor.get("recovering", 0),
            "connections": self.supervisor.get("connections", 0),
            "restarts": dict(self.supervisor.get("restarts", {})),
            "polls": self.supervisor.get("polls", 0),
            "polls_merged": self.supervisor.get("polls_merged", 0),
            "last_poll_at": self.supervisor.get("last_poll_at", 0.0),
            "reconciliation": list(self.supervisor.get("reconciliation", [])),  # one view per connection
        }

    async def keep_in_redis(self, url: str, prefix: str) -> None:
        """Write `as_row()` to the tenant's key every WRITE_EVERY_S until cancelled; Redis being
        away is logged and tried again (the book does not depend on it). Cancelled means the tenant
        stops on purpose: the key goes with it, so no stall alert fires for it."""
        client = aioredis.Redis.from_url(url)
        key = engine_stats_key(prefix, self.tenant_id)
        try:
            while True:
                try:
                    await client.set(key, json.dumps(self.as_row()), ex=TTL_S)
                except Exception as exc:
                    log.warning("tenant %s: engine stats not written to Redis: %s", self.tenant_id, exc)
                await asyncio.sleep(WRITE_EVERY_S)
        except asyncio.CancelledError:
            await _delete(client, key, self.tenant_id)
            raise
        finally:
            await client.aclose()


async def _delete(client: aioredis.Redis, key: str, tenant_id: int) -> None:
    try:
        await client.delete(key)
    except Exception as exc:  # its TTL removes it later; until then it reads as a stalled engine
        log.warning("tenant %s: engine stats key not deleted: %s", tenant_id, exc)


async def forget(url: str, prefix: str, tenant_id: int) -> None:
    """Delete a tenant's stats key: its engine was stopped on purpose (a killed aggregator
    process cannot delete its own)."""
    client = aioredis.Redis.from_url(url)
    try:
        await _delete(client, engine_stats_key(prefix, tenant_id), tenant_id)
    finally:
        await client.aclose()
