"""The engine feeds the tenant's stored MT5 connections, on real Ray and the real PostgreSQL.

A connection added through the service (as the API and the portal add it) is fed by the running
engine: its accounts reach the book and get `client_account` rows; a wrong password leaves the
row `failed` with the server's reason (no secret) while the engine keeps retrying; removing a
connection takes its accounts out of the book. A tenant with no connection runs nothing: its first
connection starts its supervisor, aggregator and hosts, and removing its last one ends them. Small
on purpose: one simulated server of five accounts.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import ray
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from actors.tenant_directory import find
from actors.tenant_host import TenantNotHosted, TenantRef
from actors.tenant_supervisor import TenantSupervisor
from models.accounts import ClientAccount
from models.connections import ConnectionStatus, Mt5Connection
from models.db import session_scope, tenant_session, upgrade
from models.tenancy import Plan, Tenant
from tests.models.conftest import reset_schema
from veles.api import create_api
from veles.config import Settings
from veles.services.connections import (
    SIMULATED_ACCOUNTS,
    StoredConnections,
    create_connection,
    delete_connection,
)
from veles.services.credentials import generate_key
from veles.services.engine import apply_connections, apply_plan, start_engine, stop_engine
from veles.services.live import LiveFeed

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.redis]
PASSWORD = "sim-manager-pass"


async def _until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """`check()`'s first truthy value (awaited if it is awaitable), polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s (last: {value!r})"
        await asyncio.sleep(0.25)


@pytest.fixture(scope="module")
async def engine(
    ray_local: None, pg_url: str, redis_url_module: str
) -> AsyncIterator[tuple[Settings, int, int]]:
    """The engine started for a Professional tenant and another tenant, neither with connections
    yet (so nothing of theirs runs)."""
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant, other = Tenant(name="Stored Feeds Broker", plan=Plan.PROFESSIONAL), Tenant(name="Other")
        session.add_all([tenant, other])
        session.flush()
        assert tenant.id is not None
        assert other.id is not None
        tenant_id, other_id = tenant.id, other.id
    settings = Settings(
        _env_file=None, database_url=pg_url, redis_url=redis_url_module, ray_address=None,
        ray_namespace="veles-test", credentials_keys=SecretStr(generate_key()),
        simulator_password=SecretStr(PASSWORD), gateway_interval=0.25, publish_hz=4,
        tenant_hosts=1,  # both tenants in one tenant host, as many small brokers share one
    )
    await start_engine(settings)
    yield settings, tenant_id, other_id
    await stop_engine(settings)


def _add(settings: Settings, tenant_id: int, server: str, password: str) -> int:
    form = {"server": server, "login": 1001, "password": password}
    with tenant_session(settings.database_url, tenant_id) as db:
        return create_connection(db, settings, tenant_id, form).id


def _row(settings: Settings, tenant_id: int, row_id: int) -> Mt5Connection:
    with tenant_session(settings.database_url, tenant_id) as db:
        db.expire_on_commit = False
        row = db.get(Mt5Connection, row_id)
        assert row is not None
        return row


def _accounts(settings: Settings, tenant_id: int, row_id: int) -> list[int]:
    with tenant_session(settings.database_url, tenant_id) as db:
        rows = db.exec(select(ClientAccount).where(ClientAccount.connection_id == row_id)).all()
        return sorted(a.login for a in rows)


