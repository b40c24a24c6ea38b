"""Fixed-window rate limits: Redis when REDIS_URL is set, otherwise an in-process counter.

Redis makes the limit hold across every web process (an attacker spreading sign-in attempts over
workers still meets one counter). The in-process limiter serves the embedded single-process setup
with the same interface, so callers never know which one they have.

Three uses: sign-in (`LOGIN_LIMIT`, 10, a minute per IP and per e-mail, the same counters for the API's
`/auth/token` and the portal's sign-in form, checked by `check_attempts`), sign-up (per IP, an hour's
window) and the API tiers (every /api/v1 request
counts per client IP, and when signed in per user and per tenant, with limits by plan). The client
IP is the TCP peer unless that peer is a configured trusted proxy, whose X-Forwarded-For is then
believed hop by hop.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import redis

from models.tenancy import Plan
from veles.config import Settings, redis_name

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every counter of one request in one round trip: for each key, INCR and (when it has none) PEXPIRE
# in one atomic step, so a crash between them cannot leave a counter that never expires (which would
# lock the key out for good). A key holding something INCR refuses (a stray writer's junk) starts a
# new window instead of failing every attempt for ever, and a count found without an expiry gets
# one. Returns count and remaining ms for each key, in order.
_HIT = """
local out = {}
for i, key in ipairs(KEYS) do
  local count = redis.pcall('INCR', key)
  if type(count) ~= 'number' then
    redis.call('SET', key, 1, 'PX', ARGV[1])
    count = 1
  end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  out[#out + 1] = count
  out[#out + 1] = ttl
end
return out
"""


_PRUNE_AT = 4096  # keys held before ended windows are swept out
MAX_KEYS = 100_000  # keys an in-process limiter counts at once, at most


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: allowed or not, and in how many seconds the window resets."""

    allowed: bool
    retry_after: int


@dataclass(frozen=True, slots=True)
class ApiTier:
    """API requests a minute a plan allows: for the whole tenant, and for each of its users."""

    per_tenant: int
    per_user: int


# Sized so a portal tab or an integration polling a few times a second fits the smallest plan with
# room to spare, and a bigger broker (more users, more integrations) buys more headroom.
API_TIERS: Mapping[Plan, ApiTier] = {
    Plan.STARTER: ApiTier(per_tenant=300, per_user=120),
    Plan.PROFESSIONAL: ApiTier(per_tenant=1_500, per_user=300),
    Plan.ENTERPRISE: ApiTier(per_tenant=6_000, per_user=1_200),
}


class LimiterUnavailable(RuntimeError):
    """The shared counter store (Redis) could not be reached, so no decision can be made."""

    def __init__(self, message: str, what: str = "Sign-in") -> None:
        super().__init__(message)
        self.what = what

    @property
    def user_message(self) -> str:
        """What to tell the person: the door is closed for a moment, not open without limit."""
        return (f"{self.what.capitalize()} is unavailable for a moment: the rate-limit store cannot be "
                "reached. Try again shortly.")


class TooManyAttempts(Exception):
    """An IP or an e-mail used up its attempts for the window; `retry_after` seconds to wait."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"Too many {what} attempts; try again in {retry_after} s.")
        self.retry_after = retry_after


class RateLimiter(Protocol):
    """Counts hits per key in fixed windows of `window` seconds, allowing `limit` per window."""

    def hit(self, key: str, limit: int | None = None) -> Decision:
        """Count one hit on `key` and say whether it is within `limit` (default: the limiter's)."""
        ...

    def hit_all(self, checks: Sequence[tuple[str, int | None]]) -> list[Decision]:
        """Count one hit on every `(key, limit)` at once (all are counted, also past a refusal) and
        return their decisions in order: one Redis round trip for a request's IP, user and tenant."""
        ...


def limit_key(kind: str, value: str) -> str:
    """A counter key that does not store e-mail addresses or IPs in clear in Redis."""
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"ratelimit:{kind}:{digest}"


class RedisRateLimiter:
    """Shared counters in Redis (INCR + PEXPIRE of every key in one Lua script call), each key in
    the deployment's namespace (`prefix`)."""

    def __init__(self, client: redis.Redis, limit: int, window: float, prefix: str) -> None:
        self._prefix = prefix
        self._limit = limit
        self._window_ms = int(window * 1000)
        self._script = client.register_script(_HIT)

    def hit(self, key: str, limit: int | None = None) -> Decision:
        """Count one hit; the window's remaining time becomes Retry-After."""
        return self.hit_all([(key, limit)])[0]

    def hit_all(self, checks: Sequence[tuple[str, int | None]]) -> list[Decision]:
        """Count a hit on each key in one script call. LimiterUnavailable when Redis does not
        answer, so callers can say so instead of failing with a 500."""
        try:
            flat = self._script(keys=[redis_name(self._prefix, key) for key, _ in checks],
                                args=[self._window_ms])
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"the rate-limit store (Redis) cannot be reached: {exc}") from exc
        return [
            Decision(allowed=int(count) <= (limit or self._limit),
                     retry_after=max(1, math.ceil(int(ttl) / 1000)))
            for (_, limit), count, ttl in zip(checks, flat[0::2], flat[1::2], strict=True)
        ]


class MemoryRateLimiter:
    """Per-process counters for the embedded setup (no REDIS_URL); thread-safe for sync endpoints."""

    def __init__(self, limit: int, window: float, max_keys: int = MAX_KEYS) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}
        self._next_prune = 0.0

    def hit(self, key: str, limit: int | None = None) -> Decision:
        """Count one hit in the key's current window; ended windows are dropped as the map grows
        (at most once a second: a sweep reads every key). At most `max_keys` keys are counted: a
        flood of new keys (distinct e-mails, say) within one window is refused, never let through
        and never allowed to grow the map without bound."""
        now = time.monotonic()
        with self._lock:
            if len(self._windows) > min(_PRUNE_AT, self._max_keys - 1) and now >= self._next_prune:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
                self._next_prune = now + 1.0
            if key not in self._windows and len(self._windows) >= self._max_keys:
                return Decision(allowed=False, retry_after=max(1, math.ceil(self._window)))
            count, resets_at = self._windows.get(key, (0, now + self._window))
            if resets_at <= now:
                count, resets_at = 0, now + self._window
            count += 1
            self._windows[key] = (count, resets_at)
        retry_after = max(1, math.ceil(resets_at - now))
        return Decision(allowed=count <= (limit or self._limit), retry_after=retry_after)

    def hit_all(self, checks: Sequence[tuple[str, int | None]]) -> list[Decision]:
        """Count a hit on each key (in-process: no round trip to save)."""
        return [self.hit(key, limit) for key, limit in checks]


def _limiter(settings: Settings, limit: int, window: float) -> RateLimiter:
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        return RedisRateLimiter(client, limit, window, settings.redis_prefix)
    return MemoryRateLimiter(limit, window)


LOGIN_WINDOW = 60.0


def login_limiter(settings: Settings, limit: int | None = None, window: float = LOGIN_WINDOW) -> RateLimiter:
    """The sign-in limiter for these settings (`LOGIN_LIMIT` a minute unless `limit` is given):
    Redis-backed when REDIS_URL is set."""
    return _limiter(settings, limit or settings.login_limit, window)


@cache
def _shared(redis_url: str | None, prefix: str, limit: int, window: float) -> RateLimiter:
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
        return RedisRateLimiter(client, limit, window, prefix)
    return MemoryRateLimiter(limit, window)


def shared_login_limiter(settings: Settings) -> RateLimiter:
    """The one sign-in limiter of this process (the portal's form and the API's routes of the
    served app): with Redis every process shares its counters anyway; embedded, one object does."""
    return _shared(settings.redis_url, settings.redis_prefix, settings.login_limit, LOGIN_WINDOW)


def shared_signup_limiter(settings: Settings) -> RateLimiter:
    """Sign-ups from one IP: `SIGNUP_IP_LIMIT` an hour (each starts a tenant and sends an e-mail)."""
    return _shared(settings.redis_url, settings.redis_prefix, settings.signup_ip_limit, 3600.0)


def check_attempts(limiter: RateLimiter, ip: str | None, email: str | None, *, kind: str = "login",
                   ip_limit: int | None = None, email_limit: int | None = None,
                   what: str = "sign-in") -> None:
    """TooManyAttempts when this IP or this e-mail has used up its attempts for the window (`kind`
    keeps sign-in, password-reset and sign-up counters apart; the limits override the limiter's).

    Both counters are hit on every attempt so one cannot be drained while the other is checked.
    LimiterUnavailable when the counters cannot be reached: callers refuse rather than go unlimited.
    """
    checks = [(limit_key(f"{kind}-ip", ip or "unknown"), ip_limit)]
    if email:
        checks.append((limit_key(f"{kind}-email", email), email_limit))
    try:
        decisions = limiter.hit_all(checks)
    except LimiterUnavailable as exc:
        raise LimiterUnavailable(str(exc), what) from exc
    refused = [d for d in decisions if not d.allowed]
    if refused:
        raise TooManyAttempts(what, max(d.retry_after for d in refused))


def api_limiter(settings: Settings) -> RateLimiter:
    """The API limiter: a minute's window; its default limit is the per-IP one."""
    return _limiter(settings, settings.api_ip_limit, 60.0)


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """The TRUSTED_PROXIES setting as networks; ValueError naming the setting and the bad entry."""
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network") from exc
    return tuple(networks)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool | None:
    """Whether `address` is a trusted proxy; None when it is not an IP address at all."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return any(ip in network for network in trusted)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str:
    """The client's IP: the TCP peer, unless the peer is a trusted proxy; then X-Forwarded-For is
    read from the right (the hop our proxy appended) past every trusted proxy to the first address
    that is not one. Entries a client wrote themselves sit further left and are never reached while
    an untrusted address stands between; garbage stops the walk at the last good hop."""
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    hop = peer
    for entry in reversed([part.strip() for part in forwarded_for.split(",")]):
        verdict = _trusted(entry, trusted)
        if verdict is None:
            return hop
        hop = entry
        if not verdict:
            return hop
    return hop
