"""Alert delivery as a supervised consumer: it survives any message, is restarted if it dies, and
says how it is doing.

Why. One malformed message on the alert channel used to end a tenant's delivery task for good,
with nothing to restart it and readiness still saying ok: alerts were then lost in silence.

- **Any message**: `AlertDelivery.run` logs and counts a message it cannot deliver (`malformed`
  for a bad shape, `failures` for anything else) and goes on with the next.
- **Restarted**: `DeliveryConsumer.run` runs the consumer as a task and restarts it, with
  tenacity's exponential wait, whenever it ends: an exception, a stream that ended, or the task
  being cancelled by anything but `stop`. Restarts are bounded: after `MAX_RESTARTS` within
  `RESTART_WINDOW_S` the consumer stays down in state `failed`, visibly, rather than spinning.
- **Visible**: `DeliveryStatus` (state, restarts, failures, last delivered, lag) is kept per tenant;
  the followers write every tenant's status to one Redis key (`status_key`) every
  `WRITE_EVERY_S`, or answer over Ray without Redis, and the web tier's `/api/health/ready` and
  `/metrics` read it (`read_delivery_status`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import ray
import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from actors.wire import Row
from veles.config import Settings, redis_name
from veles.services.delivery import AlertDelivery

log = logging.getLogger(__name__)

MAX_RESTARTS = 10
RESTART_WINDOW_S = 300.0
WRITE_EVERY_S = 2.0
TTL_S = 30
STATUS_KEY = "delivery-status"  # after the deployment's prefix
FOLLOWERS = "followers"  # the Ray actor that runs the consumers (veles.services.followers)
RAY_TIMEOUT_S = 2.0

State = Literal["starting", "running", "restarting", "failed", "stopped"]


class ConsumerDied(RuntimeError):
    """The consumer task ended without being asked to (its stream ended, or it was cancelled)."""


@dataclass
class DeliveryStatus:
    """How one tenant's alert delivery is doing, as `/metrics` and readiness show it."""

    tenant_id: int
    state: State = "starting"
    restarts: int = 0
    delivered: int = 0
    failures: int = 0  # alerts whose delivery raised (the database away, a bug), counted and skipped
    malformed: int = 0  # messages that were not an alert (a field missing or of the wrong type)
    last_delivered: float | None = None  # unix time of the last alert handled to the end
    lag_seconds: float | None = None  # from the last alert's storing (wall clock) to its delivery
    last_error: str = ""

    def as_row(self) -> dict[str, Any]:
        """Plain JSON for Redis and Ray."""
        return asdict(self)


def status_key(prefix: str) -> str:
    """The Redis key holding every followed tenant's delivery status."""
    return redis_name(prefix, STATUS_KEY)


