"""RiskAggregator: merges account figures into the tenant's book and publishes it.

Each account's new figures replace its old contribution (`Book.apply`), so a tick costs
O(accounts changed), never a rescan. Publishing is paced (default 4 Hz): everything that changed
since the last publish goes out as one diff with a version number. Consumers read diffs by
long-polling `diffs_since` over Ray (works with no Redis) or from the bus when Redis is set; a
consumer that missed a version asks for a full `snapshot`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import Any

import ray

from actors.wire import Row, account_row, book_message, book_topic
from veles.bus import RedisBus
from veles.risk.account import AccountFigures
from veles.risk.book import Book

_RING = 64  # diffs kept for consumers that fall slightly behind


class BookPublisher:
    """The aggregator's logic without Ray: book, pacing, versioned diffs, waiters."""

    def __init__(self, tenant_id: int, redis_url: str | None = None) -> None:
        self.tenant_id = tenant_id
        self.epoch = time.time_ns()
        self.book = Book()
        self.rows: dict[int, Row] = {}
        self.version = 0
        self._changed: set[int] = set()
        self._sent_at = 0.0
        self._ring: deque[Row] = deque(maxlen=_RING)
        self._new_version = asyncio.Condition()
        self._bus = RedisBus(redis_url) if redis_url else None

    def apply(self, figures: list[AccountFigures], sent_at: float) -> None:
        """Merge new account figures; they are published on the next tick."""
        for fig in figures:
            self.book.apply(fig)
            self.rows[fig.login] = account_row(fig)
            self._changed.add(fig.login)
        self._sent_at = max(self._sent_at, sent_at)

    def snapshot(self) -> Row:
        """The whole book and every account, at the current version."""
        return book_message(
            tenant_id=self.tenant_id,
            epoch=self.epoch,
            version=self.version,
            full=True,
            book=self.book.snapshot(),
            accounts=list(self.rows.values()),
            sent_at=self._sent_at,
            published_at=time.time(),
        )

    async def publish(self) -> Row | None:
        """Cut a diff of what changed since the last one; None when nothing did."""
        if not self._changed:
            return None
        self.version += 1
        diff = book_message(
            tenant_id=self.tenant_id,
            epoch=self.epoch,
            version=self.version,
            full=False,
            book=self.book.snapshot(),
            accounts=[self.rows[login] for login in sorted(self._changed)],
            sent_at=self._sent_at,
            published_at=time.time(),
        )
        self._changed.clear()
        self._ring.append(diff)
        if self._bus is not None:
            await self._bus.publish(book_topic(self.tenant_id), diff)
        async with self._new_version:
            self._new_version.notify_all()
        return diff

    async def diffs_since(self, version: int, timeout: float) -> list[Row]:
        """Diffs after `version`, waiting up to `timeout` s for one; a snapshot if too far behind."""
        if version >= self.version:
            async with self._new_version:
                try:
                    await asyncio.wait_for(
                        self._new_version.wait_for(lambda: self.version > version), timeout
                    )
                except TimeoutError:
                    return []
        oldest = self._ring[0]["version"] if self._ring else self.version + 1
        if version + 1 < oldest:
            return [self.snapshot()]
        return [d for d in self._ring if d["version"] > version]


@ray.remote(num_cpus=0, max_restarts=-1)
class RiskAggregator:
    """One per tenant; an async actor so long-polling consumers don't block `apply`."""

    def __init__(self, tenant_id: int, publish_hz: float, redis_url: str | None) -> None:
        self._core = BookPublisher(tenant_id, redis_url)
        self._period = 1.0 / publish_hz
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin the paced publishing loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self._core.publish()
            await asyncio.sleep(max(0.0, self._period - (time.monotonic() - started)))

    async def apply(self, figures: list[AccountFigures], sent_at: float) -> None:
        """Merge new account figures into the book."""
        self._core.apply(figures, sent_at)

    async def snapshot(self) -> dict[str, Any]:
        """The whole book at the current version."""
        return self._core.snapshot()

    async def pid(self) -> int:
        """The process hosting the aggregator (operators and failure tests kill it)."""
        return os.getpid()

    async def diffs_since(self, version: int, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Long-poll for diffs after `version` (a full snapshot if that version is gone)."""
        return await self._core.diffs_since(version, timeout)
