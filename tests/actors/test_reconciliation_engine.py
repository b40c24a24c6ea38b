"""Reconciliation in the running engine, on real Ray and the real PostgreSQL: a stored simulated
server's accounts, as Veles' account actors compute them, are checked every second against the
simulator's own figures read through the fake MT5 Web API served beside it. Drift stays 0 (the
pump is held between batches, so both sides are read at the same batch); the checks show in the
supervisor's status and in `/metrics`. Small on purpose: one simulated server of five accounts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from actors.names import supervisor_name
from models.db import session_scope, tenant_session, upgrade
from models.tenancy import Plan, Tenant
from tests.actors.test_stored_connections import _until
from tests.models.conftest import reset_schema
from veles.api import create_api
from veles.config import Settings
from veles.services.connections import SIMULATED_ACCOUNTS, create_connection
from veles.services.credentials import generate_key
from veles.services.engine import apply_connections, start_engine, stop_engine
from veles.services.ray_runtime import named_actor

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.redis]
PASSWORD = "sim-manager-pass"


@pytest.fixture(scope="module")
async def engine(ray_local: None, pg_url: str, redis_url_module: str) -> AsyncIterator[tuple[Settings, int]]:
    """The engine with one tenant whose stored sim:// connection is reconciled every second."""
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Reconciled Broker", plan=Plan.PROFESSIONAL)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tenant_id = tenant.id
    settings = Settings(
        _env_file=None, database_url=pg_url, redis_url=redis_url_module, ray_address=None,
        ray_namespace="veles-test", credentials_keys=SecretStr(generate_key()),
        simulator_password=SecretStr(PASSWORD), gateway_interval=0.1, publish_hz=4, reconcile_every_s=1.0,
    )
    await start_engine(settings)
    with tenant_session(settings.database_url, tenant_id) as db:
        form = {"server": "sim://recon", "login": 1001, "password": PASSWORD}
        create_connection(db, settings, tenant_id, form)
    await apply_connections(settings, tenant_id)
    yield settings, tenant_id
    await stop_engine(settings)


async def test_drift_stays_zero_against_the_simulators_own_figures(engine: tuple[Settings, int]) -> None:
    settings, tenant_id = engine
    supervisor = await _until(lambda: _supervisor(settings, tenant_id), "supervisor")

    async def checked() -> dict[str, Any] | None:
        connections = (await supervisor.status.remote())["connections"]
        view = connections[0]["reconciliation"] if connections else None
        return view if view is not None and view["checks"] >= 4 else None

    view = await _until(checked, "four reconciliation checks")
    assert view["last_error"] is None, view["last_error"]
    assert view["failures"] == 0
    assert view["compared"] == SIMULATED_ACCOUNTS
    assert view["unmatched"] == 0
    assert view["drifting"] == 0
    assert view["drifting_once"] == 0, view["accounts"]
    assert view["accounts"] == []


async def test_the_checks_show_in_metrics(engine: tuple[Settings, int]) -> None:
    settings, tenant_id = engine
    key = f'connection="conn-\\d+",tenant="{tenant_id}"'

    def scrape() -> str | None:
        with TestClient(create_api(settings), client=("127.0.0.1", 50_000)) as client:
            text = client.get("/metrics").text
        checks = re.search(rf"veles_reconciliation_checks_total{{{key}}} (\S+)", text)
        return text if checks and float(checks.group(1)) >= 2 else None

    text = await _until(lambda: asyncio.to_thread(scrape), "reconciliation in /metrics")
    assert re.search(rf"veles_reconciliation_drifting_accounts{{{key}}} 0\.0", text)
    assert re.search(rf"veles_reconciliation_max_drift_minor_units{{{key}}} 0\.0", text)
    assert re.search(rf"veles_reconciliation_failures_total{{{key}}} 0\.0", text)
    assert re.search(rf"veles_reconciliation_last_check_timestamp_seconds{{{key}}} 1\.\d+e\+09", text)


async def _supervisor(settings: Settings, tenant_id: int) -> Any:
    try:
        return await named_actor(settings, supervisor_name(tenant_id))
    except ValueError:
        return None
