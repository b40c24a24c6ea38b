"""Starting and stopping the engine: a supervisor per active tenant that has a connection.

Where it runs: by default every tenant's supervisor and aggregator are logical actors in one of a
few tenant hosts (`actors/tenant_host.py`, `TENANT_HOSTS`, one per CPU by default), its accounts
in the account hosts all those tenants share; with `PROCESS_PER_TENANT` each tenant gets a
`TenantSupervisor` process, an aggregator process and account hosts of its own. Either way it is
found through `actors/tenant_directory.py`.

Each supervisor is created with the tenant's `StoredConnections`, so it feeds every row of
`mt5_connection` (read and decrypted inside the supervisor) besides any simulated broker given
here (the demo). A tenant without a connection starts nothing (no supervisor, no aggregator, no host):
a SaaS node carries hundreds of small brokers, many of them not connected yet. Its first
connection starts its engine (`apply_connections`); when its last one is removed, the supervisor
stops its actors and ends itself. `apply_connections` and `apply_rules` push a change to a running
engine; the web tier calls them, and they only ever *join* Ray (`ray_runtime.join`), off the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import ray

from actors.alert_store import load_rules
from actors.names import host_name, supervisor_name, tenant_host_name
from actors.tenant_directory import forget_tenant_hosts, settle_tenant_hosts, tenant_hosts_in_use
from actors.tenant_host import SHARED_POOL, TenantNotHosted, TenantRef, tenant_host
from actors.tenant_supervisor import TenantSupervisor
from veles.config import Settings
from veles.mt5.connect import GatewaySpec
from veles.services.connection_names import simulated_connection_id
from veles.services.connections import StoredConnections
from veles.services.followers import start_followers, stop_followers
from veles.services.ray_runtime import join, tenant_actor
from veles.services.tenants import active_tenants, plan_of, tenants_with_connections

log = logging.getLogger(__name__)

# A call to a supervisor that ended itself meanwhile (its last connection went): its process is
# gone, or, in a tenant host, the tenant is no longer held there.
_ENDED = (ray.exceptions.RayActorError, TenantNotHosted)


def simulated_gateway(settings: Settings, tenant_id: int, accounts: int) -> GatewaySpec:
    """A simulated broker for a tenant: distinct seed per tenant so books differ."""
    return GatewaySpec(
        kind="simulator",
        connection_id=simulated_connection_id(tenant_id),
        options={
            "accounts": accounts,
            "seed": settings.demo_seed + tenant_id,
            "interval": settings.gateway_interval,
            "login_base": 100_000,
        },
        interval=settings.gateway_interval,
        reconcile_every_s=settings.reconcile_every_s,
    )


def webapi_gateway(settings: Settings, tenant_id: int, url: str, login: int, password: str) -> GatewaySpec:
    """A tenant's broker read through an MT5 Web API (the demo's `--via-webapi`: the simulated
    broker behind the fake Web API), under the same connection id as `simulated_gateway`."""
    return GatewaySpec(kind="webapi", connection_id=simulated_connection_id(tenant_id), options={"url": url},
                       interval=settings.gateway_interval, login=login, password=password,
                       reconcile_every_s=settings.reconcile_every_s)


async def start_engine(
    settings: Settings, simulated_accounts: int = 0,
    gateway_for: Callable[[int], GatewaySpec] | None = None,
) -> list[dict[str, Any]]:
    """Start (or re-attach to) a supervisor per active tenant; returns their status.

    Every tenant's stored connections are fed; with `simulated_accounts` > 0 every tenant is also
    fed by a simulated broker of that many accounts (the demo), or by what `gateway_for(tenant_id)`
    describes instead (the demo through the Web API).
    """
    statuses = []
    connected = tenants_with_connections(settings.database_url)
    for tenant_id, _name in active_tenants(settings.database_url):
        gateways = []
        if simulated_accounts:
            gateways = [gateway_for(tenant_id) if gateway_for is not None
                        else simulated_gateway(settings, tenant_id, simulated_accounts)]
        if not gateways and tenant_id not in connected:
            continue  # nothing to feed: nothing runs until its first connection
        supervisor = await _supervisor(settings, tenant_id, gateways)
        statuses.append(await supervisor.start.remote())
    await start_followers(settings)  # alert delivery and risk history recording, for every tenant
    return statuses


def _tenant_hosts(settings: Settings) -> int:
    """The cluster's number of tenant hosts, fixed by the first process that starts a tenant
    (0: one process per tenant); blocking."""
    wanted = 0 if settings.process_per_tenant else (
        settings.tenant_hosts or max(1, int(ray.cluster_resources().get("CPU", 1))))
    return settle_tenant_hosts(settings.ray_namespace, wanted)


async def _supervisor(settings: Settings, tenant_id: int, gateways: list[GatewaySpec]) -> Any:
    """The tenant's supervisor: created or the running one found (then `gateways` are not
    changed), in its tenant host or as a detached, named process of its own."""
    plan = await asyncio.to_thread(plan_of, settings.database_url, tenant_id)
    args = (gateways, settings.publish_hz, settings.redis_url, plan, settings.database_url,
            StoredConnections(settings, tenant_id), settings.engine_hosts, settings.accounts_per_host)
    hosts = await asyncio.to_thread(_tenant_hosts, settings)
    if not hosts:
        return TenantSupervisor.options(  # type: ignore[attr-defined]
            name=supervisor_name(tenant_id), namespace=settings.ray_namespace, lifetime="detached",
            get_if_exists=True,
        ).remote(tenant_id, *args)
    host = await asyncio.to_thread(tenant_host, tenant_id, hosts, settings.ray_namespace)
    await host.add.remote(tenant_id, *args)  # False: it is there already
    return TenantRef(host, tenant_id)


async def _running_supervisor(settings: Settings, tenant_id: int) -> Any | None:
    """The tenant's supervisor if it runs; None if not."""
    return await tenant_actor(settings, tenant_id, "supervisor")


