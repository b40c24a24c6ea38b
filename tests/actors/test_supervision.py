"""Supervision on real Ray: killed actors come back with exactly the figures they would have had."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import ray

from actors.tenant_supervisor import TenantSupervisor
from veles.bench.engine import START_MSC, reference_figures
from veles.mt5.connect import GatewaySpec

pytestmark = pytest.mark.ray


def _spec(tenant_id: int) -> GatewaySpec:
    return GatewaySpec(
        kind="simulator",
        connection_id=f"sim-{tenant_id}",
        options={"accounts": 3, "seed": 11, "interval": 0.1, "start_msc": START_MSC},
        interval=0.1,
        merge_when_behind=False,  # every poll processed in order: the run is exactly reproducible
    )


async def _wait_for(supervisor: Any, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await supervisor.status.remote()
        if predicate(status["connections"][0]):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout} s: {status}")


@pytest.fixture
async def supervisor(ray_local: None, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, int]]:
    tenant_id = 900 + request.node.name.__hash__() % 90  # distinct actor names per test
    handle = TenantSupervisor.remote(  # type: ignore[attr-defined]
        tenant_id, [_spec(tenant_id)], 10.0, None, graph_min_accounts=1  # its 3 accounts on a graph
    )
    await handle.start.remote()
    yield handle, tenant_id
    await handle.stop.remote()
    ray.kill(handle)


async def test_killed_account_comes_back_with_the_reference_figures(supervisor: tuple[Any, int]) -> None:
    handle, tenant_id = supervisor
    await _wait_for(handle, lambda c: c["polls"] >= 15)
    pids = await handle.account_pids.remote()
    victim = sorted(pids)[0]
    os.kill(pids[victim], signal.SIGKILL)
    # How fast it comes back depends on the machine's load (Ray starts a new process); the time
    # is measured and printed by `veles bench engine --kill K`, not asserted here.
    await _wait_for(handle, lambda c: sum(c["restarts"].values()) >= 1, timeout=30)
    await _wait_for(handle, lambda c: c["recovering"] == 0, timeout=30)
    # its partition's compiled graph broke with it, and is compiled again in the background
    await _wait_for(handle, lambda c: c["graph_failures"] >= 1 and c["compiled_partitions"] == 1, timeout=60)
    polls = (await handle.pause.remote())[f"sim-{tenant_id}"]

    figures = await handle.account_figures.remote()
    expected = reference_figures(_spec(tenant_id), polls)
    assert figures == expected  # every field, peak equity and drawdown included
    status = await handle.status.remote()
    (conn,) = status["connections"]
    assert conn["rejected"] == {}  # no deal refused as a duplicate: none applied twice
    assert (await handle.account_pids.remote())[victim] != pids[victim]


async def test_killed_aggregator_rebuilds_the_book_from_the_accounts(supervisor: tuple[Any, int]) -> None:
    handle, tenant_id = supervisor
    await _wait_for(handle, lambda c: c["polls"] >= 10)
    aggregator = ray.get_actor(f"aggregator:{tenant_id}")
    before = await aggregator.snapshot.remote()
    os.kill(await aggregator.pid.remote(), signal.SIGKILL)
    deadline = time.monotonic() + 15
    while (await handle.status.remote())["aggregator_restarts"].get("actor_died", 0) < 1:
        assert time.monotonic() < deadline, "the supervisor did not notice the aggregator's death"
        await asyncio.sleep(0.1)
    await handle.pause.remote()
    await asyncio.sleep(0.3)  # one publishing period at 10 Hz
    after = await aggregator.snapshot.remote()
    assert after["epoch"] != before["epoch"]
    figures = await handle.account_figures.remote()
    assert {row["login"] for row in after["accounts"]} == set(figures)
    for field in ("balance", "equity", "margin"):
        expected = sum(round(getattr(f, field) * f.usd_rate, 2) for f in figures.values())
        assert after["totals"][field] == pytest.approx(expected, abs=0.0051 * len(figures)), field


async def _status_when_back(handle: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Status once a restarted supervisor answers again and is pumping."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status: dict[str, Any] = await handle.status.remote()
        except ray.exceptions.RayError:
            await asyncio.sleep(0.2)
            continue
        if status["running"] and status["connections"] and status["connections"][0]["batches"] >= 5:
            return status
        await asyncio.sleep(0.2)
    raise AssertionError("the supervisor did not come back")


async def test_killed_supervisor_restarts_and_reattaches_to_its_accounts(
    supervisor: tuple[Any, int],
) -> None:
    handle, tenant_id = supervisor
    await _wait_for(handle, lambda c: c["polls"] >= 10)
    accounts_before = await handle.account_pids.remote()
    peaks_before = {login: f.peak_equity for login, f in (await handle.account_figures.remote()).items()}
    os.kill(await handle.pid.remote(), signal.SIGKILL)
    status = await _status_when_back(handle)
    assert status["reconstructed"] is True
    assert status["connections"][0]["compiled_partitions"] == 1  # a new graph over the same actors
    assert await handle.account_pids.remote() == accounts_before  # the same processes, re-attached
    peaks_after = {login: f.peak_equity for login, f in (await handle.account_figures.remote()).items()}
    assert all(peaks_after[login] >= peak for login, peak in peaks_before.items())  # analytics kept
    await handle.pause.remote()
    await asyncio.sleep(0.3)
    book = await ray.get_actor(f"aggregator:{tenant_id}").snapshot.remote()
    figures = await handle.account_figures.remote()
    for field in ("balance", "equity", "margin"):
        expected = sum(round(getattr(f, field) * f.usd_rate, 2) for f in figures.values())
        assert book["totals"][field] == pytest.approx(expected, abs=0.0051 * len(figures)), field
