"""Connection names for the screens, from the stored connections on the real PostgreSQL (row-level
security on: a tenant reads only its own), read once per TTL per tenant, off the event loop."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from actors.feeds import stored_connection_id
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Tenant
from veles.services import connection_names as names_module
from veles.services.connection_names import SIMULATED_NAME, connection_names, read_connection_names

pytestmark = pytest.mark.postgres


def _tenant_with(database: str, *connections: tuple[str, int]) -> tuple[int, list[int]]:
    with session_scope(database) as session:
        tenant = Tenant(name=f"Names {uuid.uuid4().hex[:8]} Ltd")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        rows = [Mt5Connection(tenant_id=tenant.id, server=server, login=login, credentials_encrypted=b"x")
                for server, login in connections]
        session.add_all(rows)
        session.flush()
        return tenant.id, [row.id for row in rows if row.id is not None]


def test_each_connection_is_named_by_its_server_and_login_where_two_share_one(database: str) -> None:
    tenant_id, ids = _tenant_with(database, ("https://mt5.alpha.com:443", 1001),
                                  ("sim://beta", 2001), ("sim://beta", 2002))
    other, other_ids = _tenant_with(database, ("https://mt5.other.com:443", 9))
    names = read_connection_names(database, tenant_id)
    assert names == {
        f"sim-{tenant_id}": SIMULATED_NAME,  # the demo's simulated broker, not a stored connection
        stored_connection_id(ids[0]): "https://mt5.alpha.com:443",
        stored_connection_id(ids[1]): "sim://beta (2001)",
        stored_connection_id(ids[2]): "sim://beta (2002)",
    }
    assert stored_connection_id(other_ids[0]) not in names  # another tenant's are not read
    assert read_connection_names(database, other)[stored_connection_id(other_ids[0])] == "https://mt5.other.com:443"


def test_names_are_read_once_per_ttl_per_tenant(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant_id, ids = _tenant_with(database, ("sim://gamma", 3001))
    reads: list[int] = []

    def counted(url: str, tenant: int) -> dict[str, str]:
        reads.append(tenant)
        return read_connection_names(url, tenant)

    monkeypatch.setattr(names_module, "read_connection_names", counted)

    async def twice() -> list[dict[str, str]]:
        return [await connection_names(database, tenant_id), await connection_names(database, tenant_id)]

    first, second = asyncio.run(twice())
    assert first == second
    assert first[stored_connection_id(ids[0])] == "sim://gamma"
    assert reads == [tenant_id]
