"""Alerts are rows: raised open, resolved on clear, read back by a rebuilt aggregator; rules come
from the tenant's `alert_rule` rows and can be swapped on a running engine.

Real PostgreSQL (the tenant-confined role, so row-level security applies) and, for the restart
and the rule push, real Ray.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import ray
from sqlmodel import col, select

from actors.alert_store import load_rules
from actors.names import aggregator_name, supervisor_name
from actors.risk_aggregator import BookPublisher, RiskAggregator
from actors.tenant_supervisor import TenantSupervisor
from models.alerts import Alert, AlertKind, AlertRule, AlertState, Severity
from models.db import session_scope
from models.tenancy import Tenant
from tests.actors.support import account_figures
from veles.config import Settings
from veles.mt5.connect import GatewaySpec
from veles.risk.account import AccountFigures
from veles.services.alerts import delete_rule
from veles.services.delivery import alert_key
from veles.services.engine import apply_rules

pytestmark = pytest.mark.postgres
_serial = itertools.count()


def _tenant(url: str, *rules: dict[str, Any]) -> int:
    """A fresh tenant with the given stored rules."""
    with session_scope(url) as db:
        tenant = Tenant(name=f"alerts-{next(_serial)}-{time.time_ns()}")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        for rule in rules:
            db.add(AlertRule(tenant_id=tenant.id, **rule))
        return tenant.id


def _rows(url: str, tenant_id: int) -> list[Alert]:
    with session_scope(url) as db:
        rows = db.exec(select(Alert).where(Alert.tenant_id == tenant_id).order_by(col(Alert.id))).all()
        return [Alert.model_validate(row.model_dump()) for row in rows]


@pytest.fixture
def healthy() -> AccountFigures:
    return dataclasses.replace(account_figures(), state="ok", margin_level=400.0)


@pytest.fixture
def stopped(healthy: AccountFigures) -> AccountFigures:
    return dataclasses.replace(healthy, state="stop_out", margin_level=40.0)


async def test_a_raise_is_an_open_row_and_its_clear_resolves_that_row(
    database: str, healthy: AccountFigures, stopped: AccountFigures
) -> None:
    tenant_id = _tenant(database)  # no stored rules: the built-in ones
    publisher = BookPublisher(tenant_id, database_url=database)
    await publisher.load()
    await publisher.announce(publisher.apply([stopped], sent_at=1.0))
    raised = {m["rule_id"]: m for m in publisher.recent_alerts}
    assert set(raised) == {"margin_call", "stop_out"}
    rows = {row.id: row for row in _rows(database, tenant_id)}
    assert set(rows) == {m["id"] for m in raised.values()}
    assert all(row.state is AlertState.OPEN and row.rule_id is None for row in rows.values())
    assert rows[raised["stop_out"]["id"]].severity is Severity.CRITICAL
    assert rows[raised["stop_out"]["id"]].subject == str(stopped.login)

    await publisher.announce(publisher.apply([healthy], sent_at=2.0))
    cleared = [m for m in publisher.recent_alerts if m["status"] == "cleared"]
    assert {m["id"] for m in cleared} == set(rows)  # each clear names the row it resolves
    after = _rows(database, tenant_id)
    assert [row.state for row in after] == [AlertState.RESOLVED] * 2
    assert all(row.resolved_at is not None for row in after)


async def test_accounts_taken_out_of_the_book_have_their_alerts_resolved(
    database: str, healthy: AccountFigures, stopped: AccountFigures
) -> None:
    """A removed connection's accounts leave the book: their open alerts are resolved (nothing
    could clear them any more), another account's stay open, and nothing is raised or cleared
    twice if the login comes back."""
    tenant_id = _tenant(database)
    other = dataclasses.replace(stopped, login=stopped.login + 1)
    publisher = BookPublisher(tenant_id, database_url=database)
    await publisher.load()
    await publisher.announce(publisher.apply([stopped, other], sent_at=1.0))
    assert {row.state for row in _rows(database, tenant_id)} == {AlertState.OPEN}

    publisher.remove([stopped.login])
    await publisher.resolve_alerts_of([stopped.login])
    rows = _rows(database, tenant_id)
    by_subject = {(row.subject, row.state) for row in rows}
    assert by_subject == {(str(stopped.login), AlertState.RESOLVED), (str(other.login), AlertState.OPEN)}
    assert all(row.resolved_at is not None for row in rows if row.subject == str(stopped.login))
    assert {a.subject for a in publisher.alerts.active()} == {str(other.login)}

    await publisher.announce(publisher.apply([healthy], sent_at=2.0))  # the login back, healthy
    assert len(_rows(database, tenant_id)) == len(rows)  # no clear for what was already resolved


async def test_a_rebuilt_aggregator_neither_raises_an_open_alert_again_nor_forgets_to_resolve_it(
    database: str, healthy: AccountFigures, stopped: AccountFigures
) -> None:
    tenant_id = _tenant(database)
    first = BookPublisher(tenant_id, database_url=database)
    await first.load()
    await first.announce(first.apply([stopped], sent_at=1.0))
    opened = {row.id for row in _rows(database, tenant_id)}

    rebuilt = BookPublisher(tenant_id, database_url=database)  # what Ray restarts: empty, then load()
    await rebuilt.load()
    assert {(a.rule_id, a.subject) for a in rebuilt.alerts.active()} == {
        ("margin_call", str(stopped.login)), ("stop_out", str(stopped.login))
    }
    assert rebuilt.apply([stopped], sent_at=2.0) == []  # still stopped out: nothing raised twice
    await rebuilt.announce(rebuilt.apply([healthy], sent_at=3.0))
    rows = _rows(database, tenant_id)
    assert {row.id for row in rows} == opened  # no new row
    assert all(row.state is AlertState.RESOLVED for row in rows)


async def test_a_database_that_does_not_answer_does_not_stop_the_alerts(stopped: AccountFigures) -> None:
    publisher = BookPublisher(1, database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    await publisher.load()  # refused: logged, built-in rules meanwhile
    await publisher.announce(publisher.apply([stopped], sent_at=1.0))
    published = {(m["rule_id"], m["id"]) for m in publisher.recent_alerts}
    assert published == {("margin_call", None), ("stop_out", None)}


async def test_stored_rules_add_to_the_built_ins_and_the_unrunnable_ones_are_named(
    database: str, healthy: AccountFigures
) -> None:
    """(Until issue 15 stored rules replaced every built-in one.) Margin call and stop out by each
    account's own group always run; a stored rule of a default's kind (enabled or not) takes that
    default's place."""
    tenant_id = _tenant(
        database,
        {"kind": AlertKind.MARGIN_LEVEL, "threshold": 150.0, "severity": Severity.CRITICAL},
        {"kind": AlertKind.EQUITY_DROP, "threshold": 250.0},
        {"kind": AlertKind.TOXIC_FLOW, "threshold": 1.0, "label": "EURUSD"},  # no such label
        {"kind": AlertKind.EXPOSURE, "threshold": 1e6, "enabled": False},
    )
    rules = load_rules(database, tenant_id)
    assert rules.stored
    with session_scope(database) as db:
        ids = [r.id for r in db.exec(select(AlertRule).where(AlertRule.tenant_id == tenant_id)
                                     .order_by(col(AlertRule.id))).all()]
    assert [r.id for r in rules.rules] == ["margin_call", "stop_out", "large_deal_50", str(ids[0])]
    assert rules.skipped == (
        f"rule {ids[1]}: threshold: equity_drop is a percent of peak equity, 0 to 100, got 250.0",
        f"rule {ids[2]}: label: unknown label 'EURUSD' (expected one of: scalper, latency_arbitrage, "
        "martingale_grid, news, hedged_pair, syndicate)",
    )
    publisher = BookPublisher(tenant_id, database_url=database)
    await publisher.load()
    low = dataclasses.replace(healthy, margin_level=120.0)  # healthy by its group, below the rule
    await publisher.announce(publisher.apply([low], sent_at=1.0))
    (row,) = _rows(database, tenant_id)
    assert row.rule_id == ids[0]
    assert row.severity is Severity.CRITICAL
    assert row.value == 120.0


