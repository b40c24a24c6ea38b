"""Every Redis channel and key a Veles deployment uses, and the malformed messages `veles chaos`
puts on each.

Why a list. The chaos run must put a bad message on *every* channel and key, and a channel added
later must not escape it. Names are made in two ways only: `veles.config.redis_name(prefix, ...)`
call sites, and the bus topic functions (`*_topic`) that `veles.bus.RedisBus` prefixes. `SOURCES`
names each of those places; `tests/bench/test_chaos_targets.py` scans the code for them and fails
on one that is not listed here, so a new channel is covered before it lands. `IN_PROCESS` lists the
topic functions that never reach Redis (they travel on a `LocalBus`), with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from actors.engine_stats import KEY_PREFIX as ENGINE_STATS
from actors.wire import alert_topic, book_topic
from veles.config import redis_name
from veles.reports.runner import report_topic
from veles.services.alert_watch import alert_state_topic
from veles.services.delivery_consumer import STATUS_KEY
from veles.services.ratelimit import limit_key

Kind = Literal["channel", "key"]

# What goes on a channel: bytes that are not JSON, JSON that is not an object, and an object whose
# fields have the wrong types (it passes the bus's own check and reaches the consumer).
CHANNEL_JUNK: tuple[bytes, ...] = (
    b"\x00chaos: not json {",
    b"[1, 2, 3]",
    b'{"chaos": true, "version": "x", "epoch": [], "seq": "nope", "id": {}, "rule_id": 5, '
    b'"status": 7, "time_msc": "later", "accounts": 3, "book": "b", "full": "yes"}',
)
# What a key is overwritten with: not JSON, not a number, no expiry (the worst a stray writer or a
# half-written value can leave behind).
KEY_JUNK = b"\x00chaos: not json, not a number {"


@dataclass(frozen=True)
class Target:
    """One Redis channel or key of a deployment: its name after the prefix (`{tenant}` filled in
    per tenant), what kind it is, the code that makes the name (`SOURCES`) and who reads it."""

    name: str
    kind: Kind
    sources: tuple[str, ...]
    reader: str

    def redis_name(self, prefix: str, tenant_id: int) -> str:
        """The full name in the deployment's namespace."""
        return redis_name(prefix, self.name.format(tenant=tenant_id))


TENANT = 0  # a placeholder tenant id, only to read a topic function's shape
RATE_LIMIT_SAMPLE = limit_key("chaos", "chaos@veles.test")  # one counter key of the rate limiter

TARGETS: tuple[Target, ...] = (
    Target(book_topic(TENANT).replace(str(TENANT), "{tenant}"), "channel",
           ("actors/wire.py:book_topic",),
           "web replicas (LiveFeed: portal, API, risk history recorder)"),
    Target(alert_topic(TENANT).replace(str(TENANT), "{tenant}"), "channel",
           ("actors/wire.py:alert_topic",),
           "alert delivery (followers) and the portal's alert stream"),
    Target(alert_state_topic(TENANT).replace(str(TENANT), "{tenant}"), "channel",
           ("veles/services/alert_watch.py:alert_state_topic",
            "veles/services/alert_watch.py:redis_name:alert_state_topic(tenant_id)",
            "veles/services/alert_state.py:redis_name:alert_state_topic(tenant_id)"),
           "alerts pages and top-bar bells (AlertWatch) of every web process"),
    Target(report_topic(TENANT).replace(str(TENANT), "{tenant}"), "channel",
           ("veles/reports/runner.py:report_topic",),
           "report notices (ReportFeed)"),
    Target("token-versions", "channel",
           ("veles/services/sessions.py:redis_name:'token-versions'",),
           "session token cache (SessionVersions) of every web process"),
    Target("socketio", "channel",
           ("veles/api/realtime.py:redis_name:'socketio'",),
           "python-socketio's AsyncRedisManager of every web process (the integrations push API)"),
    Target(f"{ENGINE_STATS}{{tenant}}", "key",
           ("actors/engine_stats.py:redis_name:f'{KEY_PREFIX}{tenant_id}'",
            "veles/services/engine_metrics.py:redis_name:f'{KEY_PREFIX}*'"),
           "/metrics (read_engine_stats)"),
    Target(STATUS_KEY, "key",
           ("veles/services/delivery_consumer.py:redis_name:STATUS_KEY",),
           "/api/health/ready and /metrics (read_delivery_status)"),
    Target(RATE_LIMIT_SAMPLE, "key",
           ("veles/services/ratelimit.py:redis_name:key",),
           "sign-in, sign-up and API rate limits (RedisRateLimiter)"),
)

# Where a bus topic is turned into a channel for any topic function above (not a channel itself).
CARRIERS: tuple[str, ...] = ("veles/bus.py:redis_name:topic",)

IN_PROCESS: dict[str, str] = {
    "veles/services/alert_watch.py:_topic":
        "a LocalBus inside one web process (the alert bell's fan-out to its tabs); never on Redis",
}


def sources() -> set[str]:
    """Every name-making place this list accounts for (targets, carriers and in-process topics)."""
    return {source for target in TARGETS for source in target.sources} | set(CARRIERS) | set(IN_PROCESS)


async def inject(client: aioredis.Redis, prefix: str, tenant_id: int) -> dict[str, int]:
    """Put the malformed messages on every channel and overwrite every key with junk; how many
    went to each (by name after the prefix)."""
    counts: dict[str, int] = {}
    for target in TARGETS:
        name = target.redis_name(prefix, tenant_id)
        if target.kind == "channel":
            for junk in CHANNEL_JUNK:
                await client.publish(name, junk)
            counts[name.removeprefix(prefix)] = len(CHANNEL_JUNK)
        else:
            await client.set(name, KEY_JUNK)
            counts[name.removeprefix(prefix)] = 1
    return counts
