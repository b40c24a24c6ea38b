"""The caller's trading accounts, live (`/api/v1/accounts`, `/api/v1/accounts/{login}`).

The list is read from this process's LiveFeed replica of the tenant's book (filter, sort and
paginate cost no engine call); one account's detail, with its open positions and its most recent
deals, is asked of the tenant's own supervisor, so another tenant's login is simply not found.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field
from ray.exceptions import RayError

from actors.wire import ACCOUNT_FIELDS
from veles.api.book import published_or_503
from veles.api.deps import Context, requires
from veles.risk.alerts import FLOW_LABELS
from veles.risk.events import Deal, DealKind
from veles.risk.flow.summary import FLOW_FIELDS, routing
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

SortField = StrEnum("SortField", {name: name for name in (*ACCOUNT_FIELDS, *FLOW_FIELDS)})  # type: ignore[misc]
LABELS = "|".join(FLOW_LABELS)


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
    """An open position with its floating profit in the account's currency; when it opened (the
    MT5 server's clock; null where the feed did not say) and its stop loss and take profit (0:
    none)."""

    ticket: int
    time: datetime | None = None
    symbol: str
    side: str
    volume: float
    price_open: float
    sl: float = 0.0
    tp: float = 0.0
    swap: float
    commission: float
    profit: float


class DealView(BaseModel):
    """One MT5 deal. `type` is buy, sell, balance or credit; `entry` in, out or inout (trade deals).
    As in MT5, a balance or credit operation carries its money in `profit`."""

    ticket: int
    time: datetime
    symbol: str
    type: str
    entry: str
    volume: float
    price: float
    profit: float
    commission: float
    swap: float
    position_id: int
    comment: str

    @classmethod
    def of(cls, deal: Deal) -> DealView:
        """The API's view of an engine deal."""
        money = deal.kind in (DealKind.BALANCE, DealKind.CREDIT)
        return cls(ticket=deal.ticket, time=datetime.fromtimestamp(deal.time_msc / 1000, UTC),
                   symbol=deal.symbol, type=deal.kind.value, entry=deal.entry.value, volume=deal.volume,
                   price=deal.price, profit=deal.amount if money else deal.profit,
                   commission=deal.commission, swap=deal.swap, position_id=deal.position_id,
                   comment=deal.comment)


class AccountDetail(BaseModel):
    """One account: every figure the engine keeps, its open positions, and its most recent deals,
    newest first (at most 50, those the engine applied since it began feeding the account)."""

    figures: dict[str, Any]
    positions: list[Position]
    deals: list[DealView]
    digits: dict[str, int] = Field(
        description="Decimal places of every symbol the account's MT5 server lists, as it quotes "
        "them: show prices with these, not a fixed count (JPY pairs 3, gold 2, most pairs 5).")
    status: str = Field(default="live", description="live; recovering (its engine process is being "
                        "restored: figures as of its last checkpoint); failed (the engine gave up on it)")


def _matches(row: dict[str, Any], book: str | None, state: str | None, group: str | None,
             country: str | None, server: str | None) -> bool:
    return ((book is None or row.get("book") == book) and (state is None or row.get("state") == state)
            and (group is None or row.get("group") == group)
            and (country is None or row.get("country") == country)
            and (server is None or row.get("server") == server))


@router.get("", responses=ERRORS)
async def accounts(
    ctx: Context,
    identity: Viewer,
    q: Annotated[str, Query(max_length=64,
                            description="Part of a login, group, client name, country or server.")] = "",
    book: Annotated[str | None, Query(pattern="^[AB]$", description="A or B book.")] = None,
    state: Annotated[str | None, Query(pattern="^(ok|margin_call|stop_out)$")] = None,
    group: Annotated[str | None, Query(max_length=64, description="Exact MT5 group.")] = None,
    country: Annotated[str | None, Query(max_length=64, description="Exact client country.")] = None,
    server: Annotated[str | None, Query(max_length=64,
                                        description="Exact connection (server) id, e.g. conn-3.")] = None,
    label: Annotated[str | None, Query(pattern=f"^({LABELS}|ordinary)$",
                                       description="A toxic-flow label the account carries.")] = None,
    sort: SortField = SortField["login"],
    order: Order = Order.ASC,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccountPage:
    """Accounts of the caller's tenant: filtered, sorted by any figure, one page at a time. Each
    row carries the client's `name` and `country` (from the MT5 user record; "" where the server
    has none) and the `server` (connection) feeding it, its margin-pressure `risk_score` ("margin
    risk") and its toxic flow: `toxicity` (0-100), `flow_label` (the primary label), `flow_labels`
    (every label, comma-separated) and `flow_pnl` (the client's closed result while monitored,
    deposit currency)."""
    replica = await published_or_503(ctx, identity.tenant_id)
    subset = TenantReplica(rows={login: row for login, row in replica.rows.items()
                                 if _matches(row, book, state, group, country, server)})
    rows, total = subset.page(sort.value, order is Order.DESC, offset, limit, q, label=label or "")
    return AccountPage(version=replica.version, total=total, offset=offset, limit=limit, accounts=rows)


@router.get("/{login}", responses={**ERRORS, 404: {"description": "No such account in your tenant"}})
async def account(
    login: Annotated[int, Path(gt=0, lt=2**63)], ctx: Context, identity: Viewer
) -> AccountDetail:
    """One account's figures, open positions and recent deals, from the engine now."""
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
                 price_open=p.price_open, swap=p.swap, commission=p.commission, sl=p.sl, tp=p.tp,
                 time=datetime.fromtimestamp(p.time_msc / 1000, UTC) if p.time_msc else None,
                 profit=detail.profits.get(p.ticket, 0.0))
        for p in detail.positions
    ]
    return AccountDetail(figures=figures, positions=positions, deals=[DealView.of(d) for d in detail.deals],
                         digits=detail.digits, status=detail.status)


class FlowProfile(BaseModel):
    """One account's toxic flow: score and labels, every detector's finding (points, measured
    numbers, evidence deal tickets, linked accounts), the markout curve at 1 s / 5 s / 60 s (mid
    move in the client's favour, in spreads), the holding-time histogram of its closed trades,
    and the A/B-book advice (`routing`: `advice`, `client_result_usd_minor` and what the A-book
    would have saved, `saved_usd_minor`, in integer USD cents)."""

    profile: dict[str, Any]
    routing: dict[str, Any]


@router.get("/{login}/flow", responses={**ERRORS, 404: {"description": "No such account in your tenant"}})
async def account_flow(
    login: Annotated[int, Path(gt=0, lt=2**63)], ctx: Context, identity: Viewer
) -> FlowProfile:
    """One account's toxic-flow profile, from the engine's detectors now."""
    replica = await published_or_503(ctx, identity.tenant_id)
    row = replica.rows.get(login)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No account {login}.")
    try:
        profile = await ctx.live_feed().flow_profile(identity.tenant_id, login)
    except (ValueError, ConnectionError, RayError) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "The risk engine is not running for "
                            "this broker; try again shortly.", headers={"Retry-After": "5"}) from exc
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No account {login}.")
    return FlowProfile(profile=profile, routing=routing(row))
