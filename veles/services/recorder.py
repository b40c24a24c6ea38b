"""Risk history recording: the live book, sampled once a minute into `risk_history`.

The recorder follows a tenant's replica (`LiveFeed.watch`: book diffs over Redis, or long-polled
from the aggregator over Ray without it) and, at the first update of each minute (or on its own
tick when the book is quiet), writes one point per account and one per book (A, B and the total)
stamped with the minute (`history_bucket`). So a point holds the figures as the minute began.

Idempotent per bucket: a bucket's points are replaced in one transaction, so a recorder that
restarts mid-minute, or writes the same minute twice, leaves exactly one point per series.

Account points are in the account's own currency, book points in USD, each account converted at
its own rate and rounded to the cent the way `veles.risk.book` does, so A + B = total to the cent.

An account row with a missing or non-finite figure is skipped with a warning naming the field;
the other accounts and the books (without it) are still written.

Retention follows the plan (`PlanLimits.history_days`): `prune` deletes older points, and `run`
calls it when it starts and every `PRUNE_EVERY` after.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlmodel import col

from actors.wire import Row
from models.accounts import Book
from models.columns import utcnow
from models.db import tenant_session
from models.history import RiskHistory, history_bucket, prune_history
from veles.config import Settings
from veles.plans import PLANS
from veles.risk.money import from_minor, to_minor
from veles.services.live import TenantReplica
from veles.services.tenants import plan_of

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(hours=1)
_FIGURES = ("equity", "balance", "margin", "profit")


class BadRow(ValueError):
    """An account row that cannot be recorded; the message names the field."""


def _figure(row: Row, name: str) -> float:
    value = row.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise BadRow(f"account {row.get('login')!r}: {name} is {value!r}, not a finite number")
    return float(value)


def _book(row: Row) -> Book:
    """The account's book; B (the broker keeps the risk) unless marked A, as `ClientAccount` says."""
    return Book.A if row.get("book") == "A" else Book.B


def account_point(tenant_id: int, row: Row, bucket: datetime) -> RiskHistory:
    """One account's point (its own currency); BadRow names a missing or non-finite field."""
    login = row.get("login")
    if not isinstance(login, int) or isinstance(login, bool):
        raise BadRow(f"login is {login!r}, not an account number")
    equity, balance, margin, profit = (_figure(row, name) for name in _FIGURES)
    level = row.get("margin_level")
    level = float(level) if isinstance(level, int | float) and math.isfinite(level) else None
    return RiskHistory(tenant_id=tenant_id, account_login=login, book=_book(row), ts=bucket,
                       equity=equity, balance=balance, margin=margin, margin_level=level, floating=profit)


def book_points(tenant_id: int, rows: list[Row], bucket: datetime) -> list[RiskHistory]:
    """The A book, the B book (when they hold accounts) and the total, in USD."""
    sums: dict[Book, list[int]] = {}
    for row in rows:
        rate = _figure(row, "usd_rate")
        minor = [to_minor(_figure(row, name) * rate) for name in _FIGURES]
        total = sums.setdefault(_book(row), [0] * len(_FIGURES))
        for i, value in enumerate(minor):
            total[i] += value
    everything = [sum(values) for values in zip(*sums.values(), strict=True)] if sums else [0] * len(_FIGURES)
    series: list[tuple[Book | None, list[int]]] = [*sorted(sums.items()), (None, everything)]
    points = []
    for book, values in series:
        equity, balance, margin, profit = (from_minor(v) for v in values)
        points.append(RiskHistory(tenant_id=tenant_id, account_login=None, book=book, ts=bucket,
                                  equity=equity, balance=balance, margin=margin,
                                  margin_level=equity / margin * 100.0 if margin > 0 else None,
                                  floating=profit))
    return points


class HistoryRecorder:
    """Writes one tenant's history points once a minute; `run` follows a replica until cancelled."""

    def __init__(
        self, settings: Settings, tenant_id: int, clock: Callable[[], datetime] = utcnow, tick: float = 5.0
    ) -> None:
        self._settings = settings
        self._tenant_id = tenant_id
        self._clock = clock
        self._tick = tick
        self._bucket: datetime | None = None
        self._pruned_at: datetime | None = None
        self.skipped: list[str] = []  # why rows were left out, newest last (operators and tests read it)

    def points(self, replica: TenantReplica, bucket: datetime) -> list[RiskHistory]:
        """Every series' point for `bucket` from the replica as it is now."""
        good: list[Row] = []
        points = []
        for row in replica.rows.values():
            try:
                point = account_point(self._tenant_id, row, bucket)
                _figure(row, "usd_rate")
            except BadRow as exc:
                log.warning("tenant %s history: %s; row skipped", self._tenant_id, exc)
                self.skipped = [*self.skipped[-99:], str(exc)]
                continue
            points.append(point)
            good.append(row)
        return points + book_points(self._tenant_id, good, bucket)

    async def record(self, replica: TenantReplica) -> bool:
        """Write the current minute's points unless this recorder already has; True if it wrote."""
        bucket = history_bucket(self._clock())
        if not replica.rows or bucket == self._bucket:  # no book yet (a starting engine): nothing to keep
            return False
        self._bucket = bucket  # before awaiting: a concurrent call for the same minute backs off
        points = self.points(replica, bucket)  # read the replica here, on the loop that updates it
        try:
            await asyncio.to_thread(self._write, bucket, points)
        except Exception:
            self._bucket = None  # try this minute again on the next update or tick
            raise
        return True

    def _write(self, bucket: datetime, points: list[RiskHistory]) -> None:
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            db.exec(delete(RiskHistory).where(col(RiskHistory.tenant_id) == self._tenant_id,
                                              col(RiskHistory.ts) == bucket))
            if points:  # one multi-row INSERT (no ORM identity map, no ids read back): ~1,000 rows a minute
                db.connection().execute(insert(RiskHistory), [p.model_dump(exclude={"id"}) for p in points])

    def prune(self) -> int:
        """Delete points older than the tenant's plan keeps; returns how many went."""
        days = PLANS[plan_of(self._settings.database_url, self._tenant_id)].history_days
        with tenant_session(self._settings.database_url, self._tenant_id) as db:
            return prune_history(db, self._tenant_id, self._clock() - timedelta(days=days))

    async def run(self, replicas: AsyncIterator[TenantReplica]) -> None:
        """Record each minute from `replicas` (updates) and a tick (a quiet book), pruning hourly."""
        latest: list[TenantReplica] = []

        async def follow() -> None:
            async for replica in replicas:
                latest[:] = [replica]
                await self._safely(replica)

        follower = asyncio.create_task(follow())
        try:
            while not follower.done():
                now = self._clock()
                if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                    self._pruned_at = now
                    await self._prune_safely()
                if latest:
                    await self._safely(latest[0])
                await asyncio.wait({follower}, timeout=self._tick)
            follower.result()
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _prune_safely(self) -> None:
        try:
            pruned = await asyncio.to_thread(self.prune)
        except Exception:  # the database is away: the next hour tries again
            log.exception("tenant %s history: prune failed", self._tenant_id)
        else:
            log.info("tenant %s history: pruned %s points", self._tenant_id, pruned)

    async def _safely(self, replica: TenantReplica) -> None:
        try:
            await self.record(replica)
        except Exception:  # the database is away: keep following, the next minute is written anew
            log.exception("tenant %s history: minute not written", self._tenant_id)
