"""Reconciliation in the running engine, on real Ray and the real PostgreSQL: a stored simulated
server's accounts, as Veles' account actors compute them, are checked every second against the
simulator's own figures read through the fake MT5 Web API served beside it. Drift stays 0 (the
pump is held between batches, so both sides are read at the same batch); the checks show in the
supervisor's status and in `/metrics`. Then a real-server connection (`https://`, the Web API
gateway) to a fake whose symbol settings are wrong for one symbol (tenfold contract size) while
its account figures are the simulator's own: the accounts holding that symbol drift, and the
drift is raised as `reconciliation_drift` alerts through the alert path (stored rows). Small on
purpose: five and six accounts."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from models.alerts import Alert
from models.db import session_scope, tenant_session, upgrade
from models.tenancy import Plan, Tenant
from tests.actors.test_stored_connections import _until
from tests.models.conftest import reset_schema
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, self_signed_tls, serving
from veles.api import create_api
from veles.config import Settings
from veles.mt5.reconciliation import RULE_ID
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.fake_feed import BrokerDriver, TradeFeed, owners_of
from veles.mt5.webapi.fake_server import FakeWebApi, Manager, Source
from veles.risk.instruments import SymbolSpec
from veles.services.connections import SIMULATED_ACCOUNTS, create_connection, delete_connection
from veles.services.credentials import generate_key
from veles.services.engine import apply_connections, start_engine, stop_engine
from veles.services.ray_runtime import tenant_actor

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.redis]
PASSWORD = "sim-manager-pass"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A broker's private CA and a certificate for 127.0.0.1: (ca, cert, key)."""
    return self_signed_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
async def engine(ray_local: None, pg_url: str, redis_url_module: str, tls: tuple[Path, Path, Path]
                 ) -> AsyncIterator[tuple[Settings, int]]:
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
        mt5_ca_bundle=str(tls[0]),
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
    return await tenant_actor(settings, tenant_id, "supervisor")


@pytest.fixture
def misread(tls: tuple[Path, Path, Path]) -> Iterator[tuple[str, str, set[int]]]:
    """A fake Web API over TLS whose symbol settings say a tenfold contract size for the symbol its
    accounts hold most, while its account figures are the simulator's own (computed with the
    right one), its simulator advancing on a timer: (URL, symbol, logins holding it)."""
    broker = SimulatedBroker(accounts=6, seed=3, warmup=60.0, login_base=700_000)
    held = Counter(p.symbol for a in broker.accounts() for p in a.positions)
    symbol = held.most_common(1)[0][0]

    def wrong_symbols() -> list[SymbolSpec]:
        return [dataclasses.replace(s, contract_size=s.contract_size * 10) if s.name == symbol else s
                for s in broker.symbols()]

    source = Source(wrong_symbols, broker.accounts, broker.figures)
    feed = TradeFeed(owners_of(broker))
    driver = BrokerDriver(broker, feed, source.lock)
    driver.advance()
    fake = FakeWebApi(source, [Manager(MANAGER_LOGIN, MANAGER_PASSWORD)], feed=feed)
    holders = {a.login for a in broker.accounts() if any(p.symbol == symbol for p in a.positions)}
    with serving(fake, tls=(tls[1], tls[2])) as url:
        driver.start()
        try:
            yield url, symbol, holders
        finally:
            driver.stop()


async def test_a_wrong_symbol_setting_drifts_and_raises_alerts(
    engine: tuple[Settings, int], misread: tuple[str, str, set[int]]
) -> None:
    settings, tenant_id = engine
    url, symbol, holders = misread
    with tenant_session(settings.database_url, tenant_id) as db:
        row_id = create_connection(db, settings, tenant_id,
                                   {"server": url, "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD}).id
    await apply_connections(settings, tenant_id)
    supervisor = await _until(lambda: _supervisor(settings, tenant_id), "supervisor")

    async def drifting() -> dict[str, Any] | None:
        for conn in (await supervisor.status.remote())["connections"]:
            view = conn["reconciliation"]
            if conn["connection_id"] == f"conn-{row_id}" and view and view["drifting"]:
                return view  # type: ignore[no-any-return]
        return None

    view = await _until(drifting, f"drift from the wrong {symbol} contract size", timeout=120)
    confirmed = {a["login"] for a in view["accounts"] if a["confirmed"]}
    assert confirmed & holders, (confirmed, holders, symbol)
    assert view["max_drift_minor"] > 1

    def stored() -> list[Alert]:
        with tenant_session(settings.database_url, tenant_id) as db:
            db.expire_on_commit = False
            return list(db.exec(select(Alert).where(Alert.engine_rule == RULE_ID)).all())

    rows = await _until(lambda: asyncio.to_thread(stored), "reconciliation alerts stored")
    row = next(r for r in rows if int(r.subject) in holders)
    assert row.message.startswith(f"Account {row.subject} on connection conn-{row_id} differs from the MT5 "
                                  "server's own figures at two checks in a row: ")
    assert row.message.endswith("check the symbol and group settings Veles reads for it.")
    assert row.value > 0.01
    with tenant_session(settings.database_url, tenant_id) as db:
        delete_connection(db, tenant_id, row_id)
    await apply_connections(settings, tenant_id)
