"""A tenant billing made read-only: every change the portal offers is refused with the API's own
sentence and stores nothing, reads go on, and every page's banner says what to do (the real
Reflex states' handlers against the real PostgreSQL, beside the API on the same database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models.alerts import Alert, AlertReader, AlertRule, AlertState, Severity
from models.billing import BillingStatus
from models.connections import Mt5Connection
from models.db import session_scope, upgrade
from models.invitations import Invitation
from models.tenancy import Plan, Role, Tenant, User
from tests.models.conftest import reset_schema
from veles.api import create_api
from veles.billing.account import billing_notice
from veles.billing.readonly import MESSAGE
from veles.config import get_settings
from veles.services.auth import Identity, issue_token
from veles_ui.state.alert_bell import AlertBellState
from veles_ui.state.alerts import AlertsState, RulesState
from veles_ui.state.billing_banner import BillingBanner
from veles_ui.state.connections import ConnectionsState
from veles_ui.state.report_schedules import ReportSchedulesState
from veles_ui.state.users import UsersState

pytestmark = pytest.mark.postgres


@pytest.fixture
def broker(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, str]]:
    """(tenant id, a tenant admin's token) of a broker with one open alert; settings from the
    environment as in production."""
    reset_schema(pg_url)
    upgrade(pg_url)
    with session_scope(pg_url) as session:
        tenant = Tenant(name="Late Payer Ltd", plan=Plan.PROFESSIONAL)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email="admin@late.test", password_hash="x", role=Role.TENANT_ADMIN)
        session.add(user)
        session.add(Alert(tenant_id=tenant.id, severity=Severity.CRITICAL, subject="acct-1", value=80.0,
                          message="Margin level 80.00% is below 100.00%"))
        session.flush()
        assert user.id is not None
        identity = Identity(user_id=user.id, tenant_id=tenant.id, role=Role.TENANT_ADMIN, email=user.email)
        tenant_id = tenant.id
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield tenant_id, issue_token(identity, get_settings().secret_key.get_secret_value(), 5)
    get_settings.cache_clear()


def _billing(pg_url: str, tenant_id: int, status: BillingStatus) -> None:
    with session_scope(pg_url) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.billing_status = status


def _count(pg_url: str, model: Any) -> int:
    with session_scope(pg_url) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def _drain(events: Any) -> None:
    async def run() -> None:
        async for _ in events:
            pass

    asyncio.run(run())


def _state(cls: Any, token: str) -> Any:
    state = cls(_reflex_internal_init=True)
    state.token = token
    return state


def test_read_only_refuses_every_portal_change_with_the_apis_reason(pg_url: str, broker: tuple[int, str]
                                                                   ) -> None:
    tenant_id, token = broker
    _billing(pg_url, tenant_id, BillingStatus.READ_ONLY)
    reason = MESSAGE.format(portal=get_settings().portal_url)
    with TestClient(create_api(get_settings())) as api:  # what the API says to the same change
        refused = api.post("/api/v1/alert-rules", headers={"Authorization": f"Bearer {token}"},
                           json={"kind": "margin_level", "threshold": "120", "severity": "warning"})
        marked = api.post("/api/v1/me/alerts/read", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403
    assert refused.json()["detail"] == reason
    assert (marked.status_code, marked.json()["detail"]) == (403, reason)  # "mark all read" is a change

    rules = _state(RulesState, token)
    asyncio.run(RulesState.add.fn(rules, {"kind": "margin_level", "threshold": "120",
                                          "severity": "warning", "symbol": ""}))
    assert rules.error == reason
    connections = _state(ConnectionsState, token)
    asyncio.run(ConnectionsState.add.fn(connections, {"server": "sim://alpha", "login": "1001",
                                                      "password": "pw"}))
    assert connections.error == reason
    asyncio.run(ConnectionsState.test.fn(connections, "1"))  # testing stores the outcome on the row
    assert connections.error == reason
    users = _state(UsersState, token)
    _drain(UsersState.invite.fn(users, {"email": "new@late.test", "role": "viewer"}))
    assert users.error == reason
    schedules = _state(ReportSchedulesState, token)
    asyncio.run(ReportSchedulesState.create.fn(schedules, {"type": "daily_management", "format": "pdf"}))
    assert schedules.error == reason
    alerts = _state(AlertsState, token)
    with session_scope(pg_url) as session:
        alert_id = session.exec(select(Alert.id)).one()
    asyncio.run(AlertsState.acknowledge.fn(alerts, str(alert_id)))
    assert alerts.error == reason
    bell = _state(AlertBellState, token)
    toast = asyncio.run(AlertBellState.read_all.fn(bell))  # the bell's "mark all read", as the API
    assert toast is not None
    assert json.dumps(reason) in str(toast), toast  # the reason, as a toast
    for model in (AlertRule, Mt5Connection, Invitation, AlertReader):
        assert _count(pg_url, model) == 0, model  # nothing stored
    with session_scope(pg_url) as session:
        assert session.exec(select(Alert.state)).one() is AlertState.OPEN

    asyncio.run(UsersState.load.fn(users))  # reads go on
    assert users.error == ""
    assert [u["email"] for u in users.users] == ["admin@late.test"]

    banner = _state(BillingBanner, token)
    asyncio.run(BillingBanner.check.fn(banner))
    assert (banner.billing_state, banner.billing_notice) == ("read_only", billing_notice("read_only"))
    assert "read-only" in banner.billing_notice
    assert "Pay the open invoice" in banner.billing_notice


def test_past_due_shows_the_banner_and_still_allows_changes(pg_url: str, broker: tuple[int, str]) -> None:
    tenant_id, token = broker
    _billing(pg_url, tenant_id, BillingStatus.PAST_DUE)
    banner = _state(BillingBanner, token)
    asyncio.run(BillingBanner.check.fn(banner))
    assert banner.billing_state == "past_due"
    assert banner.billing_notice.startswith("Your subscription is past due: a payment failed.")
    rules = _state(RulesState, token)
    asyncio.run(RulesState.add.fn(rules, {"kind": "margin_level", "threshold": "120",
                                          "severity": "warning", "symbol": ""}))
    assert rules.error == ""
    assert _count(pg_url, AlertRule) == 1
    bell = _state(AlertBellState, token)
    assert asyncio.run(AlertBellState.read_all.fn(bell)) is None  # marked, no refusal
    assert (_count(pg_url, AlertReader), bell.unread) == (1, 0)
    _billing(pg_url, tenant_id, BillingStatus.ACTIVE)  # paid: no banner
    asyncio.run(BillingBanner.check.fn(banner))
    assert banner.billing_notice == ""
