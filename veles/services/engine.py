"""Starting and stopping the engine: one TenantSupervisor per active tenant."""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from actors.alert_store import load_rules
from actors.names import supervisor_name
from actors.tenant_supervisor import TenantSupervisor
from veles.config import Settings
from veles.mt5.connect import GatewaySpec
from veles.services.followers import start_followers, stop_followers
from veles.services.ray_runtime import connect
from veles.services.tenants import active_tenants, plan_of


def simulated_gateway(settings: Settings, tenant_id: int, accounts: int) -> GatewaySpec:
    """A simulated broker for a tenant: distinct seed per tenant so books differ."""
    return GatewaySpec(
        kind="simulator",
        connection_id=f"sim-{tenant_id}",
        options={
            "accounts": accounts,
            "seed": settings.demo_seed + tenant_id,
            "interval": settings.gateway_interval,
            "login_base": 100_000,
        },
        interval=settings.gateway_interval,
    )


async def start_engine(settings: Settings, simulated_accounts: int = 0) -> list[dict[str, Any]]:
    """Start (or re-attach to) a supervisor per active tenant; returns their status.

    With `simulated_accounts` > 0 every tenant is fed by a simulated broker of that many accounts
    (the demo); real MT5 connections are read from the database once tenants can add them.
    """
    statuses = []
    for tenant_id, _name in active_tenants(settings.database_url):
        gateways = [simulated_gateway(settings, tenant_id, simulated_accounts)] if simulated_accounts else []
        supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
            name=supervisor_name(tenant_id), lifetime="detached", get_if_exists=True
        ).remote(tenant_id, gateways, settings.publish_hz, settings.redis_url,
                 plan_of(settings.database_url, tenant_id), settings.database_url)
        statuses.append(await supervisor.start.remote())
    await start_followers(settings)  # alert delivery and risk history recording, for every tenant
    return statuses


async def apply_rules(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """Push the tenant's stored alert rules to its running engine, without a restart.

    Call after a rule is added, changed or removed. Returns `running` (False when the tenant has
    no engine now: it reads the stored rules when it starts), `rules` (the engine ids running:
    stored rules by row id, or the built-in defaults when the tenant has no rows) and `skipped`
    (stored rules the engine cannot run, each naming the rule and the field, e.g. a kind the live
    engine does not evaluate). `equity_drop` thresholds are percent of peak equity.
    """
    rules = await asyncio.to_thread(load_rules, settings.database_url, tenant_id)
    connect(settings)
    try:
        supervisor = ray.get_actor(supervisor_name(tenant_id), namespace=settings.ray_namespace)
    except ValueError:
        return {"running": False, "rules": [rule.id for rule in rules.rules], "skipped": list(rules.skipped)}
    applied: dict[str, Any] = await supervisor.set_rules.remote(rules)
    return {"running": True, **applied}


async def engine_status(settings: Settings) -> list[dict[str, Any]]:
    """Every running supervisor's status (tenants without one are left out)."""
    statuses = []
    for tenant_id, _name in active_tenants(settings.database_url):
        try:
            supervisor = ray.get_actor(supervisor_name(tenant_id))
        except ValueError:
            continue
        statuses.append(await supervisor.status.remote())
    return statuses


def status_line(status: dict[str, Any]) -> str:
    """One line an operator can scan: progress, merges, restarts and refusals per connection."""
    parts = [f"tenant {status['tenant_id']} ({status['plan']})"]
    for conn in status["connections"]:
        parts.append(
            f"{conn['connection_id']}: {conn['accounts']} accounts, {conn['batches']} batches, "
            f"{conn['deals']} deals, {conn['merged_batches']} merged, "
            f"{conn['compiled_partitions']}/{conn['partitions']} partitions compiled "
            f"({conn['graph_failures']} graph failures), "
            f"restarts {conn['restarts'] or 0}, rejected {conn['rejected'] or 0}"
        )
    parts.extend(f"{cid}: REFUSED {why}" for cid, why in status["refused_connections"].items())
    return " | ".join(parts)


async def stop_engine(settings: Settings) -> None:
    """Stop every tenant's supervisor and its children."""
    await stop_followers(settings)
    for tenant_id, _name in active_tenants(settings.database_url):
        try:
            supervisor = ray.get_actor(supervisor_name(tenant_id))
        except ValueError:
            continue
        await asyncio.wait_for(supervisor.stop.remote(), timeout=30)
        ray.kill(supervisor)


async def suspend_tenant(settings: Settings, tenant_id: int) -> bool:
    """Stop one tenant's feeds, account actors and aggregator; False if it had no supervisor.

    The supervisor itself stays (one idle actor) and keeps the tenant's connection specs, so
    `resume_tenant` brings back the same feeds without anyone having to remember them.
    """
    connect(settings)
    try:
        supervisor = ray.get_actor(supervisor_name(tenant_id), namespace=settings.ray_namespace)
    except ValueError:
        return False
    await asyncio.wait_for(supervisor.stop.remote(), timeout=30)
    return True


async def resume_tenant(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """Start one tenant's engine again (or for the first time: a new tenant has no feeds yet);
    returns the supervisor's status."""
    connect(settings)
    supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
        name=supervisor_name(tenant_id), namespace=settings.ray_namespace, lifetime="detached",
        get_if_exists=True,
    ).remote(tenant_id, [], settings.publish_hz, settings.redis_url,
             plan_of(settings.database_url, tenant_id), settings.database_url)
    status: dict[str, Any] = await supervisor.start.remote()
    return status