class _RecentFailures:
    """Deaths inside the restart window; tenacity stops restarting once there are `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque(maxlen=limit)

    def add(self) -> None:
        self.times.append(time.monotonic())

    def too_many(self, _state: RetryCallState) -> bool:
        now = time.monotonic()
        return sum(1 for t in self.times if now - t <= RESTART_WINDOW_S) >= self.limit


class DeliveryConsumer:
    """Runs one tenant's `AlertDelivery` over a fresh alert stream, restarting it when it dies."""

    def __init__(
        self,
        delivery: Callable[[], AlertDelivery],
        stream: Callable[[], AsyncIterator[Row]],
        status: DeliveryStatus,
        wait: float = 0.5,
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        self._delivery, self._stream = delivery, stream
        self.status = status
        self._wait = wait
        self.task: asyncio.Task[None] | None = None  # the consumer running now (tests kill it)
        self._failures = _RecentFailures(max_restarts)

    async def run(self) -> None:
        """Consume until cancelled; restart after any death; end in state `failed` when the
        restarts are used up."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            stop=self._failures.too_many,
            wait=wait_exponential(multiplier=self._wait, max=30.0),
            before_sleep=self._restarting,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._once()
        except asyncio.CancelledError:
            self.status.state = "stopped"
            raise
        except Exception as exc:
            self.status.state = "failed"
            self.status.last_error = _describe(exc)
            log.error("tenant %s: alert delivery failed for good after %d restarts: %s",
                      self.status.tenant_id, self.status.restarts, self.status.last_error)

    async def _once(self) -> None:
        self.task = asyncio.create_task(self._delivery().run(self._stream(), self.status))
        self.status.state = "running"
        try:
            await asyncio.wait({self.task})
        except asyncio.CancelledError:  # we are being stopped: stop the consumer too
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            raise
        self._failures.add()
        if self.task.cancelled():
            raise ConsumerDied("the consumer task was cancelled")
        error = self.task.exception()
        if error is not None:
            raise error
        raise ConsumerDied("the alert stream ended")

    def _restarting(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.status.state = "restarting"
        self.status.restarts += 1
        self.status.last_error = _describe(error)
        log.warning("tenant %s: alert delivery died (%s); restart %d", self.status.tenant_id,
                    self.status.last_error, self.status.restarts)


def _describe(error: BaseException | None) -> str:
    if error is None:
        return ""
    return f"{type(error).__name__}: {error}"[:500]


async def keep_status_in_redis(url: str, prefix: str, statuses: Callable[[], list[DeliveryStatus]]) -> None:
    """Write every tenant's status to `status_key` every WRITE_EVERY_S, for ever (expiring after
    TTL_S, so a followers process that died drops out by itself). Redis away is logged and tried
    again: delivery does not depend on it."""
    client = aioredis.Redis.from_url(url)
    try:
        while True:
            try:
                rows = [status.as_row() for status in statuses()]
                await client.set(status_key(prefix), json.dumps(rows), ex=TTL_S)
            except Exception as exc:
                log.warning("delivery status not written to Redis: %s", exc)
            await asyncio.sleep(WRITE_EVERY_S)
    finally:
        await client.aclose()


async def read_delivery_status(settings: Settings) -> list[dict[str, Any]] | None:
    """Every followed tenant's delivery status; None when no followers report (none run in this
    deployment, or they cannot be reached). Never joins Ray: without Redis it asks the followers
    only from a process already connected."""
    try:
        if settings.redis_url:
            client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
            try:
                raw = await client.get(status_key(settings.redis_prefix))
            finally:
                await client.aclose()
            return None if raw is None else list(json.loads(raw))
        if not ray.is_initialized():
            return None
        followers = ray.get_actor(FOLLOWERS, namespace=settings.ray_namespace)
        rows: list[dict[str, Any]] = await asyncio.wait_for(followers.delivery_status.remote(), RAY_TIMEOUT_S)
        return rows
    except Exception as exc:  # Redis or the followers away: say so by answering None
        log.debug("delivery status unavailable: %s", exc)
        return None


class DeliveryCollector(Collector):
    """Prometheus families of the alert delivery consumers, one sample per tenant."""

    def __init__(self, rows: list[dict[str, Any]] | None) -> None:
        self._rows = rows

    def collect(self) -> Iterator[Metric]:
        """Reachability, then per tenant: up, restarts, delivered, failures, malformed, last
        delivered and lag."""
        rows = self._rows or []
        reported = GaugeMetricFamily("veles_delivery_reported",
                                     "1 if this scrape read the alert delivery consumers' status.")
        reported.add_metric([], 0 if self._rows is None else 1)
        yield reported
        up = GaugeMetricFamily("veles_delivery_up", "1 while the tenant's alert delivery consumer runs.",
                               labels=["tenant", "state"])
        counters = {
            name: CounterMetricFamily(f"veles_delivery_{name}", text, labels=["tenant"])
            for name, text in (("restarts", "Restarts of the alert delivery consumer."),
                               ("delivered", "Alerts delivered to the end."),
                               ("failures", "Alerts whose delivery raised (counted and skipped)."),
                               ("malformed", "Messages on the alert channel that were not alerts."))
        }
        last = GaugeMetricFamily("veles_delivery_last_delivered_timestamp_seconds",
                                 "When the last alert was delivered (unix time).", labels=["tenant"])
        lag = GaugeMetricFamily("veles_delivery_lag_seconds",
                                "Seconds from the last delivered alert's raise to its delivery.",
                                labels=["tenant"])
        for row in rows:
            tenant = str(row["tenant_id"])
            up.add_metric([tenant, str(row["state"])], 1 if row["state"] == "running" else 0)
            for name, family in counters.items():
                family.add_metric([tenant], row[name])
            if row.get("last_delivered") is not None:
                last.add_metric([tenant], row["last_delivered"])
            if row.get("lag_seconds") is not None:
                lag.add_metric([tenant], row["lag_seconds"])
        yield up
        yield from counters.values()
        yield from (last, lag)


def delivery_problems(rows: list[dict[str, Any]]) -> list[str]:
    """What readiness reports: each tenant whose consumer is down for good (`failed`)."""
    return [f"tenant {row['tenant_id']}: alert delivery {row['state']} ({row.get('last_error', '')})"
            for row in rows if row["state"] == "failed"]