async def test_added_connection_is_fed_and_removed_one_leaves_the_book(
    engine: tuple[Settings, int, int],
) -> None:
    settings, tenant_id, other_id = engine
    row_id = _add(settings, tenant_id, "sim://alpha", PASSWORD)
    applied = await apply_connections(settings, tenant_id)
    assert applied["running"] is True
    assert applied["connections"][f"conn-{row_id}"]["state"] in {"opening", "running"}

    feed = LiveFeed(settings)

    async def follow() -> None:  # as a portal tab follows the book
        async for _ in feed.watch(tenant_id):
            pass

    following = asyncio.create_task(follow())
    try:
        # the replica the feed keeps while it is watched (one read before is a detached empty one)
        await _until(lambda: tenant_id in feed.followed(), "followed")
        replica = feed.replica(tenant_id)
        await _until(lambda: len(replica.rows) == SIMULATED_ACCOUNTS, "accounts in the book")
        logins = sorted(replica.rows)
        assert replica.totals["accounts"] == SIMULATED_ACCOUNTS
        assert all(login >= 200_000 for login in logins)  # a sim:// server's own logins, not the demo's

        def connected() -> Mt5Connection | None:
            row = _row(settings, tenant_id, row_id)
            return row if row.status is ConnectionStatus.CONNECTED else None

        row = await _until(connected, "connected")
        assert row.last_error is None
        assert row.last_connected_at is not None
        assert _accounts(settings, tenant_id, row_id) == logins
        # the client behind each account is stored as the server's user record has it, and the
        # book's rows carry it with the connection that feeds them
        with tenant_session(settings.database_url, tenant_id) as db:
            stored = {a.login: (a.name, a.country) for a in db.exec(
                select(ClientAccount).where(ClientAccount.connection_id == row_id)).all()}
        assert stored == {login: (replica.rows[login]["name"], replica.rows[login]["country"])
                          for login in logins}
        assert all(name and country for name, country in stored.values())
        assert {replica.rows[login]["server"] for login in logins} == {f"conn-{row_id}"}

        detail = await feed.account_detail(tenant_id, logins[0])
        assert detail is not None
        assert detail.figures.login == logins[0]
        assert await feed.account_detail(other_id, logins[0]) is None  # another tenant's account

        with tenant_session(settings.database_url, tenant_id) as db:
            delete_connection(db, tenant_id, row_id)
        removed = await apply_connections(settings, tenant_id)
        assert f"conn-{row_id}" not in removed["connections"]
        await _until(lambda: not replica.rows, "accounts gone from the book")
        assert replica.totals.get("accounts", 0) == 0  # the empty book, or none once the engine ended
        await _until(lambda: not _engine_actors(tenant_id), "the engine ended with its last connection")
        assert await feed.account_detail(tenant_id, logins[0]) is None  # no engine: no account at all
        assert not replica.rows  # the last rows do not linger
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await feed.aclose()


async def test_wrong_password_is_failed_with_the_reason_and_retried(
    engine: tuple[Settings, int, int],
) -> None:
    settings, tenant_id, _other = engine
    row_id = _add(settings, tenant_id, "sim://beta", "not-the-password")
    await apply_connections(settings, tenant_id)

    def failed_twice() -> Mt5Connection | None:
        row = _row(settings, tenant_id, row_id)
        retried = row.status is ConnectionStatus.FAILED and "attempt 2" in (row.last_error or "")
        return row if retried else None

    row = await _until(failed_twice, "failed and retried")
    assert row.last_error is not None
    assert "wrong password" in row.last_error
    assert "retrying in" in row.last_error
    assert "not-the-password" not in row.last_error
    assert _accounts(settings, tenant_id, row_id) == []
    supervisor = find(tenant_id, "supervisor", "veles-test")
    view = (await supervisor.status.remote())["stored_connections"][f"conn-{row_id}"]
    assert view["state"] == "retrying"
    assert view["attempts"] >= 2
    assert "not-the-password" not in str(await supervisor.status.remote())

    with tenant_session(settings.database_url, tenant_id) as db:
        delete_connection(db, tenant_id, row_id)
    assert f"conn-{row_id}" not in (await apply_connections(settings, tenant_id))["connections"]


