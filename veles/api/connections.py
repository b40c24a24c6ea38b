"""MT5 connections of the caller's tenant (`/api/v1/connections`): CRUD and a live test.

Tenant admins only (`MANAGE_CONNECTIONS`). Passwords go in, never come out: responses are
`ConnectionView`, which has no credentials field.

An add, change or removal is committed, then pushed to the tenant's running engine
(`veles.services.engine.apply_connections`): it starts feeding the new connection, reopens a
changed one, stops a removed one. The engine's outcome (connected, or failed with why) lands on
the row, where `GET` shows it. An engine that cannot be reached now picks the change up itself
within its sync period, so the request does not fail for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from veles.api.db import RowId, TenantUnit
from veles.api.deps import ApiContext, Context, requires
from veles.services.auth import Identity
from veles.services.connections import (
    ConnectionChange,
    ConnectionCheck,
    ConnectionForm,
    ConnectionView,
    check_connection,
    create_connection,
    delete_connection,
    get_connection,
    list_connections,
    update_connection,
)
from veles.services.engine import apply_connections
from veles.services.permissions import Permission

log = logging.getLogger(__name__)
T = TypeVar("T")
APPLY_TIMEOUT_S = 10.0

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])
Admin = Annotated[Identity, Depends(requires(Permission.MANAGE_CONNECTIONS))]
ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role may not manage connections"},
}
ONE = {**ERRORS, 404: {"description": "No such connection in your tenant"}}


async def _applied(ctx: ApiContext, db: Session, tenant_id: int, work: Callable[[], T]) -> T:
    """Run a change and commit it (the engine reads the rows), then tell the running engine."""

    def committed() -> T:
        result = work()
        db.commit()
        return result

    result = await run_in_threadpool(committed)
    try:
        await asyncio.wait_for(apply_connections(ctx.settings, tenant_id, wait=False), APPLY_TIMEOUT_S)
    except Exception as exc:  # no engine reachable now: it syncs the stored rows by itself
        log.info("tenant %s: connections saved; the engine was not told now: %s", tenant_id, exc)
    return result


@router.get("", responses=ERRORS)
def connections(identity: Admin, db: TenantUnit) -> list[ConnectionView]:
    """Every connection of the tenant, without credentials."""
    return list_connections(db, identity.tenant_id)


@router.post("", status_code=status.HTTP_201_CREATED,
             responses={**ERRORS, 409: {"description": "Duplicate, or over the plan's servers"}})
async def add(form: ConnectionForm, identity: Admin, db: TenantUnit, ctx: Context) -> ConnectionView:
    """Add a connection; the password is stored encrypted and never returned. The running engine
    starts feeding it."""
    return await _applied(ctx, db, identity.tenant_id, lambda: create_connection(
        db, ctx.settings, identity.tenant_id, form, actor=identity.user_id))


@router.get("/{connection_id}", responses=ONE)
def one(connection_id: RowId, identity: Admin, db: TenantUnit) -> ConnectionView:
    """One connection, without credentials."""
    return get_connection(db, identity.tenant_id, connection_id)


@router.patch("/{connection_id}", responses={**ONE, 409: {"description": "Duplicate, or over the plan"}})
async def change(connection_id: RowId, change: ConnectionChange, identity: Admin, db: TenantUnit,
                 ctx: Context) -> ConnectionView:
    """Change server, login, platform or password; the status goes back to pending and the running
    engine reopens the connection with the new details."""
    return await _applied(ctx, db, identity.tenant_id, lambda: update_connection(
        db, ctx.settings, identity.tenant_id, connection_id, change, actor=identity.user_id))


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
async def remove(connection_id: RowId, identity: Admin, db: TenantUnit, ctx: Context) -> Response:
    """Remove a connection and the accounts known through it; the running engine stops feeding it
    and its accounts leave the book."""
    await _applied(ctx, db, identity.tenant_id, lambda: delete_connection(
        db, identity.tenant_id, connection_id, actor=identity.user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{connection_id}/test", responses=ONE)
def test(connection_id: RowId, identity: Admin, db: TenantUnit, ctx: Context) -> ConnectionCheck:
    """Connect to the trade server with the stored credentials now: `ok`, or why not (a wrong
    password, an unreachable server). The outcome is recorded as the connection's status."""
    return check_connection(db, ctx.settings, identity.tenant_id, connection_id)
