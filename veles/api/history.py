"""Risk history (`/api/v1/history/accounts/{login}`, `/api/v1/history/book`): points over a range.

Range and resolution limits live in `veles.services.history`; a refused combination is a 422 that
names the field to change.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from models.history import HistoryPoint
from veles.api.db import TenantUnit
from veles.api.deps import requires
from veles.services.auth import Identity
from veles.services.history import BookSeries, HistoryQuery, account_history, book_history
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1/history", tags=["history"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]
Range = Annotated[HistoryQuery, Query()]
ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role may not view risk"},
    409: {"description": "The range is older than the plan keeps history (`upgrade_url`: where to upgrade)"},
}


@router.get("/accounts/{login}", responses={**ERRORS, 404: {"description": "No such account in your tenant"}})
def account(login: Annotated[int, Path(gt=0, lt=2**63)], query: Range, identity: Viewer,
            db: TenantUnit) -> list[HistoryPoint]:
    """One account's equity, balance, margin and floating P/L, one point per bucket."""
    return account_history(db, identity.tenant_id, login, query)


@router.get("/book", responses=ERRORS)
def book(
    query: Range, identity: Viewer, db: TenantUnit,
    series: Annotated[BookSeries, Query(description="A, B, or total")] = BookSeries.TOTAL,
) -> list[HistoryPoint]:
    """The A book, the B book or the tenant's total, one point per bucket."""
    return book_history(db, identity.tenant_id, series, query)
