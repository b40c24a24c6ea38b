"""Stress tests of the live book (`POST /api/v1/stress`) and saved scenarios.

The scenario is the engine's own syntax ("XAUUSD -3%, USD +2% against all"); a part it cannot read
(a bad move, an unknown symbol, class or currency) is a 422 naming `scenario` with a sentence that
names the part. The book is the tenant's live one, read from its engine when the request comes:
409 when that engine runs no MT5 connection or no account, 503 when it cannot be reached. Money is
in integer minor units of each deposit currency (`*_minor`), totals per currency.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from veles.api.db import RowId
from veles.api.deps import Context, requires
from veles.services import stress as service
from veles.services.auth import Identity
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1/stress", tags=["stress"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]
Editor = Annotated[Identity, Depends(requires(Permission.EDIT_RULES))]
_ENGINE: dict[int | str, dict[str, Any]] = {
    409: {"description": "Nothing to stress: the tenant's engine runs no MT5 connection, or no account"},
    503: {"description": "The tenant's engine cannot be reached"},
}


class StressRequest(BaseModel):
    """A scenario to apply to the live book."""

    scenario: str = Field(max_length=service.MAX_SCENARIO, examples=["XAUUSD -3%, USD +2% against all"])


class ScenarioIn(BaseModel):
    """A scenario to save under a name (unique per broker)."""

    name: str = Field(max_length=service.MAX_NAME)
    scenario: str = Field(max_length=service.MAX_SCENARIO)


class ScenarioOut(BaseModel):
    """A saved scenario."""

    id: int
    name: str
    scenario: str
    created_at: str


def _unavailable(exc: service.EngineNotRunning) -> HTTPException:
    if isinstance(exc, service.EngineUnreachable):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "5"})
    return HTTPException(status.HTTP_409_CONFLICT, str(exc))


async def _run(ctx: Context, tenant_id: int, scenario: str) -> dict[str, Any]:
    try:
        return await service.stress_live(ctx.settings, tenant_id, scenario)
    except service.EngineNotRunning as exc:
        raise _unavailable(exc) from exc


@router.post("", responses=_ENGINE)
async def run_stress(ctx: Context, identity: Viewer, body: StressRequest) -> dict[str, Any]:
    """Shock the live book and apply MT5's stop-out cascade: accounts stopped out (with the
    positions closed), negative balances the broker absorbs, B-book P/L for and against the broker,
    exposure after the shock (all books and B-book)."""
    return await _run(ctx, identity.tenant_id, body.scenario)


@router.get("/scenarios")
async def scenarios(ctx: Context, identity: Viewer) -> list[ScenarioOut]:
    """The broker's saved scenarios, by name."""
    rows = await asyncio.to_thread(service.list_scenarios, ctx.settings.database_url, identity.tenant_id)
    return [ScenarioOut(**vars(row)) for row in rows]


@router.post("/scenarios", status_code=status.HTTP_201_CREATED,
             responses={**_ENGINE, 409: {"description": "The name is taken, the broker keeps 100 already, "
                                                       "or its engine runs no connection"}})
async def save(ctx: Context, identity: Editor, body: ScenarioIn) -> ScenarioOut:
    """Save a scenario, checked against the live book's symbols first."""
    service.check_scenario_text(body.scenario)
    try:
        parts = await service.live_parts(ctx.settings, identity.tenant_id)
    except service.EngineNotRunning as exc:
        raise _unavailable(exc) from exc
    row = await asyncio.to_thread(service.save_scenario, ctx.settings.database_url, identity.tenant_id,
                                  identity.user_id, body.name, body.scenario, parts)
    return ScenarioOut(**vars(row))


@router.delete("/scenarios/{scenario_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "No such scenario in your tenant"}})
async def delete(ctx: Context, identity: Editor, scenario_id: RowId) -> None:
    """Delete a saved scenario."""
    await asyncio.to_thread(service.delete_scenario, ctx.settings.database_url, identity.tenant_id,
                            scenario_id)


@router.post("/scenarios/{scenario_id}/run",
             responses={**_ENGINE, 404: {"description": "No such scenario in your tenant"}})
async def run_saved(ctx: Context, identity: Viewer, scenario_id: RowId) -> dict[str, Any]:
    """Run a saved scenario on the live book now."""
    row = await asyncio.to_thread(service.get_scenario, ctx.settings.database_url, identity.tenant_id,
                                  scenario_id)
    return await _run(ctx, identity.tenant_id, row.scenario)
