"""The engine's followers: alert delivery and risk history recording for every active tenant.

They run in one detached Ray actor (`Followers`, named `followers`) rather than in the command that
starts the engine, so they live as long as the engine does (`veles engine` and `veles demo` call
`asyncio.run` more than once, which would end tasks of their own), and Ray restarts them after a
crash: the constructor starts the work itself, so a restarted actor needs nobody to call it. The
actor re-reads the active tenants every `REFRESH_S` seconds, so a tenant that signs up or is
resumed is followed without a restart, and a suspended one is let go.

Each tenant gets two tasks over one `LiveFeed`: alert delivery as a supervised consumer
(`DeliveryConsumer`: survives any message, restarted if it dies, its status written to Redis for
`/api/health/ready` and `/metrics`, see `veles/services/delivery_consumer.py`) and
`HistoryRecorder.run(feed.watch(t))`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

import ray

from veles.config import Settings
from veles.services.delivery import AlertDelivery
from veles.services.delivery_consumer import FOLLOWERS, DeliveryConsumer, DeliveryStatus, keep_status_in_redis
from veles.services.live import LiveFeed
from veles.services.ray_runtime import connect
from veles.services.recorder import HistoryRecorder
from veles.services.tenants import active_tenants

log = logging.getLogger(__name__)

REFRESH_S = 10.0
__all__ = ["FOLLOWERS", "Followers", "start_followers", "stop_followers"]


@ray.remote(num_cpus=0, max_restarts=-1)
class Followers:
    """Delivers alerts and records history for every active tenant until stopped."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._feed = LiveFeed(settings)
        self._tasks: dict[int, list[asyncio.Task[None]]] = {}
        self._consumers: dict[int, DeliveryConsumer] = {}
        loop = asyncio.get_running_loop()
        self._watcher = loop.create_task(self._follow_tenants())
        self._status_writer: asyncio.Task[None] | None = None
        if settings.redis_url:
            self._status_writer = loop.create_task(
                keep_status_in_redis(settings.redis_url, settings.redis_prefix, self._statuses))

    async def tenants(self) -> list[int]:
        """The tenants followed now."""
        return sorted(self._tasks)

    def _statuses(self) -> list[DeliveryStatus]:
        return [consumer.status for _, consumer in sorted(self._consumers.items())]

    async def delivery_status(self) -> list[dict[str, object]]:
        """Each followed tenant's alert delivery: state, restarts, failures, last delivered, lag."""
        return [status.as_row() for status in self._statuses()]

    async def kill_delivery(self, tenant_id: int) -> bool:
        """Cancel a tenant's running delivery consumer as a crash would end it (failure tests and
        operators check that it is restarted); False when the tenant has no running consumer."""
        consumer = self._consumers.get(tenant_id)
        if consumer is None or consumer.task is None or consumer.task.done():
            return False
        consumer.task.cancel()
        return True

    async def stop(self) -> None:
        """Let every tenant go (the engine is stopping)."""
        self._watcher.cancel()
        with suppress(asyncio.CancelledError):
            await self._watcher
        if self._status_writer is not None:
            self._status_writer.cancel()
            with suppress(asyncio.CancelledError):
                await self._status_writer
        for tenant_id in list(self._tasks):
            await self._drop(tenant_id)
        await self._feed.aclose()

    async def _follow_tenants(self) -> None:
        while True:
            try:
                active = {t for t, _ in await asyncio.to_thread(active_tenants, self._settings.database_url)}
            except Exception:  # the database is away: keep what runs, look again later
                log.exception("followers: cannot read the active tenants")
            else:
                for tenant_id in active - set(self._tasks):
                    consumer = self._consumer(tenant_id)
                    self._consumers[tenant_id] = consumer
                    self._tasks[tenant_id] = [
                        asyncio.create_task(consumer.run()),
                        asyncio.create_task(HistoryRecorder(self._settings, tenant_id).run(
                            self._feed.watch(tenant_id))),
                    ]
                for tenant_id in set(self._tasks) - active:
                    await self._drop(tenant_id)
            await asyncio.sleep(REFRESH_S)

    def _consumer(self, tenant_id: int) -> DeliveryConsumer:
        return DeliveryConsumer(lambda: AlertDelivery(self._settings, tenant_id),
                                lambda: self._feed.alert_stream(tenant_id), DeliveryStatus(tenant_id))

    async def _drop(self, tenant_id: int) -> None:
        self._consumers.pop(tenant_id, None)
        tasks = self._tasks.pop(tenant_id)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def start_followers(settings: Settings) -> list[int]:
    """Start the followers (or find the running ones); returns the tenants they follow so far."""
    connect(settings)
    followers = Followers.options(  # type: ignore[attr-defined]
        name=FOLLOWERS, namespace=settings.ray_namespace, lifetime="detached", get_if_exists=True
    ).remote(settings)
    tenants: list[int] = await followers.tenants.remote()
    return tenants


async def stop_followers(settings: Settings) -> None:
    """Stop the followers, if running, and remove the actor."""
    try:
        followers = ray.get_actor(FOLLOWERS, namespace=settings.ray_namespace)
    except ValueError:
        return
    with suppress(ray.exceptions.RayError, TimeoutError):
        await asyncio.wait_for(followers.stop.remote(), timeout=30)
    ray.kill(followers)