async def apply_connections(settings: Settings, tenant_id: int, wait: bool = True) -> dict[str, Any]:
    """Make the tenant's running engine feed its stored connections as they are now: start added
    ones, stop removed ones (their accounts leave the book), reopen changed ones.

    Call after the change is committed (the supervisor reads the rows). Returns `running` (False
    when the tenant has no engine now: it reads the rows when it starts) and, when running,
    `connections`, the supervisor's view of each stored connection (state, attempts, error): after
    the sync with `wait`, as it started without (a request handler's choice: stopping a feed can
    take seconds). Without this call a running engine still picks the change up within its sync
    period.
    """
    supervisor = await _running_supervisor(settings, tenant_id)
    if supervisor is not None:
        try:
            status: dict[str, Any] = await supervisor.sync_connections.remote(wait)
            return {"running": True, "connections": status["stored_connections"]}
        except _ENDED:  # it ended itself meanwhile (its last connection went)
            pass
    if not await asyncio.to_thread(_should_run, settings, tenant_id):
        return {"running": False}
    # The tenant's first connection: start its engine, which reads the rows as it starts.
    started = await _start_supervisor(settings, tenant_id, wait)
    return {"running": True, "connections": started.get("stored_connections", {})}


def _should_run(settings: Settings, tenant_id: int) -> bool:
    """Whether the tenant is active and stores a connection (blocking: database)."""
    active = {tid for tid, _name in active_tenants(settings.database_url)}
    return tenant_id in active and tenant_id in tenants_with_connections(settings.database_url)


async def _start_supervisor(settings: Settings, tenant_id: int, wait: bool = True) -> dict[str, Any]:
    """Create (or find) the tenant's supervisor and start it; without `wait`, the start is sent
    and not awaited (creating the actor's process takes seconds a request should not wait)."""
    await join(settings)
    supervisor = await _supervisor(settings, tenant_id, [])
    reference = supervisor.start.remote()
    if not wait:
        return {}
    status: dict[str, Any] = await reference
    return status


async def start_connected(settings: Settings) -> list[int]:
    """Start the engine of every active tenant that has a connection and no engine (a connection
    stored while the engine could not be told); returns the tenants started. `veles engine` runs
    this with its status report. A tenant whose start fails is logged and tried again on the next
    call; the others start all the same, and the loop that calls this (whose end stops every
    tenant's engine) goes on."""
    connected = await asyncio.to_thread(tenants_with_connections, settings.database_url)
    started = []
    for tenant_id, _name in await asyncio.to_thread(active_tenants, settings.database_url):
        if tenant_id in connected and await _running_supervisor(settings, tenant_id) is None:
            try:
                await _start_supervisor(settings, tenant_id)
            except Exception:
                log.exception("tenant %s: its engine did not start; tried again later", tenant_id)
                continue
            started.append(tenant_id)
    return started


