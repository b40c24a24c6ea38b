"""MT5 connections of the caller's tenant (`/api/v1/connections`): CRUD and a live test.

Tenant admins only (`MANAGE_CONNECTIONS`). Passwords go in, never come out: responses are
`ConnectionView`, which has no credentials field.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from veles.api.db import RowId, TenantUnit
from veles.api.deps import Context, requires
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
from veles.services.permissions import Permission

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])
Admin = Annotated[Identity, Depends(requires(Permission.MANAGE_CONNECTIONS))]
ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "Not signed in"},
    403: {"description": "Role may not manage connections"},
}
ONE = {**ERRORS, 404: {"description": "No such connection in your tenant"}}


@router.get("", responses=ERRORS)
def connections(identity: Admin, db: TenantUnit) -> list[ConnectionView]:
    """Every connection of the tenant, without credentials."""
    return list_connections(db, identity.tenant_id)


@router.post("", status_code=status.HTTP_201_CREATED,
             responses={**ERRORS, 409: {"description": "Duplicate, or over the plan's servers"}})
def add(form: ConnectionForm, identity: Admin, db: TenantUnit, ctx: Context) -> ConnectionView:
    """Add a connection; the password is stored encrypted and never returned."""
    return create_connection(db, ctx.settings, identity.tenant_id, form, actor=identity.user_id)


@router.get("/{connection_id}", responses=ONE)
def one(connection_id: RowId, identity: Admin, db: TenantUnit) -> ConnectionView:
    """One connection, without credentials."""
    return get_connection(db, identity.tenant_id, connection_id)


@router.patch("/{connection_id}", responses={**ONE, 409: {"description": "Duplicate, or over the plan"}})
def change(connection_id: RowId, change: ConnectionChange, identity: Admin, db: TenantUnit,
           ctx: Context) -> ConnectionView:
    """Change server, login, platform or password; the status goes back to pending."""
    return update_connection(db, ctx.settings, identity.tenant_id, connection_id, change,
                             actor=identity.user_id)


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ONE)
def remove(connection_id: RowId, identity: Admin, db: TenantUnit) -> Response:
    """Remove a connection and the accounts known through it."""
    delete_connection(db, identity.tenant_id, connection_id, actor=identity.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{connection_id}/test", responses=ONE)
def test(connection_id: RowId, identity: Admin, db: TenantUnit, ctx: Context) -> ConnectionCheck:
    """Connect to the trade server with the stored credentials now: `ok`, or why not (a wrong
    password, an unreachable server). The outcome is recorded as the connection's status."""
    return check_connection(db, ctx.settings, identity.tenant_id, connection_id)
