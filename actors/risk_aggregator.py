"""RiskAggregator: merges account figures into the tenant's book and publishes it.

Each account's new figures replace its old contribution (`Book.apply`), so a tick costs
O(accounts changed), never a rescan. A change is published at once unless the last publish was
less than 0.8 of a period (1/PUBLISH_HZ, default 4 Hz) ago; then as soon as that gap has passed.
The 20% allowance is deliberate: with the gap at a full period (or a token bucket refilled at
PUBLISH_HZ), a gateway polled at the same rate never works off a delay once it has one (after a
catch-up burst, say) and every later diff carries it; with 0.8 each delayed publish shortens the
next delay by a fifth of a period. The rate stays capped at 1.25 times PUBLISH_HZ.
Everything that changed since the last publish goes out as one diff with a version number.
Consumers read diffs by long-polling `diffs_since` over Ray (works with no Redis) or from the bus
when Redis is set; a consumer that missed a version asks for a full `snapshot`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import ray

from actors.wire import Row, account_row, alert_row, alert_topic, book_message, book_topic
from veles.bus import RedisBus
from veles.risk.account import AccountFigures
from veles.risk.alerts import Alert, AlertEngine, AlertKind, AlertRule, Severity, default_rules
from veles.risk.book import Book
from veles.risk.events import Deal

_RING = 64  # diffs kept for consumers that fall slightly behind
_LATENCY_SAMPLES = 100_000
_RECENT_ALERTS = 500
_MIN_GAP = 0.8  # of a publishing period: the least time between two publishes


def tenant_rules() -> list[AlertRule]:
    """A tenant's alert rules until it edits its own: margin call and stop-out as each account's
    own group defines them (so money-mode and per-group levels are right), then the desk's
    defaults for drawdown, exposure per symbol and large deals."""
    per_account = [
        AlertRule("margin_call", AlertKind.ACCOUNT_STATE, 1, Severity.WARNING),
        AlertRule("stop_out", AlertKind.ACCOUNT_STATE, 2, Severity.CRITICAL),
    ]
    desk = [r for r in default_rules(100.0, 50.0) if r.kind is not AlertKind.MARGIN_LEVEL]
    return per_account + desk


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
        self._unpublished: list[float] = []  # sent_at of each batch applied since the last publish
        self.alerts = AlertEngine(tenant_rules())
        self.recent_alerts: deque[Row] = deque(maxlen=_RECENT_ALERTS)
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self._new_version = asyncio.Condition()
        self._bus = RedisBus(redis_url) if redis_url else None

    def apply(self, figures: list[AccountFigures], sent_at: float, deals: Sequence[Deal] = ()) -> list[Alert]:
        """Merge new account figures (published on the next tick); returns the alerts they raise or
        clear, and those of the deals applied with them."""
        alerts: list[Alert] = []
        for fig in figures:
            self.book.apply(fig)
            self.rows[fig.login] = account_row(fig)
            self._changed.add(fig.login)
            alerts.extend(self.alerts.on_account(fig))
        for deal in deals:
            alerts.extend(self.alerts.on_deal(deal))
        self._sent_at = max(self._sent_at, sent_at)
        self._unpublished.append(sent_at)
        return alerts

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
        now = time.time()
        self.latencies.extend(now - sent_at for sent_at in self._unpublished)
        self._unpublished.clear()
        self.version += 1
        book = self.book.snapshot()
        await self.announce(self.alerts.on_book(book, int(now * 1000)))
        diff = book_message(
            tenant_id=self.tenant_id,
            epoch=self.epoch,
            version=self.version,
            full=False,
            book=book,
            accounts=[self.rows[login] for login in sorted(self._changed)],
            sent_at=self._sent_at,
            published_at=now,
        )
        self._changed.clear()
        self._ring.append(diff)
        if self._bus is not None:
            await self._bus.publish(book_topic(self.tenant_id), diff)
        async with self._new_version:
            self._new_version.notify_all()
        return diff

    async def announce(self, alerts: list[Alert]) -> None:
        """Alerts go out at once (not paced with the book) and are kept for the web tier."""
        for alert in alerts:
            message = alert_row(alert)
            self.recent_alerts.append(message)
            if self._bus is not None:
                await self._bus.publish(alert_topic(self.tenant_id), message)

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
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin the paced publishing loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        min_gap = _MIN_GAP * self._period
        last = -min_gap
        while True:
            await self._changed.wait()
            wait = last + min_gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # changes that land meanwhile go out in this publish
            self._changed.clear()
            last = time.monotonic()
            await self._core.publish()

    async def apply(
        self, figures: list[AccountFigures], sent_at: float, deals: list[Deal] | None = None
    ) -> None:
        """Merge new account figures into the book (they go out on the next publish); alerts they
        raise go out at once."""
        await self._core.announce(self._core.apply(figures, sent_at, deals or ()))
        self._changed.set()

    async def alerts(self) -> dict[str, list[dict[str, Any]]]:
        """The alerts raised now (`active`) and the latest raises and clears (`recent`, newest last)."""
        return {
            "active": [alert_row(a) for a in self._core.alerts.active()],
            "recent": list(self._core.recent_alerts),
        }

    async def take_latencies(self) -> list[float]:
        """Seconds from each batch leaving its gateway to the diff carrying it being published;
        the samples are handed over and forgotten (benchmarks read them)."""
        samples = list(self._core.latencies)
        self._core.latencies.clear()
        return samples

    async def snapshot(self) -> dict[str, Any]:
        """The whole book at the current version."""
        return self._core.snapshot()

    async def pid(self) -> int:
        """The process hosting the aggregator (operators and failure tests kill it)."""
        return os.getpid()

    async def diffs_since(self, version: int, timeout: float = 1.0) -> list[dict[str, Any]]:
        """Long-poll for diffs after `version` (a full snapshot if that version is gone)."""
        return await self._core.diffs_since(version, timeout)
