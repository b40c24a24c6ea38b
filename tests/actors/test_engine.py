"""The live path on real Ray: simulated broker → supervisor → account actors → aggregator → feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from actors.tenant_directory import find
from actors.tenant_host import TenantRef
from veles.config import Settings
from veles.services.demo import seed_demo
from veles.services.engine import start_engine, stop_engine
from veles.services.live import LiveFeed, TenantReplica

pytestmark = [pytest.mark.ray, pytest.mark.redis]
ACCOUNTS = 3


@pytest.fixture(scope="module")
async def engine(
    ray_local: None, redis_url_module: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, int]]:
    """A running engine for one tenant whose aggregator also publishes to the real Redis."""
    database = tmp_path_factory.mktemp("engine") / "veles.db"
    settings = Settings(database_url=f"sqlite:///{database}", redis_url=redis_url_module,
                        ray_namespace="veles-test", gateway_interval=0.1, publish_hz=10,
                        process_per_tenant=True)  # the setting's placement (tenant hosts elsewhere)
    tenant_id = seed_demo(settings)
    await start_engine(settings, simulated_accounts=ACCOUNTS)
    yield settings, tenant_id
    await stop_engine(settings)


async def _replica_after(feed: LiveFeed, tenant_id: int, versions: int) -> TenantReplica:
    """The feed's replica once its book is `versions` versions past the first complete one it
    showed. Versions, not notifications: one notification may follow several versions (a slow
    watcher skips, latest-wins), so counting them said nothing of how far the book moved."""
    start: int | None = None
    async for replica in feed.watch(tenant_id):
        if len(replica.rows) != ACCOUNTS:
            continue
        if start is None:
            start = replica.version
        if replica.version >= start + versions:
            return replica
    raise AssertionError("the feed ended")


def _assert_book_is_sum_of_accounts(replica: TenantReplica) -> None:
    """Totals are USD cents summed exactly; each account converts at its own deposit→USD rate."""
    rows = replica.rows.values()
    for field in ("balance", "credit", "equity", "profit", "margin", "free_margin"):
        expected = sum(round(r[field] * r["usd_rate"], 2) for r in rows)
        assert replica.totals[field] == pytest.approx(expected, abs=0.0051 * len(rows)), field
    assert replica.totals["accounts"] == ACCOUNTS


async def test_book_reaches_the_web_tier_over_ray_and_over_redis(engine: tuple[Settings, int]) -> None:
    settings, tenant_id = engine
    over_ray = LiveFeed(settings.model_copy(update={"redis_url": None}))
    over_redis = LiveFeed(settings)
    try:
        first = await asyncio.wait_for(_replica_after(over_ray, tenant_id, 5), 60)
        _assert_book_is_sum_of_accounts(first)
        # `first` is the over-Ray feed's live replica, which goes on moving: keep what it was
        first_version, first_logins = first.version, set(first.rows)
        later = await asyncio.wait_for(_replica_after(over_redis, tenant_id, 5), 60)
        assert later.version > first_version  # the book keeps moving
        _assert_book_is_sum_of_accounts(later)
        assert set(later.rows) == first_logins
    finally:
        await over_ray.aclose()
        await over_redis.aclose()


async def test_account_detail_lists_positions_and_stays_within_the_tenant(
    engine: tuple[Settings, int],
) -> None:
    settings, tenant_id = engine
    feed = LiveFeed(settings)
    replica = await asyncio.wait_for(_replica_after(feed, tenant_id, 1), 60)
    login = max(replica.rows, key=lambda lg: replica.rows[lg]["positions"])
    detail = await feed.account_detail(tenant_id, login)
    assert detail is not None
    assert detail.figures.login == login
    assert len(detail.positions) == detail.figures.positions
    assert set(detail.profits) == {p.ticket for p in detail.positions}
    assert await feed.account_detail(tenant_id, 999_999_999) is None  # not this tenant's login
    alerts = await feed.alerts(tenant_id)
    assert set(alerts) == {"active", "recent", "seq"}  # seq: the last alert number published (issue 15)
    assert isinstance(alerts["seq"], int)
    assert all(a["status"] == "raised" for a in alerts["active"])
    await feed.aclose()


async def test_supervisor_reports_progress_per_connection(engine: tuple[Settings, int]) -> None:
    settings, tenant_id = engine
    supervisor = find(tenant_id, "supervisor", settings.ray_namespace)
    assert not isinstance(supervisor, TenantRef)  # PROCESS_PER_TENANT: a process of its own
    for _ in range(100):
        status = await supervisor.status.remote()
        if status["connections"][0]["batches"] >= 10:
            break
        await asyncio.sleep(0.1)
    (conn,) = status["connections"]
    assert conn["accounts"] == ACCOUNTS
    assert conn["batches"] >= 10
    assert conn["rejected"] == {}
