"""Report status changes as they happen, for this web process's browser tabs and API sockets.

One `ReportFeed` per web process follows each tenant somebody here watches. The database is the
truth: on every wake-up the feed reads the status of the tenant's newest reports and tells its
watchers what changed since the last read (queued, running, ready, failed with the reason). So a
wake-up that is lost or merged with another loses nothing, and two processes never disagree.

What wakes it: with REDIS_URL, the report worker's message on the bus topic `reports:<tenant>`
(`veles.reports.runner.report_topic`), which arrives within milliseconds, plus a read every
`SAFETY_S` in case the bus dropped one. Without Redis (the embedded demo, where the worker runs
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
    """The watchers of one tenant and the task that follows it."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Notice]] = set()
        self.task: asyncio.Task[None] | None = None


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

    def __init__(self, settings: Settings, poll_s: float = POLL_S, safety_s: float = SAFETY_S) -> None:
        self._settings = settings
        self._poll_s, self._safety_s = poll_s, safety_s
        self._tenants: dict[int, _Tenant] = {}

    def watch(self, tenant_id: int, idle_s: float | None = None) -> Watch:
        """Every change of the tenant's reports from now on (registered at once, not at the first
        `anext`); None after `idle_s` seconds without one (so a caller can check whether it is
        still wanted), if given. Close it (`aclose`, or `async with`) when done."""
        tenant = self._tenants.setdefault(tenant_id, _Tenant())
        if tenant.task is None or tenant.task.done():
            tenant.task = asyncio.create_task(self._follow(tenant_id, tenant))
        return Watch(self, tenant_id, tenant, idle_s)

    def _leave(self, tenant_id: int, tenant: _Tenant, queue: asyncio.Queue[Notice]) -> None:
        tenant.queues.discard(queue)
        if not tenant.queues and self._tenants.get(tenant_id) is tenant:
            del self._tenants[tenant_id]
            if tenant.task is not None:
                tenant.task.cancel()

    async def _follow(self, tenant_id: int, tenant: _Tenant) -> None:
        """Read, wait for a wake-up, read again and hand out the differences; until cancelled."""
        url = self._settings.database_url
        wake = asyncio.Event()
        pump = self._pump(tenant_id, wake) if self._settings.redis_url else None
        every = self._safety_s if pump is not None else self._poll_s
        known: dict[int, Notice] | None = None
        try:
            while True:
                try:
                    current = await asyncio.to_thread(read_statuses, url, tenant_id)
                except Exception as exc:  # the database is away: keep the watchers, try again
                    log.warning("tenant %s report notices: %s", tenant_id, exc)
                else:
                    for notice in changes(known, current) if known is not None else []:
                        for queue in tuple(tenant.queues):
                            if queue.full():
                                queue.get_nowait()
                            queue.put_nowait(notice)
                    known = current
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), every)
                wake.clear()
        finally:
            if pump is not None:
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)

    def _pump(self, tenant_id: int, wake: asyncio.Event) -> asyncio.Task[None]:
        """Set `wake` on every bus message of the tenant's reports, resubscribing after an error."""
        assert self._settings.redis_url is not None
        url = self._settings.redis_url

        async def run() -> None:
            while True:
                bus = RedisBus(url, self._settings.redis_prefix)
                try:
                    async for _message in bus.subscribe(report_topic(tenant_id)):
                        wake.set()
                except Exception as exc:  # Redis away: the periodic read carries on meanwhile
                    log.warning("tenant %s report notices: bus: %s; resubscribing", tenant_id, exc)
                finally:
                    with suppress(Exception):
                        await bus.aclose()
                await asyncio.sleep(1.0)

        return asyncio.create_task(run())


@lru_cache(maxsize=1)
def get_report_feed() -> ReportFeed:
    """This process's report feed."""
    return ReportFeed(get_settings())
