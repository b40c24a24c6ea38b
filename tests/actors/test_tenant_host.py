"""Dense tenant hosting on real Ray (issue 14, many tenants): several tenants' supervisors and
aggregators as logical actors in one tenant host process, their accounts in one shared pool of
account hosts. Two tenants whose servers number their accounts alike (the same logins) stay
apart and exact; a shared account host's death restores every tenant's accounts exactly; a
tenant's failure leaves its neighbour running; a tenant host's death (kill -9) brings every
tenant it held back, re-attached to its accounts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import ray

from actors.names import host_name
from actors.tenant_host import SHARED_POOL, TenantRef, tenant_host
from veles.bench.engine import START_MSC, reference_figures
from veles.mt5.connect import GatewaySpec

pytestmark = pytest.mark.ray
ACCOUNTS = 6
TENANTS = (7101, 7102)


def _spec(tenant_id: int) -> GatewaySpec:
    """Both tenants' servers number accounts from the same base: the same logins, other books."""
    return GatewaySpec(
        kind="simulator",
        connection_id="main",
        options={"accounts": ACCOUNTS, "seed": tenant_id, "interval": 0.1, "start_msc": START_MSC},
        interval=0.1,
        merge_when_behind=False,  # every poll processed in order: the run is exactly reproducible
    )


async def _until(ref: TenantRef, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = await ref.status.remote()
        except ray.exceptions.RayActorError:  # the tenant host is being restarted
            status = {}
        if status.get("connections") and predicate(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout} s: {status}")


def _batches(status: dict[str, Any]) -> int:
    return int(status["connections"][0]["batches"])


@pytest.fixture
async def tenants(ray_local: None) -> AsyncIterator[tuple[Any, dict[int, TenantRef]]]:
    host = tenant_host(TENANTS[0], 1)
    refs = {}
    for tenant_id in TENANTS:
        assert await host.add.remote(tenant_id, [_spec(tenant_id)], 10.0, None, hosts=2, checkpoint_every=5,
                                     log_limit=600)
        refs[tenant_id] = TenantRef(host, tenant_id)
    await asyncio.gather(*(ref.start.remote() for ref in refs.values()))
    for ref in refs.values():
        await _until(ref, lambda s: _batches(s) >= 5)
    yield host, refs
    for tenant_id in TENANTS:
        await host.remove.remote(tenant_id)
    ray.kill(host, no_restart=True)
    for index in range(2):
        ray.kill(ray.get_actor(host_name(SHARED_POOL, index)), no_restart=True)


async def _exact(ref: TenantRef, tenant_id: int) -> None:
    polls = (await ref.pause.remote())["main"]
    assert await ref.account_figures.remote() == reference_figures(_spec(tenant_id), polls)


async def _book_matches_accounts(ref: TenantRef, tenant_id: int) -> None:
    await ref.pause.remote()
    await asyncio.sleep(0.3)
    book = await TenantRef(ref.host, tenant_id, "aggregator").snapshot.remote()
    figures = await ref.account_figures.remote()
    assert len(figures) == ACCOUNTS
    for field in ("balance", "equity", "margin"):
        expected = sum(round(getattr(f, field) * f.usd_rate, 2) for f in figures.values())
        assert book["totals"][field] == pytest.approx(expected, abs=0.0051 * len(figures)), field


async def test_tenants_with_the_same_logins_share_hosts_and_stay_exact(
    tenants: tuple[Any, dict[int, TenantRef]],
) -> None:
    host, refs = tenants
    first, second = [await refs[t].placement.remote() for t in TENANTS]
    assert set(first) == set(second)  # the same logins ...
    pids = {t: await refs[t].host_pids.remote() for t in TENANTS}
    assert pids[TENANTS[0]] == pids[TENANTS[1]]  # ... on the same two shared account hosts
    assert len(set(pids[TENANTS[0]].values()) | {await host.pid.remote()}) == 3
    for tenant_id in TENANTS:
        await _exact(refs[tenant_id], tenant_id)  # and each its own figures, to the cent
    login = min(first)
    details = [await refs[t].account_detail.remote(login) for t in TENANTS]
    assert details[0] is not None
    assert details[1] is not None
    assert details[0].figures != details[1].figures  # each tenant reads its own account


async def test_a_shared_host_death_restores_every_tenants_accounts_exactly(
    tenants: tuple[Any, dict[int, TenantRef]],
) -> None:
    _host, refs = tenants
    pids = await refs[TENANTS[0]].host_pids.remote()
    os.kill(pids[0], signal.SIGKILL)
    for tenant_id in TENANTS:
        await _until(refs[tenant_id], lambda s: sum(s["connections"][0]["restarts"].values()) >= 1)
        await _until(refs[tenant_id], lambda s: s["connections"][0]["recovering"] == 0)
    for tenant_id in TENANTS:
        await _exact(refs[tenant_id], tenant_id)
        (conn,) = (await refs[tenant_id].status.remote())["connections"]
        assert (conn["resnapshots"], conn["rejected"]) == (0, {})


async def test_a_failed_tenant_restarts_alone_while_its_neighbour_goes_on(
    tenants: tuple[Any, dict[int, TenantRef]],
) -> None:
    host, refs = tenants
    victim, neighbour = TENANTS
    account_hosts = await refs[victim].host_pids.remote()
    before = _batches(await refs[neighbour].status.remote())
    await host.crash.remote(victim)
    status = await _until(refs[victim], lambda s: s["running"] and _batches(s) >= 5)
    assert status["reconstructed"] is True  # a new logical actor, started from its registration
    assert _batches(await refs[neighbour].status.remote()) > before  # the neighbour never stopped
    assert (await refs[neighbour].status.remote())["reconstructed"] is False
    assert await host.hosted_tenants.remote() == {victim: 1, neighbour: 0}
    assert await refs[victim].host_pids.remote() == account_hosts  # re-attached, no process replaced
    await _book_matches_accounts(refs[victim], victim)
    await _exact(refs[neighbour], neighbour)


async def test_a_killed_tenant_host_brings_back_every_tenant(
    tenants: tuple[Any, dict[int, TenantRef]],
) -> None:
    host, refs = tenants
    account_hosts = await refs[TENANTS[0]].host_pids.remote()
    os.kill(await host.pid.remote(), signal.SIGKILL)
    for tenant_id in TENANTS:
        status = await _until(refs[tenant_id], lambda s: s["running"] and _batches(s) >= 5)
        assert status["reconstructed"] is True
    assert await host.hosted_tenants.remote() == dict.fromkeys(TENANTS, 1)
    assert await refs[TENANTS[0]].host_pids.remote() == account_hosts  # the accounts outlived it
    for tenant_id in TENANTS:
        await _book_matches_accounts(refs[tenant_id], tenant_id)


async def test_calls_a_tenant_host_cannot_answer_are_refused_clearly(
    tenants: tuple[Any, dict[int, TenantRef]],
) -> None:
    host, refs = tenants
    with pytest.raises(LookupError, match="tenant 7199 is not hosted"):
        await TenantRef(host, 7199).status.remote()
    with pytest.raises(ValueError, match="not a public method"):
        await host.call.remote(TENANTS[0], "supervisor", "_sync")
    with pytest.raises(ValueError, match="no role 'hosts'"):
        await host.call.remote(TENANTS[0], "hosts", "status")
    with pytest.raises(ValueError, match="no role 'hosts'"):
        TenantRef(host, TENANTS[0], "hosts")
    assert not await host.add.remote(TENANTS[0], [_spec(TENANTS[0])], 10.0, None)  # hosted already
    assert _batches(await refs[TENANTS[0]].status.remote()) > 0  # and still running
