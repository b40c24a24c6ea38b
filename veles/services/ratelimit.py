"""Fixed-window rate limits: Redis when REDIS_URL is set, otherwise an in-process counter.

Redis makes the limit hold across every web process (an attacker spreading sign-in attempts over
workers still meets one counter). The in-process limiter serves the embedded single-process setup
with the same interface, so callers never know which one they have.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

from veles.config import Settings

# INCR and the first PEXPIRE in one atomic step, so a crash between them cannot leave a counter
# that never expires (which would lock the key out for good).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('PTTL', KEYS[1])}
"""


_PRUNE_AT = 4096  # keys held before ended windows are swept out


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: allowed or not, and in how many seconds the window resets."""

    allowed: bool
    retry_after: int


class RateLimiter(Protocol):
    """Counts hits per key in fixed windows of `window` seconds, allowing `limit` per window."""

    def hit(self, key: str) -> Decision:
        """Count one hit on `key` and say whether it is within the limit."""
        ...


def limit_key(kind: str, value: str) -> str:
    """A counter key that does not store e-mail addresses or IPs in clear in Redis."""
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"veles:ratelimit:{kind}:{digest}"


class RedisRateLimiter:
    """Shared counters in Redis (INCR + PEXPIRE in a Lua script)."""

    def __init__(self, client: redis.Redis, limit: int, window: float) -> None:
        self._limit = limit
        self._window_ms = int(window * 1000)
        self._script = client.register_script(_HIT)

    def hit(self, key: str) -> Decision:
        """Count one hit; the window's remaining time becomes Retry-After."""
        count, ttl_ms = self._script(keys=[key], args=[self._window_ms])
        retry_after = max(1, math.ceil(int(ttl_ms) / 1000))
        return Decision(allowed=int(count) <= self._limit, retry_after=retry_after)


class MemoryRateLimiter:
    """Per-process counters for the embedded setup (no REDIS_URL); thread-safe for sync endpoints."""

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}

    def hit(self, key: str) -> Decision:
        """Count one hit in the key's current window; ended windows are dropped as the map grows."""
        now = time.monotonic()
        with self._lock:
            if len(self._windows) > _PRUNE_AT:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
            count, resets_at = self._windows.get(key, (0, now + self._window))
            if resets_at <= now:
                count, resets_at = 0, now + self._window
            count += 1
            self._windows[key] = (count, resets_at)
        return Decision(allowed=count <= self._limit, retry_after=max(1, math.ceil(resets_at - now)))


def login_limiter(settings: Settings, limit: int = 10, window: float = 60.0) -> RateLimiter:
    """The sign-in limiter for these settings: Redis-backed when REDIS_URL is set."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        return RedisRateLimiter(client, limit, window)
    return MemoryRateLimiter(limit, window)
