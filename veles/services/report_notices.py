"""Report status changes as they happen, for this web process's browser tabs and API sockets.

One `ReportFeed` per web process follows each tenant somebody here watches. The database is the
truth: on every wake-up the feed reads the status of the tenant's newest reports and tells its
watchers what changed since the last read (queued, running, ready, failed with the reason). So a
wake-up that is lost or merged with another loses nothing, and two processes never disagree.

What wakes it: with REDIS_URL, the report worker's message on the bus topic `reports:<tenant>`
(`veles.reports.runner.report_topic`), which arrives within milliseconds, plus a read every
`SAFETY_S` in case the bus dropped one. A pump that cannot subscribe for `feed_retry.GIVE_UP_S`
ends (logged, counted in `/metrics`); the reads then come every `POLL_S` until the next watcher
starts a new pump. Without Redis (the embedded demo, where the worker runs
in a Ray process and the bus cannot cross processes) a read every `POLL_S`: one small indexed
query per watched tenant per process, however many tabs watch it.

Each watcher has its own queue (not the bus's latest-wins box): a tab that is told one report is
ready is never told the next one is instead.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from models.db import tenant_session
from models.reports import Report
from veles.bus import RedisBus
from veles.config import Settings, get_settings
from veles.reports.runner import report_topic
from veles.services.feed_retry import GIVE_UP_S, REPORT_TOPIC, Health, follow

log = logging.getLogger(__name__)

POLL_S = 0.5  # without Redis: how often a watched tenant's reports are read
SAFETY_S = 5.0  # with Redis: a read this often even without a message
RECENT = 100  # the newest reports of a tenant whose status is followed
QUEUE = 200  # notices a watcher may fall behind by before the oldest are dropped


@dataclass(frozen=True)
class Notice:
    """One report's new status, as tabs and the socket.io `report` event carry it."""

    report_id: int
    tenant_id: int
    status: str
    type: str
    format: str
    requested_by: int | None
    error: str | None

    def message(self) -> dict[str, Any]:
        """The notice as JSON-ready data."""
        return asdict(self)


def read_statuses(url: str, tenant_id: int) -> dict[int, Notice]:
    """The current status of the tenant's newest reports, by id (blocks: run it in a thread)."""
    with tenant_session(url, tenant_id) as db:
        rows = db.execute(
            select(
                col(Report.id), col(Report.status), col(Report.type), col(Report.format),
                col(Report.requested_by), col(Report.error),
            )
            .where(col(Report.tenant_id) == tenant_id)
            .order_by(col(Report.id).desc())
            .limit(RECENT)
        ).all()
    return {
        int(report_id): Notice(int(report_id), tenant_id, status.value, kind.value, fmt.value, by, error)
        for report_id, status, kind, fmt, by, error in rows
    }


def changes(before: dict[int, Notice], after: dict[int, Notice]) -> list[Notice]:
    """What is new or has moved on between two reads, oldest report first."""
    return [notice for report_id, notice in sorted(after.items()) if before.get(report_id) != notice]


class _Tenant:
    """The watchers of one tenant, the task that follows it and (with Redis) the pump that wakes it."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Notice]] = set()
        self.task: asyncio.Task[None] | None = None
        self.pump: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()

    def pumping(self) -> bool:
        """Whether the bus wakes this tenant's reads (a pump runs and has not given up)."""
        return self.pump is not None and not self.pump.done()


