"""The live path through the MT5 Web API connector on real Ray: a simulated broker behind the fake
Web API → the Web API gateway in the tenant's supervisor → account actors → aggregator → feed,
exactly as `veles demo --via-webapi` runs it. Nothing above `veles/mt5` knows it is not the
simulator; the connection's status shows the gateway's own state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from veles.config import Settings
from veles.mt5.webapi.simulated import SimulatedWebApi
from veles.services.demo import seed_demo
from veles.services.engine import engine_status, start_engine, stop_engine, webapi_gateway
from veles.services.live import LiveFeed

pytestmark = [pytest.mark.ray]
ACCOUNTS = 3


@pytest.fixture(scope="module")
async def engine(
    ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, int, SimulatedWebApi]]:
    database = tmp_path_factory.mktemp("webapi-engine") / "veles.db"
    settings = Settings(database_url=f"sqlite:///{database}", redis_url=None, ray_namespace="veles-test",
                        gateway_interval=0.1, publish_hz=10, reconcile_every_s=0)
    tenant_id = seed_demo(settings)
    server = SimulatedWebApi(accounts=ACCOUNTS, seed=11, interval=0.1, login_base=100_000)
    try:
        await start_engine(settings, simulated_accounts=ACCOUNTS, gateway_for=lambda tenant: webapi_gateway(
            settings, tenant, server.url, server.login, server.password))
        yield settings, tenant_id, server
        await stop_engine(settings)
    finally:
        server.close()


async def test_the_book_moves_with_the_server_read_through_the_web_api(
    engine: tuple[Settings, int, SimulatedWebApi],
) -> None:
    settings, tenant_id, server = engine
    feed = LiveFeed(settings)
    try:
        start: int | None = None
        async with asyncio.timeout(60):
            async for replica in feed.watch(tenant_id):
                if len(replica.rows) != ACCOUNTS:
                    continue
                start = replica.version if start is None else start
                if replica.version >= start + 5:
                    break
        logins = {a.login for a in server.broker.accounts()}
        assert set(replica.rows) == logins
    finally:
        await feed.aclose()
    (status,) = [s for s in await engine_status(settings) if s["tenant_id"] == tenant_id]
    (conn,) = status["connections"]
    assert conn["gateway"]["kind"] == "webapi"
    assert conn["gateway"]["state"] == "live"
    assert conn["gateway"]["polls"] > 5
    assert conn["batches"] > 5
