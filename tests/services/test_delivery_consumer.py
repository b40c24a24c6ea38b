"""Alert delivery as a supervised consumer (issue 15): a malformed message on the alert channel
ended delivery for good, nothing restarted it, and readiness still said ok.

Real PostgreSQL, the real Redis alert channel (through LiveFeed, as the followers run it) and the
real API for readiness and metrics.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from actors.wire import alert_topic
from models.db import session_scope, tenant_session
from models.notifications import Channel
from models.tenancy import Role, Tenant, User
from veles.api import create_api
from veles.bus import RedisBus
from veles.config import Settings
from veles.services.delivery import AlertDelivery, deliveries
from veles.services.delivery_consumer import (
    DeliveryConsumer,
    DeliveryStatus,
    keep_status_in_redis,
    read_delivery_status,
)
from veles.services.live import LiveFeed

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def settings(database: str, redis_url: str) -> Settings:
    """A deployment of its own: a Redis prefix no other test reads."""
    return Settings(_env_file=None, database_url=database, redis_url=redis_url,  # type: ignore[call-arg]
                    veles_redis_prefix=f"consumer-{uuid.uuid4().hex[:8]}", ray_address=None)


@pytest.fixture
def tenant(database: str) -> int:
    """A tenant with one risk manager (portal delivery by default)."""
    with session_scope(database) as db:
        row = Tenant(name=f"consumer-{uuid.uuid4().hex[:8]}")
        db.add(row)
        db.flush()
        assert row.id is not None
        db.add(User(tenant_id=row.id, email=f"dealer-{row.id}@broker.test", password_hash="x",
                    role=Role.RISK_MANAGER))
        return row.id


def good(subject: str) -> dict[str, Any]:
    return {"id": None, "rule_id": "stop_out", "kind": "account_state", "severity": "critical",
            "subject": subject, "value": 40.0, "threshold": 2.0, "status": "raised",
            "time_msc": int(time.time() * 1000), "message": f"Account {subject} reached stop out.",
            "stored_at": time.time()}


def delivered_subjects(database: str, tenant_id: int) -> set[str]:
    with tenant_session(database, tenant_id) as db:
        rows = deliveries(db, tenant_id, limit=100)
    return {r.alert_key.split(":")[1] for r in rows if r.channel is Channel.PORTAL}


async def until(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any], what: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Running:
    """A consumer over the tenant's real alert stream, as `Followers` runs it."""

    def __init__(self, settings: Settings, tenant_id: int) -> None:
        self.feed = LiveFeed(settings)
        self.status = DeliveryStatus(tenant_id)
        self.consumer = DeliveryConsumer(
            lambda: AlertDelivery(settings, tenant_id, flush_every=0.2),
            lambda: self.feed.alert_stream(tenant_id, poll_s=0.5), self.status, wait=0.05)
        self.task = asyncio.create_task(self.consumer.run())

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.feed.aclose()


async def publish_until(
    bus: RedisBus, tenant_id: int, message: dict[str, Any], done: Callable[[], bool]
) -> None:
    """Publish until `done` (the consumer's subscription is asynchronous, so the first may be early)."""
    for _ in range(100):
        await bus.publish(alert_topic(tenant_id), message)
        for _ in range(5):
            await asyncio.sleep(0.05)
            if done():
                return
    raise AssertionError("never consumed")


async def test_a_malformed_message_is_counted_and_the_next_alert_is_delivered(
    settings: Settings, database: str, tenant: int
) -> None:
    running = Running(settings, tenant)
    bus = RedisBus(settings.redis_url or "", settings.redis_prefix)
    raw = aioredis.Redis.from_url(settings.redis_url or "")
    try:
        # a message that is an object but no alert: today's stream died on its missing fields
        await publish_until(bus, tenant, {"rule_id": 3}, lambda: running.status.malformed >= 1)
        await raw.publish(bus.channel(alert_topic(tenant)), b"\x00 not json")
        await bus.publish(alert_topic(tenant), {"severity": "loud", **{k: v for k, v in good("9").items()
                                                                       if k != "severity"}})
        # the feed's clock is the MT5 server's (here New York time, 5 h behind UTC), not the lag's
        server_msc = int((time.time() - 5 * 3600) * 1000)
        await bus.publish(alert_topic(tenant), {**good("100042"), "time_msc": server_msc})
        await until(lambda: running.status.delivered >= 1, "the good alert delivered")
        assert "100042" in delivered_subjects(database, tenant)
        assert running.status.state == "running"
        assert running.status.restarts == 0
        assert running.status.malformed >= 2
        assert running.status.delivered >= 1
        assert running.status.last_delivered is not None
        assert running.status.lag_seconds is not None
        assert running.status.lag_seconds < 30
        assert "9" not in delivered_subjects(database, tenant)
    finally:
        await running.aclose()
        await bus.aclose()
        await raw.aclose()


async def test_a_killed_consumer_is_restarted_and_delivers_again(
    settings: Settings, database: str, tenant: int
) -> None:
    running = Running(settings, tenant)
    bus = RedisBus(settings.redis_url or "", settings.redis_prefix)
    try:
        await publish_until(bus, tenant, good("1"), lambda: running.status.delivered >= 1)
        first = running.consumer.task
        assert first is not None
        first.cancel()  # as a crash would end it
        await until(lambda: running.status.restarts == 1 and running.consumer.task is not first
                    and running.status.state == "running", "the restart")
        assert "CancelledError" in running.status.last_error or "cancelled" in running.status.last_error
        await publish_until(bus, tenant, good("2"), lambda: "2" in delivered_subjects(database, tenant))
    finally:
        await running.aclose()
        await bus.aclose()


async def _dying_stream() -> AsyncIterator[dict[str, Any]]:
    raise RuntimeError("Redis went away for good")
    yield {}  # pragma: no cover  (makes this an async generator)


async def test_readiness_and_metrics_report_a_consumer_down_for_good(
    settings: Settings, database: str, tenant: int
) -> None:
    status = DeliveryStatus(tenant)
    consumer = DeliveryConsumer(lambda: AlertDelivery(settings, tenant), _dying_stream, status,
                                wait=0.01, max_restarts=3)
    writer = asyncio.create_task(keep_status_in_redis(settings.redis_url or "", settings.redis_prefix,
                                                      lambda: [status]))
    try:
        with TestClient(create_api(settings), client=("127.0.0.1", 50_000)) as client:  # /metrics: local
            await until(lambda: read_delivery_status(settings), "the status in Redis")
            ready = await asyncio.to_thread(client.get, "/api/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["alert_delivery"]["status"] == "ok"

            await asyncio.wait_for(consumer.run(), 30)  # restarts used up: returns, failed
            assert status.state == "failed"
            assert status.restarts == 2
            assert "Redis went away for good" in status.last_error

            async def reported_failed() -> bool:
                rows = await read_delivery_status(settings)
                return bool(rows) and rows[0]["state"] == "failed"

            await until(reported_failed, "the failed state in Redis")
            ready = await asyncio.to_thread(client.get, "/api/health/ready")
            assert ready.status_code == 503
            assert "alert_delivery" in ready.json()["failed"]
            assert "Redis went away for good" in ready.json()["checks"]["alert_delivery"]["error"]
            metrics = (await asyncio.to_thread(client.get, "/metrics")).text
            assert f'veles_delivery_up{{state="failed",tenant="{tenant}"}} 0.0' in metrics
            assert f'veles_delivery_restarts_total{{tenant="{tenant}"}} 2.0' in metrics
            assert "veles_delivery_reported 1.0" in metrics
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