async def test_engine_metrics_count_lag_actors_and_alerts(engine: tuple[Settings, int, int]) -> None:
    settings, tenant_id, _other = engine
    row_id = _add(settings, tenant_id, "sim://gamma", PASSWORD)
    await apply_connections(settings, tenant_id)
    aggregator = await _until(lambda: _aggregator(tenant_id), "aggregator")

    async def fed() -> dict[str, Any] | None:
        stats: dict[str, Any] = await aggregator.stats.remote()
        return stats if stats["lag_count"] >= 5 and stats["account_actors"] == SIMULATED_ACCOUNTS else None

    stats = await _until(fed, "engine stats")
    assert stats["lag_cumulative"][-1] == stats["lag_count"]
    assert stats["lag_sum"] > 0
    assert stats["connections"] == 1

    tenant = f'tenant="{tenant_id}"'
    for source in (settings, settings.model_copy(update={"redis_url": None})):  # Redis keys, or Ray
        def scrape(config: Settings = source) -> str | None:
            with TestClient(create_api(config), client=("127.0.0.1", 50_000)) as client:  # this host
                text = client.get("/metrics").text
            lag = re.search(rf"veles_engine_lag_seconds_count{{{tenant}}} (\S+)", text)
            live = f"veles_engine_live_actors{{{tenant}}} {float(SIMULATED_ACCOUNTS)}" in text
            return text if lag and float(lag.group(1)) >= 5 and live else None

        text = await _until(lambda: asyncio.to_thread(scrape), "engine metrics in /metrics")
        assert "veles_engine_reachable 1.0" in text
        assert f'veles_engine_lag_seconds_bucket{{le="+Inf",{tenant}}}' in text
        assert 'veles_pushes_total{channel="browser"}' in text
    with tenant_session(settings.database_url, tenant_id) as db:
        delete_connection(db, tenant_id, row_id)
    await apply_connections(settings, tenant_id)


def _engine_actors(tenant_id: int) -> list[str]:
    """What of the tenant's engine runs now, found as the web tier finds it (in its tenant host):
    "supervisor", "aggregator", and "hosts" when its supervisor has account hosts."""
    running = [role for role in ("aggregator", "supervisor")
               if find(tenant_id, role, "veles-test") is not None]
    if "supervisor" in running:
        try:
            status = ray.get(find(tenant_id, "supervisor", "veles-test").status.remote(), timeout=30)
        except TenantNotHosted:  # it left between the two look-ups
            return [role for role in running if role != "supervisor"]
        if status["hosts"]:
            running.append("hosts")
    return sorted(running)


async def test_a_tenant_without_a_connection_runs_nothing_until_its_first_one(
    engine: tuple[Settings, int, int],
) -> None:
    """No supervisor, aggregator or host for a tenant with no connection; adding one (as the API
    does, not waiting) starts them and feeds it; removing it ends them all."""
    settings, tenant_id, other_id = engine
    assert _engine_actors(other_id) == []
    assert (await apply_connections(settings, other_id)) == {"running": False}
    row_id = _add(settings, other_id, "sim://epsilon", PASSWORD)
    assert (await apply_connections(settings, other_id, wait=False))["running"] is True
    await _until(lambda: _row(settings, other_id, row_id).status is ConnectionStatus.CONNECTED, "connected")
    # the row says connected once the plan admits it (2b5b4a6), before the hosts are placed
    await _until(lambda: "hosts" in _engine_actors(other_id), "its hosts started")
    assert _engine_actors(other_id) == ["aggregator", "hosts", "supervisor"]
    assert _engine_actors(tenant_id) == []  # the other tenant still has no connection

    with tenant_session(settings.database_url, other_id) as db:
        delete_connection(db, other_id, row_id)
    await apply_connections(settings, other_id, wait=False)
    await _until(lambda: not _engine_actors(other_id), "every actor of the tenant ended")
    assert (await apply_connections(settings, other_id)) == {"running": False}


async def _status(supervisor: Any) -> dict[str, Any]:
    status: dict[str, Any] = await supervisor.status.remote()
    return status


