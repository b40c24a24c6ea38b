"""The caller's book totals (`GET /api/v1/book`), read from this process's LiveFeed replica.

The tenant comes from the token, never from the request, so a client cannot ask for another
broker's book.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel

from veles.api.deps import ApiContext, Context, requires
from veles.services.auth import Identity
from veles.services.live import LiveFeed, TenantReplica, empty_replica
from veles.services.permissions import Permission
from veles.services.tenants import stores_connection

router = APIRouter(prefix="/api/v1", tags=["book"])

FIRST_SNAPSHOT_WAIT = 2.0  # seconds to wait for a tenant this process was not following yet


class Book(BaseModel):
    """The book as last published by the tenant's risk aggregator."""

    tenant_id: int
    version: int
    published_at: float
    accounts: int
    totals: dict[str, Any]


async def _published(feed: LiveFeed, tenant_id: int) -> TenantReplica | None:
    """The replica once it holds a published book; starts following the tenant if nobody in this
    process does yet, and waits briefly for its first snapshot."""
    replica = feed.replica(tenant_id)
    if replica.version >= 0:
        return replica
    # watch() is an async generator; closing it ends its bus subscription.
    updates = cast(AsyncGenerator[TenantReplica, None], feed.watch(tenant_id))
    try:
        return await asyncio.wait_for(anext(updates), FIRST_SNAPSHOT_WAIT)
    except TimeoutError:
        return None
    finally:
        await updates.aclose()


async def published_or_503(ctx: ApiContext, tenant_id: int) -> TenantReplica:
    """The tenant's published replica; an empty book for a tenant that stores no MT5 connection
    (no engine runs for it, by design, so nothing will ever be published and "try again" would be
    a lie); else 503 with Retry-After while its engine has not published yet."""
    replica = await _published(ctx.live_feed(), tenant_id)
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
