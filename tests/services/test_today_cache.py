"""The dashboard's shared cache of today's deal sums: one read per tenant per TTL however many tabs
ask, reads off the event loop, failures not kept, a new day read afresh, bounded. The reads here
are plain functions (the deal log query itself is tested in tests/services/test_desk.py); the
clock is the test's, so nothing waits for the TTL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from veles.services.today_cache import TodayDeals

DAY = datetime(2026, 12, 7, tzinfo=UTC)


class Log:
    """A deal log stand-in that counts its reads and notes the thread each ran in."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[int, datetime]] = []
        self.threads: set[int] = set()
        self.delay = delay
        self.fail = False

    def __call__(self, tenant_id: int, day: datetime) -> dict[int, dict[str, int]]:
        self.calls.append((tenant_id, day))
        self.threads.add(threading.get_ident())
        if self.delay:
            threading.Event().wait(self.delay)
        if self.fail:
            raise ConnectionError("database away")
        return {tenant_id: {"closed": len(self.calls), "deposits": 0, "withdrawals": 0, "volume": 0}}


async def test_many_tabs_at_once_cost_one_read_off_the_loop() -> None:
    now = [0.0]
    log = Log(delay=0.05)
    cache = TodayDeals(log, clock=lambda: now[0], today=lambda: DAY)
    answers = await asyncio.gather(*(cache.get(7) for _ in range(50)))
    assert len(log.calls) == cache.reads == 1
    assert all(a == answers[0] for a in answers)
    assert threading.get_ident() not in log.threads  # read in a worker thread, not on the loop
    now[0] = 4.9  # within the TTL: the same answer, no read
    assert await cache.get(7) == answers[0]
    assert len(log.calls) == 1
    now[0] = 5.0  # the TTL passed: read again
    assert (await cache.get(7))[7]["closed"] == 2
    await cache.get(8)  # another tenant has its own answer
    assert log.calls[-1] == (8, DAY)


async def test_a_failed_read_is_not_kept() -> None:
    log = Log()
    cache = TodayDeals(log, clock=lambda: 0.0, today=lambda: DAY)
    log.fail = True
    with pytest.raises(ConnectionError):
        await cache.get(1)
    log.fail = False
    assert (await cache.get(1))[1]["closed"] == 2  # tried again at once, not a cached failure
    assert cache.reads == 2


async def test_a_new_day_is_read_afresh() -> None:
    day = [DAY]
    log = Log()
    cache = TodayDeals(log, clock=lambda: 0.0, today=lambda: day[0])
    await cache.get(1)
    day[0] = datetime(2026, 12, 8, tzinfo=UTC)  # midnight passed within the TTL
    await cache.get(1)
    assert [d for _, d in log.calls] == [DAY, day[0]]


async def test_it_keeps_at_most_max_tenants_least_recently_asked_leaving_first() -> None:
    log = Log()
    cache = TodayDeals(log, clock=lambda: 0.0, today=lambda: DAY, max_tenants=3)
    for tenant in (1, 2, 3):
        await cache.get(tenant)
    await cache.get(1)  # asked again: now the most recent
    await cache.get(4)  # 2 leaves
    assert len(cache) == 3
    reads = cache.reads
    await cache.get(1)
    await cache.get(3)
    assert cache.reads == reads  # still kept
    await cache.get(2)
    assert cache.reads == reads + 1  # had left: read again


async def test_a_tab_that_goes_away_does_not_cancel_the_others_read() -> None:
    log = Log(delay=0.1)
    cache = TodayDeals(log, clock=lambda: 0.0, today=lambda: DAY)
    leaving = asyncio.create_task(cache.get(1))
    staying = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0.02)
    leaving.cancel()
    assert (await staying)[1]["closed"] == 1
    assert cache.reads == 1