async def test_a_custom_rule_does_not_switch_off_the_built_in_margin_call_and_stop_out(
    database: str, healthy: AccountFigures
) -> None:
    """Issue 15: after adding "margin level < 150%", two accounts in margin call (97%) and stop out
    (57%, by their group) raised nothing of the built-ins; with every custom rule disabled,
    nothing at all."""
    custom = {"kind": AlertKind.MARGIN_LEVEL, "threshold": 150.0}
    for tenant_id in (_tenant(database, custom), _tenant(database, {**custom, "enabled": False})):
        publisher = BookPublisher(tenant_id, database_url=database)
        await publisher.load()
        call = dataclasses.replace(healthy, state="margin_call", margin_level=97.0)
        out = dataclasses.replace(healthy, login=healthy.login + 1, state="stop_out", margin_level=57.0)
        await publisher.announce(publisher.apply([call, out], sent_at=1.0))
        raised = {(m["rule_id"], m["subject"]) for m in publisher.recent_alerts}
        assert ("margin_call", str(call.login)) in raised
        assert ("margin_call", str(out.login)) in raised
        assert ("stop_out", str(out.login)) in raised
        assert ("stop_out", str(call.login)) not in raised
        custom_raised = {subject for rule, subject in raised if rule.isdigit()}
        enabled = load_rules(database, tenant_id).rules[-1].id.isdigit()
        assert custom_raised == ({str(call.login), str(out.login)} if enabled else set())