async def apply_rules(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """Push the tenant's stored alert rules to its running engine, without a restart.

    Call after a rule is added, changed or removed. Returns `running` (False when the tenant has
    no engine now: it reads the stored rules when it starts), `rules` (the engine ids running:
    stored rules by row id, or the built-in defaults when the tenant has no rows) and `skipped`
    (stored rules the engine cannot run, each naming the rule and the field, e.g. a kind the live
    engine does not evaluate). `equity_drop` thresholds are percent of peak equity.
    """
    rules = await asyncio.to_thread(load_rules, settings.database_url, tenant_id)
    supervisor = await _running_supervisor(settings, tenant_id)
    if supervisor is None:
        return {"running": False, "rules": [rule.id for rule in rules.rules], "skipped": list(rules.skipped)}
    applied: dict[str, Any] = await supervisor.set_rules.remote(rules)
    return {"running": True, **applied}


async def apply_plan(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """Push the tenant's stored plan to its running engine, without a restart (a downgrade
    closes the connections it has no room for, an upgrade opens those refused before). Call after
    the change is committed. Returns `running` and, when running, `connections` as in
    `apply_connections`."""
    plan = await asyncio.to_thread(plan_of, settings.database_url, tenant_id)
    supervisor = await _running_supervisor(settings, tenant_id)
    if supervisor is None:
        return {"running": False}
    status: dict[str, Any] = await supervisor.set_plan.remote(plan)
    return {"running": True, "connections": status["stored_connections"]}


async def engine_status(settings: Settings) -> list[dict[str, Any]]:
    """Every running supervisor's status (tenants without one are left out). A tenant whose
    status cannot be read (it ended itself meanwhile, or its tenant host could not start it
    again) is left out with a warning: one tenant must not take the report of the others, nor
    `veles engine`'s loop that prints it, down with it."""
    statuses = []
    for tenant_id, _name in await asyncio.to_thread(active_tenants, settings.database_url):
        supervisor = await _running_supervisor(settings, tenant_id)
        if supervisor is None:
            continue
        try:
            statuses.append(await supervisor.status.remote())
        except _ENDED as exc:
            log.warning("tenant %s: engine status unavailable: %s", tenant_id, exc)
    return statuses


def status_line(status: dict[str, Any]) -> str:
    """One line an operator can scan: progress, merges, restarts and refusals per connection."""
    parts = [f"tenant {status['tenant_id']} ({status['plan']})"]
    for conn in status["connections"]:
        parts.append(
            f"{conn['connection_id']}: {conn['accounts']} accounts, {conn['batches']} batches, "
            f"{conn['deals']} deals, {conn['merged_batches']} merged, on {conn['hosts']} hosts "
            f"({conn['hosts_recovering']} recovering), {conn['recovering']} accounts recovering, "
            f"{conn['failed']} failed, {conn['resnapshots']} re-snapshotted, "
            f"restarts {conn['restarts'] or 0}, rejected {conn['rejected'] or 0}"
        )
    parts.extend(f"{cid}: REFUSED {why}" for cid, why in status["refused_connections"].items())
    parts.extend(f"{cid}: {feed['state'].upper()} {feed['error']}"
                 for cid, feed in status.get("stored_connections", {}).items() if feed["error"])
    return " | ".join(parts)


async def stop_engine(settings: Settings) -> None:
    """Stop every tenant's supervisor and its children: the tenant hosts with every tenant they
    hold (suspended ones too) and the account hosts those tenants shared, and any tenant's own
    supervisor process."""
    await stop_followers(settings)
    namespace = settings.ray_namespace
    for tenant_id, _name in active_tenants(settings.database_url):
        try:
            supervisor = ray.get_actor(supervisor_name(tenant_id), namespace=namespace)
        except ValueError:
            continue
        try:
            await asyncio.wait_for(supervisor.stop.remote(), timeout=30)
        except ray.exceptions.RayActorError:  # it ended itself meanwhile (its last connection went)
            continue
        ray.kill(supervisor)
    hosts = await asyncio.to_thread(tenant_hosts_in_use, namespace)
    for index in range(hosts or 0):
        try:
            host = ray.get_actor(tenant_host_name(index), namespace=namespace)
        except ValueError:
            continue
        with contextlib.suppress(ray.exceptions.RayActorError, TimeoutError):  # died: killed below
            await asyncio.wait_for(host.remove_all.remote(), timeout=60)
        ray.kill(host, no_restart=True)
    if hosts:
        shared = host_name(SHARED_POOL, 0)[:-1]
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor["namespace"] == namespace and actor["name"].startswith(shared):
                with contextlib.suppress(ValueError):
                    ray.kill(ray.get_actor(actor["name"], namespace=namespace), no_restart=True)
    await asyncio.to_thread(forget_tenant_hosts, namespace)


async def suspend_tenant(settings: Settings, tenant_id: int) -> bool:
    """Stop one tenant's feeds, account actors and aggregator; False if it had no supervisor.

    The supervisor itself stays (one idle actor) and keeps the tenant's connection specs, so
    `resume_tenant` brings back the same feeds without anyone having to remember them.
    """
    supervisor = await _running_supervisor(settings, tenant_id)
    if supervisor is None:
        return False
    try:
        await asyncio.wait_for(supervisor.stop.remote(), timeout=30)
    except _ENDED:  # it ended itself meanwhile (its last connection went)
        return False
    return True


async def resume_tenant(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """Start one tenant's engine again (a suspended supervisor keeps the feeds it was given), or
    for the first time when the tenant stores a connection; returns the supervisor's status, or
    `{"running": False}` when there is nothing to feed (a new tenant: nothing runs until its
    first connection)."""
    if await _running_supervisor(settings, tenant_id) is None:
        connected = await asyncio.to_thread(tenants_with_connections, settings.database_url)
        if tenant_id not in connected:
            return {"tenant_id": tenant_id, "running": False}
    return await _start_supervisor(settings, tenant_id)
