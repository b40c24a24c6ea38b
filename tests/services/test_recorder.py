"""Risk history recording: one point per account and per book each minute, idempotent, pruned by plan.

On the real PostgreSQL (RLS-confined app role). The last test follows a real RiskAggregator actor
through LiveFeed both ways: long-polled over Ray (the in-process LocalBus wakes the watcher) and over
the Redis bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import ray
from sqlmodel import col, select

from actors.mt5_account import AccountActor
from actors.names import aggregator_name
from actors.risk_aggregator import BookPublisher, RiskAggregator
from models.accounts import Book
from models.db import session_scope, tenant_session
from models.history import RiskHistory
from models.tenancy import Plan, Tenant
from veles.config import Settings
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountFigures
from veles.services.demo import seed_demo
from veles.services.engine import start_engine, stop_engine
from veles.services.followers import FOLLOWERS
from veles.services.live import LiveFeed, TenantReplica
from veles.services.recorder import HistoryRecorder

T0 = datetime(2026, 11, 20, 12, 0, 10, tzinfo=UTC)
_serial = itertools.count(1)


class Clock:
    """Time the test sets, so buckets and retention are exact."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def figures(accounts: int) -> list[AccountFigures]:
    """Real figures of simulated accounts; every third one is on the A book."""
    broker = SimulatedBroker(accounts=accounts, seed=11, start_msc=1_790_000_000_000)
    symbols = {s.name: s for s in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    hosts = [AccountActor(account, symbols, board).figures() for account in broker.accounts()]
    return [dataclasses.replace(f, book="A" if i % 3 == 0 else "B") for i, f in enumerate(hosts)]


def replica_of(accounts: list[AccountFigures]) -> TenantReplica:
    """The web tier's replica of a book holding these accounts, built by the aggregator's own code."""
    publisher = BookPublisher(tenant_id=0)
    publisher.apply(accounts, sent_at=1.0)
    replica = TenantReplica()
    assert replica.apply(publisher.snapshot())
    return replica


def new_tenant(database: str, plan: Plan = Plan.STARTER) -> int:
    with session_scope(database) as db:
        tenant = Tenant(name=f"recorder-{next(_serial)}-{datetime.now(UTC).timestamp()}", plan=plan)
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        return tenant.id


def points(database: str, tenant_id: int) -> list[RiskHistory]:
    with tenant_session(database, tenant_id) as db:
        rows = db.exec(select(RiskHistory).where(RiskHistory.tenant_id == tenant_id)
                       .order_by(col(RiskHistory.ts), col(RiskHistory.id))).all()
        db.expunge_all()
        return list(rows)


def series(rows: list[RiskHistory]) -> list[tuple[Any, ...]]:
    return sorted((r.ts, r.account_login or 0, r.book or "") for r in rows)


async def test_one_point_per_account_and_book_per_minute(database: str) -> None:
    tenant = new_tenant(database)
    accounts = figures(7)
    replica = replica_of(accounts)
    clock = Clock(T0)
    recorder = HistoryRecorder(Settings(_env_file=None, database_url=database), tenant, clock=clock)
    assert await recorder.record(replica)
    rows = points(database, tenant)
    minute = T0.replace(second=0)
    assert {r.ts for r in rows} == {minute}
    per_account = {r.account_login: r for r in rows if r.account_login is not None}
    assert sorted(per_account) == sorted(f.login for f in accounts)
    for f in accounts:
        point = per_account[f.login]
        assert (point.equity, point.balance, point.margin, point.margin_level, point.floating) == (
            f.equity, f.balance, f.margin, f.margin_level, f.profit)
        assert point.book == Book(f.book)
    books = {r.book: r for r in rows if r.account_login is None}
    assert set(books) == {Book.A, Book.B, None}
    total = books[None]
    assert total.equity == replica.totals["equity"]  # the aggregator's own USD book, to the cent
    assert total.margin == replica.totals["margin"]
    assert total.floating == replica.totals["profit"]
    for name in ("equity", "balance", "margin", "floating"):
        assert round(getattr(books[Book.A], name) + getattr(books[Book.B], name), 2) == getattr(total, name)

    clock.now = T0 + timedelta(seconds=40)  # same minute: nothing more
    assert not await recorder.record(replica)
    assert len(points(database, tenant)) == len(rows) == 7 + 3

    moved = [dataclasses.replace(f, equity=f.equity + 100.0) for f in accounts]
    restarted = HistoryRecorder(Settings(_env_file=None, database_url=database), tenant, clock=clock)
    assert await restarted.record(replica_of(moved))  # a restart rewrites the minute, no duplicates
    again = points(database, tenant)
    assert series(again) == series(rows)
    assert {r.account_login: r.equity for r in again if r.account_login} == {
        f.login: f.equity + 100.0 for f in accounts}

    clock.now = T0 + timedelta(minutes=1)
    assert await restarted.record(replica_of(moved))
    assert sorted({r.ts for r in points(database, tenant)}) == [minute, minute + timedelta(minutes=1)]
    assert len(points(database, tenant)) == 2 * (7 + 3)


async def test_a_bad_row_is_skipped_naming_the_field_and_the_rest_is_written(database: str) -> None:
    tenant = new_tenant(database)
    accounts = figures(4)
    replica = replica_of(accounts)
    broken, missing = accounts[1].login, accounts[2].login
    replica.rows[broken] = replica.rows[broken] | {"equity": float("nan")}
    replica.rows[missing] = {k: v for k, v in replica.rows[missing].items() if k != "margin"}
    recorder = HistoryRecorder(Settings(_env_file=None, database_url=database), tenant, clock=Clock(T0))
    assert await recorder.record(replica)
    assert recorder.skipped == [f"account {broken}: equity is nan, not a finite number",
                                f"account {missing}: margin is None, not a finite number"]
    rows = points(database, tenant)
    kept = [accounts[0], accounts[3]]
    assert sorted(r.account_login for r in rows if r.account_login) == sorted(f.login for f in kept)
    total = next(r for r in rows if r.account_login is None and r.book is None)
    assert total.equity == round(sum(round(f.equity * f.usd_rate, 2) for f in kept), 2)


def test_prune_keeps_what_the_plan_allows_and_other_tenants_alone(database: str) -> None:
    starter, pro = new_tenant(database, Plan.STARTER), new_tenant(database, Plan.PROFESSIONAL)
    now = T0
    for tenant in (starter, pro):
        with tenant_session(database, tenant) as db:
            for days in (29, 31, 89, 91):
                db.add(RiskHistory(tenant_id=tenant, ts=now - timedelta(days=days), equity=1.0, balance=1.0,
                                   margin=0.0, floating=0.0))
    settings = Settings(_env_file=None, database_url=database)
    assert HistoryRecorder(settings, starter, clock=Clock(now)).prune() == 3  # 30 days
    assert HistoryRecorder(settings, pro, clock=Clock(now)).prune() == 1  # 90 days
    assert [now - r.ts for r in points(database, starter)] == [timedelta(days=29)]
    assert sorted(now - r.ts for r in points(database, pro)) == [timedelta(days=29), timedelta(days=31),
                                                               timedelta(days=89)]


@pytest.fixture
def aggregator_for(ray_local: None, redis_url: str) -> Iterator[Any]:
    made: list[Any] = []

    def make(tenant_id: int, with_redis: bool) -> Any:
        actor = RiskAggregator.options(  # type: ignore[attr-defined]
            name=aggregator_name(tenant_id), namespace="veles-test",
        ).remote(tenant_id, 4.0, redis_url if with_redis else None)
        ray.get(actor.start.remote())
        made.append(actor)
        return actor

    yield make
    for actor in made:
        ray.kill(actor)


@pytest.mark.parametrize("transport", ["ray", "redis"])
async def test_the_recorder_follows_the_engine(
    database: str, redis_url: str, aggregator_for: Any, transport: str
) -> None:
    tenant = new_tenant(database)
    aggregator = aggregator_for(tenant, transport == "redis")
    settings = Settings(_env_file=None, database_url=database, ray_namespace="veles-test",
                        redis_url=redis_url if transport == "redis" else None)
    feed = LiveFeed(settings)
    recorder = HistoryRecorder(settings, tenant, tick=0.2)
    task = asyncio.create_task(recorder.run(feed.watch(tenant)))
    accounts = figures(5)
    try:
        for _ in range(300):  # the engine sends figures all the time: the feed may join after the first
            await aggregator.apply.remote(accounts, 1.0)
            rows = points(database, tenant)
            if len(rows) >= 5 + 3:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await feed.aclose()
    first_minute = min(r.ts for r in rows)
    written = [r for r in rows if r.ts == first_minute]
    assert sorted(r.account_login for r in written if r.account_login) == sorted(f.login for f in accounts)
    assert {r.book for r in written if r.account_login is None} == {Book.A, Book.B, None}


async def test_the_engine_starts_the_followers_and_stops_them(
    ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`start_engine` (as `veles engine` and `veles demo` run it) records history with no more help."""
    database = f"sqlite:///{tmp_path_factory.mktemp('followers') / 'veles.db'}"
    settings = Settings(_env_file=None, database_url=database, ray_namespace="veles-test",
                        gateway_interval=0.25, publish_hz=4)
    tenant = seed_demo(settings)
    await start_engine(settings, simulated_accounts=2)
    try:
        followers = ray.get_actor(FOLLOWERS, namespace="veles-test")
        rows: list[RiskHistory] = []
        for _ in range(600):
            rows = points(database, tenant)
            if len([r for r in rows if r.account_login]) >= 2:
                break
            await asyncio.sleep(0.1)
        assert await followers.tenants.remote() == [tenant]
    finally:
        await stop_engine(settings)
    assert len({r.account_login for r in rows if r.account_login}) == 2
    assert any(r.account_login is None and r.book is None for r in rows)
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor(FOLLOWERS, namespace="veles-test")