async def test_a_flapping_account_is_one_row_with_a_count_and_the_latest_value(
    database: str, healthy: AccountFigures
) -> None:
    """Issue 15: 24 margin calls of one account in 5 minutes were 24 rows (and 24 deliveries)."""
    tenant_id = _tenant(database)
    publisher = BookPublisher(tenant_id, database_url=database, cooldown_s=300.0)
    await publisher.load()
    t0 = 1_790_000_000_000
    for i in range(24):
        call = dataclasses.replace(healthy, state="margin_call", margin_level=90.0 - i,
                                   updated_msc=t0 + i * 12_000)
        ok = dataclasses.replace(healthy, updated_msc=t0 + i * 12_000 + 6_000)
        await publisher.announce(publisher.apply([call], sent_at=1.0))
        await publisher.announce(publisher.apply([ok], sent_at=1.0))
    (row,) = _rows(database, tenant_id)
    assert (row.repeats, row.value, row.engine_rule) == (24, 67.0, "margin_call")
    assert row.state is AlertState.RESOLVED  # the last crossing cleared it
    assert row.last_raised_at is not None
    assert row.message == ("Account 100042 reached margin call at a margin level of 67.00%. "
                           "Raised 24 times since 14:13:20 UTC.").replace("100042", str(healthy.login))
    raises = [m for m in publisher.recent_alerts if m["status"] == "raised"]
    assert {m["id"] for m in raises} == {row.id}
    assert {alert_key(m) for m in raises} == {alert_key(raises[0])}  # delivered once

    await publisher.announce(publisher.apply([dataclasses.replace(
        healthy, state="margin_call", margin_level=50.0, updated_msc=t0 + 24 * 12_000)], sent_at=1.0))
    reopened = {r.id: r for r in _rows(database, tenant_id)}[row.id]
    assert (reopened.state, reopened.repeats, reopened.resolved_at) == (AlertState.OPEN, 25, None)


async def test_a_stored_floating_loss_rule_is_evaluated(database: str, healthy: AccountFigures) -> None:
    """Issue 15: stored, shown enabled, and never evaluated until now."""
    tenant_id = _tenant(database, {"kind": AlertKind.FLOATING_LOSS, "threshold": 5_000.0})
    publisher = BookPublisher(tenant_id, database_url=database)
    await publisher.load()
    losing = dataclasses.replace(healthy, profit=-6_000.0 / healthy.usd_rate)
    await publisher.announce(publisher.apply([losing], sent_at=1.0))
    (row,) = _rows(database, tenant_id)
    assert row.rule_id is not None
    assert row.value == pytest.approx(6_000.0)


async def test_equity_drop_thresholds_are_percent_of_peak(database: str) -> None:
    tenant_id = _tenant(database, {"kind": AlertKind.EQUITY_DROP, "threshold": 30.0})
    rule = load_rules(database, tenant_id).rules[-1]
    assert rule.id.isdigit()
    assert rule.threshold == pytest.approx(0.30)


@pytest.fixture
def ray_settings(ray_local: None, database: str) -> Settings:
    return Settings(database_url=database, ray_namespace="veles-test")


async def _until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await check()
        except ray.exceptions.RayError:
            value = None
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.2)


@pytest.fixture
async def aggregator(ray_settings: Settings) -> AsyncIterator[tuple[Any, int]]:
    tenant_id = _tenant(ray_settings.database_url)
    handle = RiskAggregator.options(  # type: ignore[attr-defined]
        name=aggregator_name(tenant_id), namespace="veles-test"
    ).remote(tenant_id, 10.0, None, ray_settings.database_url)
    await handle.start.remote()
    yield handle, tenant_id
    ray.kill(handle)


