"""The caller's trading accounts, live (`/api/v1/accounts`, `/api/v1/accounts/{login}`).

The list is read from this process's LiveFeed replica of the tenant's book (filter, sort and
paginate cost no engine call); one account's detail, with its open positions, is asked of the
tenant's own supervisor, so another tenant's login is simply not found.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel
from ray.exceptions import RayError

from actors.wire import ACCOUNT_FIELDS
from veles.api.book import published_or_503
from veles.api.deps import Context, requires
from veles.services.auth import Identity
from veles.services.live import TenantReplica
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]
ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role may not view risk"},
    503: {"description": "The engine has not published this book yet"},
}

SortField = StrEnum("SortField", {name: name for name in ACCOUNT_FIELDS})  # type: ignore[misc]


class Order(StrEnum):
    """Sort direction."""

    ASC = "asc"
    DESC = "desc"


class AccountPage(BaseModel):
    """One page of accounts and how many match the filters."""

    version: int
    total: int
    offset: int
    limit: int
    accounts: list[dict[str, Any]]


class Position(BaseModel):
    """An open position with its floating profit in the account's currency."""

    ticket: int
    symbol: str
    side: str
    volume: float
    price_open: float
    swap: float
    commission: float
    profit: float


class AccountDetail(BaseModel):
    """One account: every figure the engine keeps, and its open positions."""

    figures: dict[str, Any]
    positions: list[Position]


def _matches(row: dict[str, Any], book: str | None, state: str | None, group: str | None) -> bool:
    return ((book is None or row.get("book") == book) and (state is None or row.get("state") == state)
            and (group is None or row.get("group") == group))


@router.get("", responses=ERRORS)
async def accounts(
    ctx: Context,
    identity: Viewer,
    q: Annotated[str, Query(max_length=64, description="Part of a login or group.")] = "",
    book: Annotated[str | None, Query(pattern="^[AB]$", description="A or B book.")] = None,
    state: Annotated[str | None, Query(pattern="^(ok|margin_call|stop_out)$")] = None,
    group: Annotated[str | None, Query(max_length=64, description="Exact MT5 group.")] = None,
    sort: SortField = SortField["login"],
    order: Order = Order.ASC,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccountPage:
    """Accounts of the caller's tenant: filtered, sorted by any figure, one page at a time."""
    replica = await published_or_503(ctx, identity.tenant_id)
    subset = TenantReplica(rows={login: row for login, row in replica.rows.items()
                                 if _matches(row, book, state, group)})
    rows, total = subset.page(sort.value, order is Order.DESC, offset, limit, q)
    return AccountPage(version=replica.version, total=total, offset=offset, limit=limit, accounts=rows)


@router.get("/{login}", responses={**ERRORS, 404: {"description": "No such account in your tenant"}})
async def account(
    login: Annotated[int, Path(gt=0, lt=2**63)], ctx: Context, identity: Viewer
) -> AccountDetail:
    """One account's figures and open positions, from the engine now."""
    try:
        detail = await ctx.live_feed().account_detail(identity.tenant_id, login)
    except (ValueError, ConnectionError, RayError) as exc:  # no supervisor by that name, or no Ray
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "The risk engine is not running for "
                            "this broker; try again shortly.", headers={"Retry-After": "5"}) from exc
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No account {login}.")
    figures = dataclasses.asdict(detail.figures)
    positions = [
        Position(ticket=p.ticket, symbol=p.symbol, side=p.side.value, volume=p.volume,
                 price_open=p.price_open, swap=p.swap, commission=p.commission,
                 profit=detail.profits.get(p.ticket, 0.0))
        for p in detail.positions
    ]
    return AccountDetail(figures=figures, positions=positions)
