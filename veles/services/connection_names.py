"""What people call a tenant's connections, for the screens: the engine names each connection by
an id (`conn-3` for a stored one, `sim-1` for the demo's simulated broker) and stamps it on every
account it feeds; a dealer knows a connection by its trade server (`https://mt5.broker.com:443`,
`sim://alpha`), as the connections page lists it.

The names are read from the database in a thread, at most once per `TTL_S` per tenant in a
process (connections change rarely; a change shows within `TTL_S`), for at most `MAX_TENANTS`
tenants (the least recently asked leave first).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict

from sqlmodel import select

from actors.feeds import stored_connection_id
from models.connections import Mt5Connection
from models.db import tenant_session

TTL_S = 10.0
MAX_TENANTS = 1024
SIMULATED_NAME = "Simulated broker (demo)"

_kept: OrderedDict[int, tuple[float, dict[str, str]]] = OrderedDict()


def simulated_connection_id(tenant_id: int) -> str:
    """The engine's id of the demo's simulated broker of a tenant (not a stored connection)."""
    return f"sim-{tenant_id}"


def read_connection_names(database_url: str, tenant_id: int) -> dict[str, str]:
    """Connection id -> name: each stored connection's trade server (with its manager login where
    two share a server), and the demo's simulated broker. Blocks on the database."""
    with tenant_session(database_url, tenant_id) as db:
        rows = db.exec(select(Mt5Connection.id, Mt5Connection.server, Mt5Connection.login)
                       .where(Mt5Connection.tenant_id == tenant_id)).all()
    shared = Counter(server for _, server, _ in rows)
    names = {simulated_connection_id(tenant_id): SIMULATED_NAME}
    for row_id, server, login in rows:
        assert row_id is not None
        names[stored_connection_id(row_id)] = f"{server} ({login})" if shared[server] > 1 else server
    return names


async def connection_names(database_url: str, tenant_id: int) -> dict[str, str]:
    """`read_connection_names`, read in a thread at most once per `TTL_S` per tenant here."""
    now = time.monotonic()
    kept = _kept.get(tenant_id)
    if kept is not None and now - kept[0] < TTL_S:
        _kept.move_to_end(tenant_id)
        return kept[1]
    names = await asyncio.to_thread(read_connection_names, database_url, tenant_id)
    _kept[tenant_id] = (now, names)
    _kept.move_to_end(tenant_id)
    while len(_kept) > MAX_TENANTS:
        _kept.popitem(last=False)
    return names