async def test_an_aggregator_killed_by_sigkill_comes_back_with_its_open_alerts(
    aggregator: tuple[Any, int], ray_settings: Settings, healthy: AccountFigures, stopped: AccountFigures
) -> None:
    handle, tenant_id = aggregator
    await handle.apply.remote([stopped], 1.0)
    before = await handle.alerts.remote()
    assert {a["rule_id"] for a in before["active"]} == {"margin_call", "stop_out"}
    assert all(isinstance(a["id"], int) for a in before["active"])
    pid = await handle.pid.remote()
    os.kill(pid, signal.SIGKILL)
    await _until(lambda: _restarted(handle, pid))
    after = await handle.alerts.remote()  # the new process read the open rows back
    assert {(a["rule_id"], a["id"]) for a in after["active"]} == {
        (a["rule_id"], a["id"]) for a in before["active"]
    }
    await handle.apply.remote([stopped], 2.0)
    assert len(_rows(ray_settings.database_url, tenant_id)) == 2  # not raised a second time
    await handle.apply.remote([healthy], 3.0)
    rows = _rows(ray_settings.database_url, tenant_id)
    assert [row.state for row in rows] == [AlertState.RESOLVED] * 2
    # the tenant's alert numbers go on where the killed process left them (issue 15)
    assert sorted(m["seq"] for m in before["recent"]) == [1, 2]
    assert after["seq"] == 2
    cleared = (await handle.alerts.remote())["recent"]
    assert sorted(m["seq"] for m in cleared) == [3, 4]
    assert sorted(row.seq or 0 for row in rows) == [3, 4]


async def _restarted(handle: Any, old_pid: int) -> bool:
    pid: int = await handle.pid.remote()
    return pid != old_pid


async def test_edited_rules_reach_a_running_engine_and_removed_rules_resolve_their_alerts(
    ray_settings: Settings, healthy: AccountFigures
) -> None:
    url = ray_settings.database_url
    tenant_id = _tenant(url)
    assert (await apply_rules(ray_settings, tenant_id))["running"] is False  # no engine yet
    spec = GatewaySpec(kind="simulator", connection_id=f"rules-{tenant_id}",
                       options={"accounts": 2, "seed": 4, "interval": 0.25}, interval=0.25)
    supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
        name=supervisor_name(tenant_id), namespace="veles-test"
    ).remote(tenant_id, [spec], 4.0, None, "enterprise", url)
    try:
        await supervisor.start.remote()
        aggregator = ray.get_actor(aggregator_name(tenant_id), namespace="veles-test")
        assert "stop_out" in (await aggregator.rules.remote())["rules"]  # the defaults

        with session_scope(url) as db:
            rule = AlertRule(tenant_id=tenant_id, kind=AlertKind.MARGIN_LEVEL, threshold=1e9)
            db.add(rule)
            db.flush()
            assert rule.id is not None
            rule_id = rule.id
        applied = await apply_rules(ray_settings, tenant_id)
        assert applied["running"] is True
        assert applied["skipped"] == []
        assert applied["rules"][-1] == str(rule_id)  # beside the built-ins
        assert {"margin_call", "stop_out"} <= set(applied["rules"])
        # every account with margin is under a 1e9 % margin level: the new rule fires at once
        low = dataclasses.replace(healthy, margin_level=500.0)
        await aggregator.apply.remote([low], time.time())
        raised = [a for a in (await aggregator.alerts.remote())["active"] if a["rule_id"] == str(rule_id)]
        assert raised

        with session_scope(url) as db:
            delete_rule(db, tenant_id, rule_id)
        assert str(rule_id) not in (await apply_rules(ray_settings, tenant_id))["rules"]
        resolved = {row.id: row.state for row in _rows(url, tenant_id)}
        assert all(resolved[a["id"]] is AlertState.RESOLVED for a in raised)
    finally:
        await supervisor.stop.remote()
        ray.kill(supervisor)


async def test_rules_pushed_to_a_stopped_engine_wait_for_its_start(ray_settings: Settings) -> None:
    url = ray_settings.database_url
    tenant_id = _tenant(url, {"kind": AlertKind.EXPOSURE, "threshold": 2e6, "symbol": "XAUUSD"})
    supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
        name=supervisor_name(tenant_id), namespace="veles-test"
    ).remote(tenant_id, [], 4.0, None, "enterprise", url)  # a suspended tenant: no aggregator
    try:
        applied = await apply_rules(ray_settings, tenant_id)
        assert applied["running"] is True
        assert applied["rules"] == ["margin_call", "stop_out", "drawdown_30", "large_deal_50",
                                    applied["rules"][-1]]  # the stored exposure rule replaced the default
        await supervisor.start.remote()
        aggregator = ray.get_actor(aggregator_name(tenant_id), namespace="veles-test")
        assert (await aggregator.rules.remote())["rules"] == applied["rules"]
    finally:
        await supervisor.stop.remote()
        ray.kill(supervisor)
