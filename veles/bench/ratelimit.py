"""Benchmark of the API rate-limit check on a real Redis: a signed-in request's three counters
(IP, user, tenant) as three script calls, one round trip each (how it was done), versus one script
call over all three keys (`RateLimiter.hit_all`, how it is done now).

Both paths run the same number of checks on fresh keys one after the other, each check timed on
its own, so the report gives checks per second and the 99th percentile of one check. Round trips
dominate: the ratio grows with the network distance to Redis (here: localhost, its smallest).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

import redis

from veles.services.ratelimit import RedisRateLimiter


def _timed(check: Callable[[], object], count: int) -> dict[str, float]:
    durations = []
    for _ in range(count):
        start = time.perf_counter()
        check()
        durations.append(time.perf_counter() - start)
    return {"checks_per_s": round(count / sum(durations), 1),
            "p99_ms": round(statistics.quantiles(durations, n=100)[98] * 1000, 3)}


def run(redis_url: str, checks: int) -> dict[str, object]:
    """Time `checks` request checks each way against `redis_url`; its keys expire within a minute."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    run_id = uuid.uuid4().hex[:8]
    limiter = RedisRateLimiter(client, limit=10**9, window=60.0, prefix=f"veles-bench:{run_id}:")
    keys: list[tuple[str, int | None]] = [(kind, None) for kind in ("ip", "user", "tenant")]
    limiter.hit_all(keys)  # loads the script once, outside the timing

    def three_trips() -> object:
        return [limiter.hit(key, limit) for key, limit in keys]

    def one_trip() -> object:
        return limiter.hit_all(keys)

    old, new = _timed(three_trips, checks), _timed(one_trip, checks)
    return {"checks": checks, "three_round_trips": old, "one_round_trip": new,
            "speedup": round(new["checks_per_s"] / old["checks_per_s"], 2)}
