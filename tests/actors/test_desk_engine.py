"""The dealer's desk asks the running engine (real Ray, the production placement: tenants in a
tenant host) for each account's exposure entries and the connections' freshness
(`veles.services.desk_engine`): found wherever the tenant runs, the entries add up to the book's
sums, and the connection's newest quote is seconds old."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from veles.config import Settings
from veles.services.demo import seed_demo
from veles.services.desk_engine import desk_info, exposure_entries
from veles.services.engine import start_engine, stop_engine

pytestmark = [pytest.mark.ray]


@pytest.fixture(scope="module")
async def engine(ray_local: None,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Settings, int]]:
    database = tmp_path_factory.mktemp("desk") / "veles.db"
    settings = Settings(database_url=f"sqlite:///{database}", ray_namespace="veles-test-desk",
                        gateway_interval=0.1)
    tenant_id = seed_demo(settings)
    await start_engine(settings, simulated_accounts=4)
    yield settings, tenant_id
    await stop_engine(settings)


async def test_desk_reads_the_engine_wherever_the_tenant_runs(engine: tuple[Settings, int]) -> None:
    settings, tenant_id = engine
    for _ in range(200):
        info = await desk_info(settings, tenant_id)
        if info["connections"] and info["connections"][0]["quote_at"]:
            break
        await asyncio.sleep(0.1)
    (conn,) = info["connections"]
    assert len(conn["logins"]) == conn["accounts"] == 4
    assert 0 <= info["now"] - conn["quote_at"] < 30
    assert info["currencies"]["EURUSD"] == ("EUR", "USD")
    assert (await desk_info(settings, tenant_id, logins=False))["connections"][0]["logins"] == []
    answer = await exposure_entries(settings, tenant_id)
    for symbol, sums in answer["sums"].items():
        mine = [e for e in answer["entries"] if e[1] == symbol]
        assert sum(e[2] for e in mine) == sums[0] + sums[2]
        assert sum(e[3] for e in mine) == sums[1] + sums[3]
    with pytest.raises(ValueError, match="runs no supervisor"):
        await desk_info(settings, tenant_id + 999)
