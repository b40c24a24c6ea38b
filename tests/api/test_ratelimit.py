"""The API's limits on the real Redis: a request's IP, user and tenant counters in one round trip."""

from __future__ import annotations

from typing import Any, cast

import pytest
import redis

from veles.services.ratelimit import LimiterUnavailable, MemoryRateLimiter, RedisRateLimiter


class CountingRedis(redis.Redis):
    """A real client that counts the commands it sends (a script call is one EVALSHA)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        CountingRedis.sent += 1
        return super().execute_command(*args, **options)


def test_three_counters_cost_one_round_trip_and_keep_their_own_limits(redis_url: str) -> None:
    client = CountingRedis.from_url(redis_url)
    limiter = RedisRateLimiter(client, limit=5, window=60, prefix="deploy-a:")
    checks: list[tuple[str, int | None]] = [("ip", None), ("user", 2), ("tenant", 3)]
    limiter.hit_all(checks)  # the first call also loads the script (EVALSHA, then SCRIPT LOAD + retry)
    CountingRedis.sent = 0
    second = limiter.hit_all(checks)
    assert CountingRedis.sent == 1
    assert [d.allowed for d in second] == [True, True, True]
    third = limiter.hit_all(checks)
    assert [d.allowed for d in third] == [True, False, True]  # the user's limit of 2 is passed first
    fourth = limiter.hit_all(checks)
    assert [d.allowed for d in fourth] == [True, False, False]
    # every counter counted every request, also the ones already refused
    # (in the deployment's namespace: nothing is written outside it)
    assert [client.get(f"deploy-a:{key}") for key, _ in checks] == [b"4", b"4", b"4"]
    assert client.keys("ip") == []
    assert all(55 <= d.retry_after <= 60 for d in fourth)
    assert 55_000 <= cast(int, client.pttl("deploy-a:tenant")) <= 60_000


def test_two_deployments_on_one_redis_count_apart(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    one = RedisRateLimiter(client, limit=1, window=30, prefix="deploy-a:")
    other = RedisRateLimiter(client, limit=1, window=30, prefix="deploy-b:")
    assert one.hit("ratelimit:login-ip:x").allowed
    assert not one.hit("ratelimit:login-ip:x").allowed
    assert other.hit("ratelimit:login-ip:x").allowed  # the other deployment's counter is its own


def test_one_hit_is_a_list_of_one(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url), limit=1, window=30, prefix="t:")
    assert limiter.hit("k").allowed
    refused = limiter.hit("k")
    assert not refused.allowed
    assert 1 <= refused.retry_after <= 30


def test_redis_down_is_limiter_unavailable() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    limiter = RedisRateLimiter(client, limit=5, window=60, prefix="t:")
    with pytest.raises(LimiterUnavailable, match="cannot be reached"):
        limiter.hit_all([("a", None), ("b", None)])


def test_the_in_process_limiter_answers_the_same_way() -> None:
    limiter = MemoryRateLimiter(limit=5, window=60)
    checks: list[tuple[str, int | None]] = [("ip", None), ("user", 1)]
    assert [d.allowed for d in limiter.hit_all(checks)] == [True, True]
    assert [d.allowed for d in limiter.hit_all(checks)] == [True, False]


def test_the_in_process_limiter_counts_a_bounded_number_of_keys() -> None:
    """A flood of distinct keys (e-mails) within one window grew the map without bound (and,
    past 4,096 keys, swept all of them on every hit). Now at most `max_keys` are counted: a new key
    beyond them is refused, keys already counted go on as before, and ended windows make room."""
    import time

    limiter = MemoryRateLimiter(limit=3, window=0.3, max_keys=10)
    assert all(limiter.hit(f"flood-{i}").allowed for i in range(10))
    refused = limiter.hit("one-more")
    assert not refused.allowed
    assert refused.retry_after >= 1
    assert len(limiter._windows) == 10
    assert limiter.hit("flood-0").allowed  # its second hit: still counted, under its limit
    time.sleep(1.1)  # every window ended, and the sweep may run again
    assert limiter.hit("one-more").allowed
    assert len(limiter._windows) == 1


def test_a_counter_spoiled_by_a_stray_writer_starts_a_new_window(redis_url: str) -> None:
    """A key holding junk (found by `veles chaos`) made INCR fail on every attempt, for ever: that
    e-mail or IP could not sign in again ("the rate-limit store cannot be reached")."""
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, limit=5, window=30, prefix="t:")
    client.set("t:login:spoiled", b"\x00not a number {")  # and no expiry

    assert limiter.hit("login:spoiled").allowed
    assert client.get("t:login:spoiled") == b"1"
    assert 0 < cast(int, client.pttl("t:login:spoiled")) <= 30_000


def test_a_count_left_without_expiry_gets_one(redis_url: str) -> None:
    """A count with no expiry (written by hand, or restored without its TTL) never ended its window."""
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, limit=5, window=30, prefix="t:")
    client.set("t:login:stuck", 12)

    refused = limiter.hit("login:stuck")

    assert not refused.allowed
    assert 1 <= refused.retry_after <= 30
    assert 0 < cast(int, client.pttl("t:login:stuck")) <= 30_000