class Watch:
    """One watcher's notices: an async iterator and context manager (see `ReportFeed.watch`)."""

    def __init__(self, feed: ReportFeed, tenant_id: int, tenant: _Tenant, idle_s: float | None) -> None:
        self._feed, self._tenant_id, self._tenant, self._idle_s = feed, tenant_id, tenant, idle_s
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(QUEUE)
        tenant.queues.add(self._queue)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Notice | None:
        try:
            return await asyncio.wait_for(self._queue.get(), self._idle_s)
        except TimeoutError:
            return None

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop watching; the tenant is no longer followed once its last watcher leaves."""
        self._feed._leave(self._tenant_id, self._tenant, self._queue)


class ReportFeed:
    """Follows the watched tenants' reports and hands each change to every watcher of its tenant."""

    def __init__(self, settings: Settings, poll_s: float = POLL_S, safety_s: float = SAFETY_S,
                 give_up_s: float = GIVE_UP_S) -> None:
        self._settings = settings
        self._poll_s, self._safety_s, self._give_up_s = poll_s, safety_s, give_up_s
        self._tenants: dict[int, _Tenant] = {}

    def pumping(self, tenant_id: int) -> bool:
        """Whether a bus pump wakes the tenant's reads now (health pages and tests)."""
        tenant = self._tenants.get(tenant_id)
        return tenant is not None and tenant.pumping()

    def watch(self, tenant_id: int, idle_s: float | None = None) -> Watch:
        """Every change of the tenant's reports from now on (registered at once, not at the first
        `anext`); None after `idle_s` seconds without one (so a caller can check whether it is
        still wanted), if given. Close it (`aclose`, or `async with`) when done."""
        tenant = self._tenants.setdefault(tenant_id, _Tenant())
        if tenant.task is None or tenant.task.done():
            tenant.task = asyncio.create_task(self._follow(tenant_id, tenant))
        if self._settings.redis_url and not tenant.pumping():  # none yet, or it gave up: start one
            tenant.pump = asyncio.create_task(self._pump(tenant_id, tenant.wake, self._settings.redis_url))
        return Watch(self, tenant_id, tenant, idle_s)

    def _leave(self, tenant_id: int, tenant: _Tenant, queue: asyncio.Queue[Notice]) -> None:
        tenant.queues.discard(queue)
        if not tenant.queues and self._tenants.get(tenant_id) is tenant:
            del self._tenants[tenant_id]
            for task in (tenant.task, tenant.pump):
                if task is not None:
                    task.cancel()

    async def _follow(self, tenant_id: int, tenant: _Tenant) -> None:
        """Read, wait for a wake-up, read again and hand out the differences; until cancelled.
        The read is the feed's cadence (every `safety_s` while a pump wakes it, every `poll_s`
        without one: no Redis, or its pump gave up), so a database that is away is read again
        at that cadence, not retried."""
        url = self._settings.database_url
        known: dict[int, Notice] | None = None
        while True:
            try:
                current = await asyncio.to_thread(read_statuses, url, tenant_id)
            except Exception as exc:  # the database is away: keep the watchers, read at the next turn
                log.warning("tenant %s report notices: %s", tenant_id, exc)
            else:
                for notice in changes(known, current) if known is not None else []:
                    for queue in tuple(tenant.queues):
                        if queue.full():
                            queue.get_nowait()
                        queue.put_nowait(notice)
                known = current
            every = self._safety_s if tenant.pumping() else self._poll_s
            with suppress(TimeoutError):
                await asyncio.wait_for(tenant.wake.wait(), every)
            tenant.wake.clear()

    async def _pump(self, tenant_id: int, wake: asyncio.Event, url: str) -> None:
        """Set `wake` on every bus message of the tenant's reports, resubscribing after an error
        (`feed_retry.follow`; the reads go on meanwhile). After `give_up_s` of failures it ends,
        logged and counted, the reads fall back to every `poll_s`, and the next watcher starts a
        new pump (`watch`)."""
        async def once(health: Health) -> None:
            bus = RedisBus(url, self._settings.redis_prefix)
            try:
                await bus.ping()
                health.mark()
                async for _message in bus.subscribe(report_topic(tenant_id)):
                    health.mark()
                    wake.set()
            finally:
                with suppress(Exception):
                    await bus.aclose()

        await follow(REPORT_TOPIC, f"tenant {tenant_id} report notices bus", once, give_up_s=self._give_up_s)
        wake.set()  # read now, and from now on at the poll's cadence


@lru_cache(maxsize=1)
def get_report_feed() -> ReportFeed:
    """This process's report feed."""
    return ReportFeed(get_settings())