async def test_two_tenants_in_one_tenant_host_stay_apart(engine: tuple[Settings, int, int]) -> None:
    """The production path with dense hosting: both tenants' first connections (added as the API
    adds them) start their supervisors and aggregators as logical actors in the same tenant host,
    their accounts in the shared account hosts. Each live book holds its own accounts only; an
    account of one that fails is restored while the other goes on untouched; a plan change
    reaches one tenant alone; removing one tenant's last connection stops that tenant only."""
    settings, tenant_id, other_id = engine
    rows = {tenant_id: _add(settings, tenant_id, "sim://zeta", PASSWORD),
            other_id: _add(settings, other_id, "sim://eta", PASSWORD)}
    for tenant in rows:
        assert (await apply_connections(settings, tenant))["running"] is True
    supervisors = {tenant: find(tenant, "supervisor", "veles-test") for tenant in rows}
    mine, theirs = supervisors[tenant_id], supervisors[other_id]
    assert isinstance(mine, TenantRef)
    assert isinstance(theirs, TenantRef)
    assert await mine.pid.remote() == await theirs.pid.remote()  # one process for both
    feed = LiveFeed(settings)

    async def follow(tenant: int) -> None:  # as a portal tab follows the book
        async for _ in feed.watch(tenant):
            pass

    following = [asyncio.create_task(follow(tenant)) for tenant in rows]
    try:
        await _until(lambda: set(rows) <= set(feed.followed()), "both followed")
        replicas = {tenant: feed.replica(tenant) for tenant in rows}
        for tenant, replica in replicas.items():
            await _until(lambda r=replica: len(r.rows) == SIMULATED_ACCOUNTS, f"tenant {tenant}'s book")
            await _until(lambda t=tenant: _accounts(settings, t, rows[t]), f"tenant {tenant}'s accounts")
            assert sorted(replica.rows) == _accounts(settings, tenant, rows[tenant])
        assert not set(replicas[tenant_id].rows) & set(replicas[other_id].rows)

        # one account of the first tenant fails: restored alone, the other tenant untouched
        before = await _status(theirs)
        victim = await _until(lambda: next((lg for lg, row in replicas[tenant_id].rows.items()
                                            if row["positions"]), None), "an account holding positions")
        assert await mine.inject_failure.remote(victim, 1)

        async def restored() -> dict[str, Any] | None:
            (conn,) = (await _status(mine))["connections"]
            return conn if conn["restarts"].get("step_error", 0) >= 1 and conn["recovering"] == 0 else None

        conn = await _until(restored, "the failed account restored")
        assert conn["failed"] == 0
        after = await _status(theirs)
        assert after["incarnation"] == before["incarnation"]
        (their_conn,) = after["connections"]
        assert their_conn["restarts"] == {}
        assert their_conn["failed"] == 0
        assert their_conn["batches"] > before["connections"][0]["batches"]

        # a plan change reaches the tenant it is for, on the running engine
        with session_scope(settings.database_url) as session:
            other = session.get(Tenant, other_id)
            assert other is not None
            other.plan = Plan.ENTERPRISE
        assert (await apply_plan(settings, other_id))["running"] is True
        assert (await _status(theirs))["plan"] == "enterprise"
        assert (await _status(mine))["plan"] == "professional"

        # the first tenant's last connection goes: it stops, the other goes on in the same host
        with tenant_session(settings.database_url, tenant_id) as db:
            delete_connection(db, tenant_id, rows[tenant_id])
        await apply_connections(settings, tenant_id)
        await _until(lambda: not _engine_actors(tenant_id), "the first tenant's engine ended")
        await _until(lambda: not replicas[tenant_id].rows, "its accounts gone from its book")
        assert _engine_actors(other_id) == ["aggregator", "hosts", "supervisor"]
        version = replicas[other_id].version
        await _until(lambda: replicas[other_id].version > version + 4, "the other tenant's book moving")
        assert len(replicas[other_id].rows) == SIMULATED_ACCOUNTS
        assert (await _status(theirs))["incarnation"] == before["incarnation"]
    finally:
        for task in following:
            task.cancel()
        await asyncio.gather(*following, return_exceptions=True)
        await feed.aclose()
    with tenant_session(settings.database_url, other_id) as db:
        delete_connection(db, other_id, rows[other_id])
    await apply_connections(settings, other_id)
    await _until(lambda: not _engine_actors(other_id), "the other tenant's engine ended")


def _aggregator(tenant_id: int) -> Any:
    return find(tenant_id, "aggregator", "veles-test")


