"""The book's toxic flow (`GET /api/v1/flow`): accounts per label, B-book P/L by label, the most
toxic accounts and their A/B-book advice. Read from this process's replica of the book (no engine
call); one account's profile is `GET /api/v1/accounts/{login}/flow`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from veles.api.book import published_or_503
from veles.api.deps import Context, requires
from veles.risk.flow.desk import flow_summary
from veles.services.auth import Identity
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1", tags=["flow"])
Viewer = Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]


class LabelPnl(BaseModel):
    """One primary label's B-book accounts, the broker's P/L on them (minus the clients'
    closed-while-monitored and floating results) and what routing the toxic ones to the A-book
    would have saved; money in USD cents."""

    label: str
    accounts: int
    broker_pnl_usd_minor: int
    saved_usd_minor: int


class FlowSummary(BaseModel):
    """`labels`: accounts per primary label; `b_book_pnl_by_label`: the B-book's P/L per label;
    `a_book_savings_usd_minor`: what the A-book advice would have saved, in all (the labels'
    sum); `top`: the most toxic accounts with their advice (`client_result_usd_minor`,
    `saved_usd_minor`). Money is in integer minor units (USD cents), exact to the cent."""

    version: int
    accounts: int
    toxic: int
    labels: dict[str, int]
    b_book_pnl_by_label: list[LabelPnl]
    a_book_savings_usd_minor: int
    top: list[dict[str, Any]]


@router.get("/flow", responses={401: {"description": "Not signed in"},
                                403: {"description": "Role may not view risk"},
                                503: {"description": "The engine has not published this book yet"}})
async def flow(ctx: Context, identity: Viewer,
               top: Annotated[int, Query(ge=1, le=100, description="Most toxic accounts listed.")] = 10,
               ) -> FlowSummary:
    """The tenant's toxic flow, as the book was last published."""
    replica = await published_or_503(ctx, identity.tenant_id)
    return FlowSummary(version=replica.version, **flow_summary(list(replica.rows.values()), top))
