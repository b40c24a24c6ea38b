"""Plan limits hold under concurrent opens and follow plan changes at once (issue 15), on the real
PostgreSQL and Ray.

Checked per connection as it opened, connections opening together each counted the others' room
as free and all passed; a supervisor kept the plan it was started with until it restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from actors.tenant_directory import find
from models.connections import ConnectionStatus, Mt5Connection
from models.db import session_scope, tenant_session, upgrade
from models.tenancy import Plan, Role, Tenant
from tests.models.conftest import reset_schema
from veles.config import Settings
from veles.mt5.connect import open_gateway
from veles.plans import PlanLimitExceeded
from veles.services.admin import set_tenant_plan
from veles.services.connections import StoredConnections, create_connection
from veles.services.credentials import encrypt, generate_key, parse_keys
from veles.services.engine import apply_connections, stop_engine

pytestmark = [pytest.mark.postgres]
PASSWORD = "sim-manager-pass"


@pytest.fixture
def settings(pg_url: str) -> Settings:
    reset_schema(pg_url)
    upgrade(pg_url)
    return Settings(
        _env_file=None, database_url=pg_url, redis_url=None, ray_address=None, ray_namespace="veles-test",
        credentials_keys=SecretStr(generate_key()), simulator_password=SecretStr(PASSWORD),
        gateway_interval=0.25, publish_hz=4,
    )


def _tenant(settings: Settings, name: str, plan: Plan) -> int:
    with session_scope(settings.database_url) as session:
        tenant = Tenant(name=name, plan=plan)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        return tenant.id


def _rows(settings: Settings, tenant_id: int) -> dict[int, Mt5Connection]:
    with tenant_session(settings.database_url, tenant_id) as db:
        db.expire_on_commit = False
        rows = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == tenant_id)).all()
        return {row.id: row for row in rows if row.id is not None}


def test_concurrent_admissions_never_pass_the_plan(settings: Settings) -> None:
    """Four connections of a Starter broker (one server allowed) admitted at the same instant
    from four threads, each in its own PostgreSQL transaction: exactly one gets in."""
    tenant_id = _tenant(settings, "Racing Broker", Plan.STARTER)
    key = parse_keys(settings.credentials_keys.get_secret_value())  # type: ignore[union-attr]
    with tenant_session(settings.database_url, tenant_id) as db:  # stored as before the plan check
        for n in range(4):
            db.add(Mt5Connection(tenant_id=tenant_id, server=f"sim://race{n}", login=1001,
                                 credentials_encrypted=encrypt(key, PASSWORD)))
    store = StoredConnections(settings, tenant_id)
    feeds = store.feeds()
    snapshots = {}
    for feed in feeds:
        assert feed.spec is not None
        gateway = open_gateway(dataclasses.replace(feed.spec, options={**feed.spec.options, "warmup": 0.0}))
        snapshots[feed.row_id] = gateway.accounts()
        gateway.close()
    barrier = threading.Barrier(len(feeds))
    outcomes: dict[int, str] = {}

    def admit(feed: Any) -> None:
        barrier.wait()
        try:
            store.admit(feed, snapshots[feed.row_id])
            outcomes[feed.row_id] = "admitted"
        except PlanLimitExceeded as exc:
            outcomes[feed.row_id] = str(exc)

    threads = [threading.Thread(target=admit, args=(feed,)) for feed in feeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()).count("admitted") == 1, outcomes
    assert all("Starter plan allows 1 MT5 server" in why for why in outcomes.values() if why != "admitted")
    rows = _rows(settings, tenant_id)
    connected = [rid for rid, row in rows.items() if row.status is ConnectionStatus.CONNECTED]
    assert connected == [rid for rid, why in outcomes.items() if why == "admitted"]


async def _until(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await asyncio.sleep(0.25)
    return value


@pytest.mark.ray
async def test_a_plan_change_reaches_the_running_engine_at_once(ray_local: None, settings: Settings) -> None:
    """A Professional broker feeding two servers is downgraded to Starter: the newer connection
    stops and its row says why, the older goes on; upgraded again, both run. The same supervisor
    throughout (no restart)."""
    tenant_id = _tenant(settings, "Changing Broker", Plan.PROFESSIONAL)
    with tenant_session(settings.database_url, tenant_id) as db:
        ids = [create_connection(db, settings, tenant_id, {"server": f"sim://plan{n}", "login": 1001,
                                                           "password": PASSWORD}).id for n in range(2)]
    try:
        await apply_connections(settings, tenant_id)

        def statuses() -> list[ConnectionStatus]:
            rows = _rows(settings, tenant_id)
            return [rows[i].status for i in ids]

        await _until(lambda: statuses() == [ConnectionStatus.CONNECTED] * 2, "both connected")
        supervisor = find(tenant_id, "supervisor", "veles-test")
        pid = await supervisor.pid.remote()
        incarnation = (await supervisor.status.remote())["incarnation"]

        answer = await set_tenant_plan(settings, Role.PLATFORM_ADMIN, None, tenant_id, "starter")
        assert answer["running"] is True
        downgraded = [ConnectionStatus.CONNECTED, ConnectionStatus.FAILED]
        await _until(lambda: statuses() == downgraded, "downgraded")
        newer = _rows(settings, tenant_id)[ids[1]]
        assert "Starter plan allows 1 MT5 server" in (newer.last_error or "")
        status = await supervisor.status.remote()
        assert status["plan"] == "starter"
        assert [c["connection_id"] for c in status["connections"]] == [f"conn-{ids[0]}"]

        await set_tenant_plan(settings, Role.PLATFORM_ADMIN, None, tenant_id, "professional")
        await _until(lambda: statuses() == [ConnectionStatus.CONNECTED] * 2, "upgraded")
        status = await supervisor.status.remote()
        deadline = time.monotonic() + 60
        while len(status["connections"]) < 2:
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.25)
            status = await supervisor.status.remote()
        assert await supervisor.pid.remote() == pid  # applied to the running supervisor
        assert status["incarnation"] == incarnation  # not to one started again (in a tenant host)
    finally:
        await stop_engine(settings)
