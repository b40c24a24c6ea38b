"""`GET /api/v1/var`: 1-day VaR of the live B-book (historical and variance-covariance, 95% and
99%, each symbol's contribution) over the daily closes the engine keeps; 409 when it cannot be
measured (no engine, a flat B-book, too little history: the detail says which), 503 when the
engine cannot be reached."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status

from veles.api.deps import Context, requires
from veles.services import var as service
from veles.services.auth import Identity
from veles.services.permissions import Permission
from veles.services.stress import EngineNotRunning, EngineUnreachable

router = APIRouter(prefix="/api/v1/var", tags=["stress"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]


@router.get("", responses={
    409: {"description": "Nothing to measure yet: no engine or account, a flat B-book, or too few daily "
                         "closes stored"},
    503: {"description": "The tenant's engine cannot be reached"},
})
async def var(ctx: Context, identity: Viewer) -> dict[str, Any]:
    """VaR of the broker's B-book exposure as it stands now; money in USD."""
    try:
        return await service.var_live(ctx.settings, identity.tenant_id)
    except EngineUnreachable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc),
                            headers={"Retry-After": "5"}) from exc
    except (EngineNotRunning, service.VarUnavailable) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
