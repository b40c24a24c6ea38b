"""What the dealer's desk asks the running engine, off the event loop: the aggregator's
per-account exposure entries and the supervisor's connection facts (freshness, logins per
connection, symbol currencies). Both are found wherever the tenant runs (its own processes or a
tenant host: `ray_runtime.tenant_actor`, a lookup in a thread that never starts a cluster); a
tenant that runs no engine has neither (ValueError)."""

from __future__ import annotations

from typing import Any

from veles.config import Settings
from veles.services.ray_runtime import tenant_actor


async def _actor(settings: Settings, tenant_id: int, role: str) -> Any:
    actor = await tenant_actor(settings, tenant_id, role)
    if actor is None:
        raise ValueError(f"tenant {tenant_id} runs no {role}")
    return actor


async def exposure_entries(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """`ColumnBook.exposure_entries` of the tenant's aggregator: one consistent moment."""
    aggregator = await _actor(settings, tenant_id, "aggregator")
    answer: dict[str, Any] = await aggregator.exposure_entries.remote()
    return answer


async def desk_info(settings: Settings, tenant_id: int, logins: bool = True) -> dict[str, Any]:
    """`Supervisor.desk_info`: connections' freshness and logins, symbols' currencies."""
    supervisor = await _actor(settings, tenant_id, "supervisor")
    answer: dict[str, Any] = await supervisor.desk_info.remote(logins)
    return answer
