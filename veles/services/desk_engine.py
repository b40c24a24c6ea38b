"""What the dealer's desk asks the running engine, off the event loop: the aggregator's
per-account exposure entries and the supervisor's connection facts (freshness, logins per
connection, symbol currencies). Both actors are found by name (`ray_runtime.named_actor`, a lookup
in a thread that never starts a cluster); a tenant with no engine has neither (ValueError)."""

from __future__ import annotations

from typing import Any

from actors.names import aggregator_name, supervisor_name
from veles.config import Settings
from veles.services.ray_runtime import named_actor


async def exposure_entries(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """`ColumnBook.exposure_entries` of the tenant's aggregator: one consistent moment."""
    aggregator = await named_actor(settings, aggregator_name(tenant_id))
    answer: dict[str, Any] = await aggregator.exposure_entries.remote()
    return answer


async def desk_info(settings: Settings, tenant_id: int, logins: bool = True) -> dict[str, Any]:
    """`TenantSupervisor.desk_info`: connections' freshness and logins, symbols' currencies."""
    supervisor = await named_actor(settings, supervisor_name(tenant_id))
    answer: dict[str, Any] = await supervisor.desk_info.remote(logins)
    return answer
