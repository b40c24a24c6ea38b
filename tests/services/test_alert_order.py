"""Alerts are ordered (issue 15): each stored alert event takes the tenant's next sequence number,
gap-free, per tenant, going on where it was after the aggregator restarts; clients put what the
latest-wins topic reordered back in order and reload from the database when a number is missing.

Real PostgreSQL (row-level security applies) and the real Redis alert topic. The aggregator is its
real core (`BookPublisher`), reached in-process instead of over Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlmodel import col, select

from actors.risk_aggregator import BookPublisher
from actors.wire import alert_topic
from models.alerts import Alert
from models.db import session_scope
from models.tenancy import Tenant
from tests.actors.support import account_figures
from tests.stubs.remote import Remote
from veles.bus import RedisBus
from veles.config import Settings
from veles.risk.account import AccountFigures
from veles.services.alert_order import AlertSequencer
from veles.services.live import LiveFeed

pytestmark = [pytest.mark.postgres]


def _tenant(url: str) -> int:
    with session_scope(url) as db:
        tenant = Tenant(name=f"order-{uuid.uuid4().hex[:10]}")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        return tenant.id


def _stopped(login: int) -> AccountFigures:
    """An account at stop out: raises the built-in margin-call and stop-out alerts (two events)."""
    return dataclasses.replace(account_figures(), login=login, state="stop_out", margin_level=40.0)


def _healthy(login: int) -> AccountFigures:
    return dataclasses.replace(account_figures(), login=login, state="ok", margin_level=400.0)


def _row_seqs(url: str, tenant_id: int) -> list[int | None]:
    with session_scope(url) as db:
        statement = select(Alert.seq).where(Alert.tenant_id == tenant_id).order_by(col(Alert.id))
        return list(db.exec(statement).all())


def _msg(seq: int) -> dict[str, Any]:
    return {"seq": seq, "rule_id": "stop_out", "subject": str(seq), "status": "raised", "time_msc": seq}


# -- the sequencer each client runs -----------------------------------------------------------


def test_messages_that_arrive_out_of_order_are_applied_in_order() -> None:
    sequencer = AlertSequencer(last=0)
    applied = [m["seq"] for seq in (3, 1, 4, 2, 5) for m in sequencer.offer(_msg(seq))]
    assert applied == [1, 2, 3, 4, 5]
    assert sequencer.held == 0
    assert not sequencer.needs_reload()


def test_duplicates_and_what_a_load_covered_are_dropped() -> None:
    sequencer = AlertSequencer()  # unsynced: holds everything until its first load says where it stands
    assert sequencer.offer(_msg(7)) == []
    assert sequencer.offer(_msg(9)) == []
    assert [m["seq"] for m in sequencer.resync(7)] == []  # 7 was in the load; 8 is still missing
    assert sequencer.held == 1
    assert [m["seq"] for m in sequencer.offer(_msg(8))] == [8, 9]
    assert sequencer.offer(_msg(8)) == []
    assert sequencer.offer(_msg(2)) == []


def test_a_missing_number_asks_for_a_reload_once_it_has_waited() -> None:
    sequencer = AlertSequencer(last=0, gap_wait_s=0.2)
    assert [m["seq"] for m in sequencer.offer(_msg(1))] == [1]
    assert sequencer.offer(_msg(3)) == []
    assert not sequencer.needs_reload()  # it may still come
    time.sleep(0.25)
    assert sequencer.needs_reload()
    assert sequencer.reload_after() == 1
    assert [m["seq"] for m in sequencer.resync(2)] == [3]  # the reload reached 2; 3 follows it
    assert not sequencer.needs_reload()


def test_too_many_held_messages_reload_at_once() -> None:
    sequencer = AlertSequencer(last=0, max_held=3)
    for seq in (2, 3, 4):
        sequencer.offer(_msg(seq))
    assert sequencer.needs_reload()


def test_messages_without_a_number_pass_as_they_come() -> None:
    sequencer = AlertSequencer()
    unnumbered = {"seq": None, "rule_id": "stop_out"}
    assert sequencer.offer(unnumbered) == [unnumbered]


# -- numbers where alerts are stored ----------------------------------------------------------


async def test_the_sequence_is_per_tenant_and_gap_free(database: str) -> None:
    first, second = _tenant(database), _tenant(database)
    publishers = {t: BookPublisher(t, database_url=database) for t in (first, second)}
    for publisher in publishers.values():
        await publisher.load()
    await publishers[first].announce(publishers[first].apply([_stopped(1), _stopped(2)], sent_at=1.0))
    await publishers[second].announce(publishers[second].apply([_stopped(1)], sent_at=1.0))
    await publishers[first].announce(publishers[first].apply([_healthy(1)], sent_at=2.0))

    assert [m["seq"] for m in publishers[first].recent_alerts] == [1, 2, 3, 4, 5, 6]
    assert [m["seq"] for m in publishers[second].recent_alerts] == [1, 2]
    # each row keeps its latest event's number: account 1's two rows were cleared by events 5 and 6
    assert sorted(s for s in _row_seqs(database, first) if s is not None) == [3, 4, 5, 6]
    assert _row_seqs(database, second) == [1, 2]


async def test_the_sequence_goes_on_after_the_aggregator_restarts(database: str) -> None:
    tenant_id = _tenant(database)
    before = BookPublisher(tenant_id, database_url=database)
    await before.load()
    await before.announce(before.apply([_stopped(1)], sent_at=1.0))
    assert [m["seq"] for m in before.recent_alerts] == [1, 2]

    rebuilt = BookPublisher(tenant_id, database_url=database)  # what Ray's restart builds
    await rebuilt.load()
    assert rebuilt.seq == 2
    await rebuilt.announce(rebuilt.apply([_healthy(1), _stopped(2)], sent_at=2.0))
    assert [m["seq"] for m in rebuilt.recent_alerts] == [3, 4, 5, 6]


async def test_concurrent_batches_are_numbered_and_published_in_one_order(database: str) -> None:
    tenant_id = _tenant(database)
    publisher = BookPublisher(tenant_id, database_url=database)
    await publisher.load()
    await asyncio.gather(*(publisher.announce(publisher.apply([_stopped(login)], sent_at=1.0))
                           for login in range(1, 9)))
    assert [m["seq"] for m in publisher.recent_alerts] == list(range(1, 17))


# -- the stream consumers read (alert delivery) -------------------------------------------------


class _Aggregator:
    """The real aggregator core, called in-process the way LiveFeed calls the actor over Ray."""

    def __init__(self, core: BookPublisher) -> None:
        async def alerts() -> dict[str, Any]:
            return {"active": [], "recent": list(core.recent_alerts), "seq": core.seq}

        self.alerts = Remote(alerts)


@pytest.fixture
def redis_settings(database: str, redis_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database, redis_url=redis_url,  # type: ignore[call-arg]
                    veles_redis_prefix=f"order-{uuid.uuid4().hex[:8]}", ray_address=None)


class _Stream:
    """A tenant's alert stream as the delivery consumer reads it, collecting what it yields."""

    def __init__(self, settings: Settings, core: BookPublisher) -> None:
        self.settings, self.tenant_id = settings, core.tenant_id
        self.feed = LiveFeed(settings, aggregator=lambda _tenant: _Aggregator(core))
        self.got: list[dict[str, Any]] = []
        # One poll of the aggregator at the start (as every stream makes), then only the topic.
        self.task = asyncio.create_task(self._read(self.feed.alert_stream(self.tenant_id, poll_s=3600)))

    async def _read(self, stream: Any) -> None:
        async for alert in stream:
            self.got.append(alert)

    async def subscribed(self) -> None:
        client = aioredis.Redis.from_url(self.settings.redis_url or "")
        channel = RedisBus(self.settings.redis_url or "", self.settings.redis_prefix).channel(
            alert_topic(self.tenant_id))
        try:
            for _ in range(200):
                if dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the stream never subscribed to the alert topic")
        finally:
            await client.aclose()

    async def until(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count:
            assert time.monotonic() < deadline, f"the stream gave {self.got}, not {count} alerts"
            await asyncio.sleep(0.05)
        return self.got

    async def aclose(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.feed.aclose()


@contextlib.asynccontextmanager
async def _two_stop_outs(
    database: str, redis_settings: Settings
) -> AsyncIterator[tuple[_Stream, RedisBus, str, dict[int, dict[str, Any]]]]:
    """A subscribed stream and two stored stop-outs (seq 1-4), for a test to publish out of order."""
    core = BookPublisher(_tenant(database), database_url=database)
    await core.load()
    stream = _Stream(redis_settings, core)
    bus = RedisBus(redis_settings.redis_url or "", redis_settings.redis_prefix)
    try:
        await stream.subscribed()
        await core.announce(core.apply([_stopped(1), _stopped(2)], sent_at=1.0))
        yield stream, bus, alert_topic(core.tenant_id), {m["seq"]: m for m in core.recent_alerts}
    finally:
        await bus.aclose()
        await stream.aclose()


@pytest.mark.redis
async def test_out_of_order_delivery_on_the_topic_is_applied_in_order(
    database: str, redis_settings: Settings
) -> None:
    async with _two_stop_outs(database, redis_settings) as (stream, bus, topic, sent):
        for seq in (3, 1, 4, 2):  # as a merge of the topic and the recent list can bring them
            await bus.publish(topic, sent[seq])
            await asyncio.sleep(0.1)  # one at a time: the topic is latest-wins
        got = await stream.until(4)
        assert [m["seq"] for m in got] == [1, 2, 3, 4]
        assert not any(m.get("reloaded") for m in got)  # nothing was missing: no reload


@pytest.mark.redis
async def test_a_missing_number_is_reloaded_from_the_database(
    database: str, redis_settings: Settings
) -> None:
    async with _two_stop_outs(database, redis_settings) as (stream, bus, topic, sent):
        for seq in (1, 3, 4):  # 2 was lost by the latest-wins topic
            await bus.publish(topic, sent[seq])
            await asyncio.sleep(0.1)
        got = await stream.until(4)
        assert [m["seq"] for m in got] == [1, 2, 3, 4]
        assert [m.get("reloaded", False) for m in got] == [False, True, True, True]
        assert (got[1]["id"], got[1]["rule_id"], got[1]["subject"], got[1]["status"]) == (
            sent[2]["id"], sent[2]["rule_id"], sent[2]["subject"], "raised")
        assert got[1]["first_msc"] == sent[2]["first_msc"]  # delivery knows it by the same key
