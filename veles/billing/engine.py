"""Telling the engine what billing decided: a plan change, a suspension, a reactivation.

The database is changed first (in the event's or the step's transaction); then the running engine
is told at once. When it cannot be reached (no RAY_ADDRESS on this web process, or it is down) the
change is logged: a suspended tenant is not started again (`active_tenants`), and a plan is read
by a supervisor when it starts.
"""

from __future__ import annotations

import logging
from typing import Protocol

from veles.config import Settings
from veles.services.engine import apply_plan, resume_tenant, suspend_tenant
from veles.services.ray_runtime import EngineUnreachable

log = logging.getLogger(__name__)


class EngineChange(Protocol):
    tenant_id: int | None
    plan_changed: bool
    suspend: bool
    resume: bool


async def follow(settings: Settings, change: EngineChange) -> None:
    """Push one billing decision to the running engine (never raises for an unreachable one)."""
    if change.tenant_id is None:
        return
    try:
        if change.suspend:
            await suspend_tenant(settings, change.tenant_id)
        if change.resume:
            await resume_tenant(settings, change.tenant_id)
        if change.plan_changed and not change.suspend:
            await apply_plan(settings, change.tenant_id)
    except EngineUnreachable as exc:
        log.warning("billing: tenant %s's engine not told (%s); it applies the change when it starts",
                    change.tenant_id, exc)
