"""The caller's book totals (`GET /api/v1/book`), read from this process's LiveFeed replica.

The tenant comes from the token, never from the request, so a client cannot ask for another
broker's book.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from veles.api.deps import ApiContext, Context, requires
from veles.services.auth import Identity
from veles.services.live import TenantReplica, empty_replica
from veles.services.permissions import Permission
from veles.services.tenants import stores_connection

router = APIRouter(prefix="/api/v1", tags=["book"])

# Bounds the feed's first look for a tenant's engine (found or not, it answers at once; this only
# ends a look that hangs, such as a first join of an engine that does not answer).
FIRST_LOOK_WAIT = 2.0


class Book(BaseModel):
    """The book as last published by the tenant's risk aggregator."""

    tenant_id: int
    version: int
    published_at: float
    accounts: int
    totals: dict[str, Any]


async def published_or_503(ctx: ApiContext, tenant_id: int) -> TenantReplica:
    """What is known of the tenant's book, at once: the engine's published replica; an empty book
    for a tenant that runs no engine and stores no MT5 connection (nothing will ever be published,
    so "try again" would be a lie); else 503 with Retry-After (a connection is stored but its
    engine has not published yet). Never waits for a book that is not coming: the feed answers
    as soon as its first look for the tenant's engine came back (`LiveFeed.published`); the
    demo runs engines for tenants that store no connection, so only the look can tell."""
    replica = await ctx.live_feed().published(tenant_id, FIRST_LOOK_WAIT)
    if replica is None and not await asyncio.to_thread(
        stores_connection, ctx.settings.database_url, tenant_id
    ):
        return empty_replica()
    if replica is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The risk engine has not published this broker's book yet; try again shortly.",
            headers={"Retry-After": "5"},
        )
    return replica


@router.get("/book", responses={401: {"description": "Not signed in"},
                                403: {"description": "Role may not view risk"},
                                503: {"description": "Not published"}})
async def book(ctx: Context, identity: Annotated[Identity, Depends(requires(Permission.VIEW_RISK))]) -> Book:
    """The caller's tenant's book totals (zero while it has no MT5 connection); 503 until the
    engine of a tenant with a connection has published that book."""
    replica = await published_or_503(ctx, identity.tenant_id)
    return Book(
        tenant_id=identity.tenant_id,
        version=replica.version,
        published_at=replica.published_at,
        accounts=len(replica.rows),
        totals=replica.totals,
    )