async def test_a_connection_whose_logins_another_feeds_is_refused_until_that_one_goes(
    engine: tuple[Settings, int, int],
) -> None:
    """Two servers with overlapping trading-account logins would mix two clients in the book (it
    names accounts by login): the second is refused with the logins and the first connection
    named, its accounts stay out of the book, and removing the first lets it in."""
    settings, tenant_id, _other = engine
    first = _add(settings, tenant_id, "sim://delta", PASSWORD)
    await apply_connections(settings, tenant_id)
    await _until(lambda: _row(settings, tenant_id, first).status is ConnectionStatus.CONNECTED,
                 "first connected")
    logins = _accounts(settings, tenant_id, first)
    assert len(logins) == SIMULATED_ACCOUNTS

    with tenant_session(settings.database_url, tenant_id) as db:  # the same simulated server's logins
        second = create_connection(db, settings, tenant_id,
                                   {"server": "sim://delta", "login": 1002, "password": PASSWORD}).id
    await apply_connections(settings, tenant_id)

    def refused() -> Mt5Connection | None:
        row = _row(settings, tenant_id, second)
        return row if row.status is ConnectionStatus.FAILED else None

    row = await _until(refused, "second refused")
    assert row.last_error is not None
    assert row.last_error.startswith("Refused:")
    assert str(logins[0]) in row.last_error
    assert f"conn-{first}" in row.last_error
    assert "retrying" not in row.last_error  # refused, not retried on a timer
    assert _accounts(settings, tenant_id, second) == []
    supervisor = find(tenant_id, "supervisor", "veles-test")
    status = await supervisor.status.remote()
    assert status["stored_connections"][f"conn-{second}"]["state"] == "refused"
    assert f"conn-{second}" in status["refused_connections"]

    with tenant_session(settings.database_url, tenant_id) as db:
        delete_connection(db, tenant_id, first)
    await apply_connections(settings, tenant_id)
    await _until(lambda: _row(settings, tenant_id, second).status is ConnectionStatus.CONNECTED,
                 "second fed once the first is gone")
    assert _accounts(settings, tenant_id, second) == logins
    with tenant_session(settings.database_url, tenant_id) as db:
        delete_connection(db, tenant_id, second)
    await apply_connections(settings, tenant_id)


async def test_a_connection_that_keeps_failing_is_left_failed_after_its_retry_window(
    engine: tuple[Settings, int, int],
) -> None:
    """Opening was retried for ever (tenacity without a stop); now for `open_give_up_s` (a day by
    default), then the row says it gave up and nothing more is tried until the row changes."""
    settings, _tenant_id, _other = engine
    with session_scope(settings.database_url) as session:
        tenant = Tenant(name="Gives Up Broker", plan=Plan.PROFESSIONAL)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tenant_id = tenant.id
    row_id = _add(settings, tenant_id, "sim://gamma", "not-the-password")
    supervisor = TenantSupervisor.remote(  # type: ignore[attr-defined]
        tenant_id, [], 4.0, None, "professional", settings.database_url,
        StoredConnections(settings, tenant_id), open_give_up_s=3.0,
    )
    try:
        await supervisor.start.remote()

        def gave_up() -> Mt5Connection | None:
            row = _row(settings, tenant_id, row_id)
            return row if "Gave up after" in (row.last_error or "") else None

        row = await _until(gave_up, "given up", timeout=60)
        assert row.status is ConnectionStatus.FAILED
        assert "wrong password" in (row.last_error or "")
        assert "change the connection to try again" in (row.last_error or "")
        view = (await supervisor.status.remote())["stored_connections"][f"conn-{row_id}"]
        assert view["state"] == "failed"
        await asyncio.sleep(4.0)  # past the backoff's next attempt, had there been one
        assert (await supervisor.status.remote())["stored_connections"][f"conn-{row_id}"] == view
        assert _row(settings, tenant_id, row_id).last_error == row.last_error
    finally:
        await supervisor.stop.remote()
        ray.kill(supervisor)
