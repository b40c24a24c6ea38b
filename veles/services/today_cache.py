"""Today's deal sums per tenant, read from the deal log at most once per TTL in this process.

Why. Every open dashboard tab sums the tenant's deals since midnight (`desk.deals_today`, a
GROUP BY over the day's deal log) every few seconds; with many tabs of one broker open that is
one identical query per tab. Here the tabs of a tenant share one answer: a read younger than the
TTL is handed out as it is, and tabs asking while a read is in flight wait for that read rather
than start their own. The read runs in a thread (never on the event loop), a failed read is not
kept (the next ask tries again), an answer from before midnight UTC is not today's, and at most
`max_tenants` answers are kept (the least recently asked leaves first).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from veles.services import desk

Deals = dict[int, dict[str, int]]
TTL_S = 5.0  # the deal log is written every ~0.5 s; the day's sums need no fresher answer
MAX_TENANTS = 256


@dataclass(frozen=True, slots=True)
class _Answer:
    day: datetime
    read_at: float
    deals: Deals


class TodayDeals:
    """Per tenant, the latest `read(tenant_id, start_of_day)` answer (see the module docstring).
    `reads` counts the reads started, so a test or a metric can tell how many the tabs cost."""

    def __init__(self, read: Callable[[int, datetime], Deals], *, ttl_s: float = TTL_S,
                 max_tenants: int = MAX_TENANTS, clock: Callable[[], float] | None = None,
                 today: Callable[[], datetime] = desk.start_of_day) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._max = max_tenants
        self._clock = clock
        self._today = today
        self._answers: OrderedDict[int, _Answer] = OrderedDict()
        self._pending: dict[int, asyncio.Task[Deals]] = {}
        self.reads = 0

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def get(self, tenant_id: int) -> Deals:
        """The tenant's sums since midnight UTC, at most `ttl_s` old; raises what the read raised."""
        day, now = self._today(), self._now()
        answer = self._answers.get(tenant_id)
        if answer is not None and answer.day == day and now - answer.read_at < self._ttl_s:
            self._answers.move_to_end(tenant_id)
            return answer.deals
        task = self._pending.get(tenant_id)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.get_running_loop().create_task(self._fetch(tenant_id, day, now))
            self._pending[tenant_id] = task
        return await asyncio.shield(task)  # a tab that goes away does not cancel the others' read

    async def _fetch(self, tenant_id: int, day: datetime, started: float) -> Deals:
        self.reads += 1
        try:
            deals = await asyncio.to_thread(self._read, tenant_id, day)
        finally:
            self._pending.pop(tenant_id, None)
        self._answers[tenant_id] = _Answer(day, started, deals)
        self._answers.move_to_end(tenant_id)
        while len(self._answers) > self._max:
            self._answers.popitem(last=False)
        return deals

    def __len__(self) -> int:
        return len(self._answers)


_shared: TodayDeals | None = None


def today_deals(database_url: str) -> TodayDeals:
    """This process's shared cache over the deal log at `database_url` (one per process: the
    dashboard tabs of every tenant use it)."""
    global _shared
    if _shared is None:
        _shared = TodayDeals(lambda tenant_id, day: desk.deals_today(database_url, tenant_id, day))
    return _shared
