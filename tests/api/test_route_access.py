"""Every signed-in API route, found from the app itself, against the real PostgreSQL and Redis:
each tenant role is refused (403) exactly the routes its permissions do not cover; expired,
tampered and foreign-signed tokens get 401 everywhere; and on every route that takes an id, the
ids of another tenant's rows are not found (404) and those rows are left as they were.

The permission of each route is written down here, so a route added later fails the first test
until someone decides who may call it (test_route_guards.py covers anonymous and `alg=none`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from models.accounts import ClientAccount
from models.alerts import Alert, AlertKind, AlertRule, AlertState, Severity
from models.connections import Mt5Connection
from models.db import session_scope
from models.history import RiskHistory
from models.invitations import Invitation
from models.reports import Frequency, Report, ReportSchedule, ReportStatus, ReportType
from models.stress import StressScenario
from models.tenancy import Role, User
from tests.api.conftest import ROLES, World
from tests.api.test_route_guards import PUBLIC
from veles.services.auth import Identity
from veles.services.permissions import Permission, allowed
from veles.services.tokens import issue_token

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

P = Permission
# Who may call each signed-in route: the permission its role must hold, or None for any signed-in
# user (their own profile and settings). GET of reports is VIEW_RISK: the report service checks it.
NEEDS: dict[tuple[str, str], Permission | None] = {
    ("GET", "/api/v1/me"): None,
    ("PUT", "/api/v1/me/password"): None,
    ("PUT", "/api/v1/me/phone"): None,
    ("GET", "/api/v1/me/notifications"): None,
    ("PUT", "/api/v1/me/notifications"): None,
    ("GET", "/api/v1/users"): P.MANAGE_USERS,
    ("POST", "/api/v1/users"): P.MANAGE_USERS,
    ("GET", "/api/v1/users/{user_id}"): P.MANAGE_USERS,
    ("PATCH", "/api/v1/users/{user_id}"): P.MANAGE_USERS,
    ("POST", "/api/v1/users/{user_id}/deactivate"): P.MANAGE_USERS,
    ("GET", "/api/v1/invitations"): P.MANAGE_USERS,
    ("POST", "/api/v1/invitations/{invitation_id}/resend"): P.MANAGE_USERS,
    ("POST", "/api/v1/invitations/{invitation_id}/revoke"): P.MANAGE_USERS,
    ("GET", "/api/v1/book"): P.VIEW_RISK,
    ("GET", "/api/v1/reports"): P.VIEW_RISK,
    ("POST", "/api/v1/reports"): P.REQUEST_REPORTS,
    ("GET", "/api/v1/reports/{report_id}"): P.VIEW_RISK,
    ("GET", "/api/v1/reports/{report_id}/download"): P.VIEW_RISK,
    ("POST", "/api/v1/reports/{report_id}/link"): P.VIEW_RISK,
    ("GET", "/api/v1/connections"): P.MANAGE_CONNECTIONS,
    ("POST", "/api/v1/connections"): P.MANAGE_CONNECTIONS,
    ("GET", "/api/v1/connections/{connection_id}"): P.MANAGE_CONNECTIONS,
    ("PATCH", "/api/v1/connections/{connection_id}"): P.MANAGE_CONNECTIONS,
    ("DELETE", "/api/v1/connections/{connection_id}"): P.MANAGE_CONNECTIONS,
    ("POST", "/api/v1/connections/{connection_id}/test"): P.MANAGE_CONNECTIONS,
    ("GET", "/api/v1/accounts"): P.VIEW_RISK,
    ("GET", "/api/v1/accounts/{login}"): P.VIEW_RISK,
    ("GET", "/api/v1/accounts/{login}/flow"): P.VIEW_RISK,
    ("GET", "/api/v1/flow"): P.VIEW_RISK,
    ("GET", "/api/v1/alerts"): P.VIEW_RISK,
    ("GET", "/api/v1/alerts/{alert_id}"): P.VIEW_RISK,
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): P.ACK_ALERTS,
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): P.ACK_ALERTS,
    ("GET", "/api/v1/alert-rules"): P.VIEW_RISK,
    ("GET", "/api/v1/me/alerts"): P.VIEW_RISK,
    ("POST", "/api/v1/me/alerts/read"): P.VIEW_RISK,
    ("PUT", "/api/v1/me/alerts"): P.VIEW_RISK,
    ("GET", "/api/v1/alert-escalation"): P.VIEW_RISK,
    ("PUT", "/api/v1/alert-escalation"): P.EDIT_RULES,
    ("GET", "/api/v1/alert-rules/built-in"): P.VIEW_RISK,
    ("POST", "/api/v1/alert-rules"): P.EDIT_RULES,
    ("PATCH", "/api/v1/alert-rules/{rule_id}"): P.EDIT_RULES,
    ("DELETE", "/api/v1/alert-rules/{rule_id}"): P.EDIT_RULES,
    ("GET", "/api/v1/history/accounts/{login}"): P.VIEW_RISK,
    ("GET", "/api/v1/history/book"): P.VIEW_RISK,
    ("POST", "/api/v1/calculator"): P.USE_CALCULATOR,
    ("POST", "/api/v1/stress"): P.VIEW_RISK,
    ("GET", "/api/v1/stress/scenarios"): P.VIEW_RISK,
    ("POST", "/api/v1/stress/scenarios"): P.EDIT_RULES,
    ("DELETE", "/api/v1/stress/scenarios/{scenario_id}"): P.EDIT_RULES,
    ("POST", "/api/v1/stress/scenarios/{scenario_id}/run"): P.VIEW_RISK,
    ("GET", "/api/v1/var"): P.VIEW_RISK,
    ("GET", "/api/v1/report-schedules"): P.VIEW_RISK,
    ("POST", "/api/v1/report-schedules"): P.REQUEST_REPORTS,
    ("PATCH", "/api/v1/report-schedules/{schedule_id}"): P.REQUEST_REPORTS,
    ("DELETE", "/api/v1/report-schedules/{schedule_id}"): P.REQUEST_REPORTS,
    ("GET", "/api/v1/billing"): P.MANAGE_BILLING,
    ("POST", "/api/v1/billing/checkout"): P.MANAGE_BILLING,
    ("POST", "/api/v1/billing/portal"): P.MANAGE_BILLING,
    ("GET", "/api/v1/billing/invoices"): P.MANAGE_BILLING,
}
# Routes answered from the running engine: with none for the tenant (these tests start no Ray)
# they answer 503 once the caller is let through. test_accounts.py covers them with an engine.
ENGINE = {("GET", "/api/v1/book"), ("GET", "/api/v1/accounts"), ("GET", "/api/v1/accounts/{login}"),
          ("GET", "/api/v1/var"), ("GET", "/api/v1/accounts/{login}/flow"), ("GET", "/api/v1/flow")}
MISSING = "999999"  # an id no row has: an allowed call finds nothing and changes nothing
# A valid body for the routes that take an id and a body, so tenancy (not validation) answers.
BODIES = {
    ("PATCH", "/api/v1/users/{user_id}"): {"role": "viewer"},
    ("PATCH", "/api/v1/connections/{connection_id}"): {"server": "sim://taken-over"},
    ("PATCH", "/api/v1/alert-rules/{rule_id}"): {"enabled": False},
    ("POST", "/api/v1/stress/scenarios/{scenario_id}/run"): None,
    ("PATCH", "/api/v1/report-schedules/{schedule_id}"): {"local_time": "08:00"},
}
HISTORY_RANGE = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}


def _signed_in_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/v1") and (method.upper(), path) not in PUBLIC
    )


def _call(api: TestClient, method: str, path: str, ids: dict[str, str], token: str) -> Any:
    url = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), MISSING), path)
    params = HISTORY_RANGE if "/history/" in path else None
    return api.request(method, url, json=BODIES.get((method, path), {}), params=params,
                       headers={"Authorization": f"Bearer {token}"})


def test_the_table_names_every_signed_in_route(app: FastAPI) -> None:
    """A new route fails here until its permission is written down in NEEDS."""
    assert set(_signed_in_routes(app)) == set(NEEDS)


def test_each_role_is_refused_exactly_what_its_permissions_do_not_cover(world: World,
                                                                        api: TestClient) -> None:
    wrong = []
    for (method, path), permission in NEEDS.items():
        for role in ROLES:
            status = _call(api, method, path, {}, world.token(world.a, role)).status_code
            may = permission is None or allowed(role, permission)
            engine_away = may and status == 503 and (method, path) in ENGINE
            if (status == 403) == may or (status >= 500 and not engine_away):
                wrong.append(f"{role.value} {method} {path}: {status}")
    assert wrong == []


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def _with_payload(token: str, payload: dict[str, Any]) -> str:
    """`token` with its payload replaced and its signature kept (as an attacker edits one)."""
    header, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{signature}"


def test_expired_tampered_and_foreign_tokens_are_refused_everywhere(world: World, api: TestClient) -> None:
    identity = Identity(user_id=world.users[world.a, Role.VIEWER], tenant_id=world.a, role=Role.VIEWER,
                        email=f"viewer@{world.a}.test")
    secret = world.settings.secret_key.get_secret_value()
    valid = issue_token(identity, secret, 5)
    promoted = _with_payload(valid, {**_payload(valid), "role": "platform_admin"})
    moved = _with_payload(valid, {**_payload(valid), "tenant_id": world.b})
    tokens = {
        "expired": issue_token(identity, secret, -1),
        "promoted": promoted,
        "other tenant": moved,
        "foreign key": issue_token(identity, "not-this-deployment's-secret-key-at-all", 5),
        "bad signature": valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB"),
    }
    wrong = [
        f"{name} {method} {path}: {status}"
        for method, path in NEEDS
        for name, token in tokens.items()
        if (status := _call(api, method, path, {}, token).status_code) != 401
    ]
    assert wrong == []


@dataclass(frozen=True)
class Owned:
    """Rows of tenant A, by the path parameter that names them."""

    ids: dict[str, str]


@pytest.fixture
def owned(world: World) -> Iterator[Owned]:
    """One row of each kind a route takes by id, in tenant A; removed afterwards."""
    with session_scope(world.settings.database_url) as session:
        connection = Mt5Connection(tenant_id=world.a, server="sim://a-books", login=1000,
                                   credentials_encrypted=b"not-read-by-these-routes")
        session.add(connection)
        session.flush()
        assert connection.id is not None
        rows: list[Any] = [
            ClientAccount(tenant_id=world.a, connection_id=connection.id, login=880_001, group="real\\a"),
            RiskHistory(tenant_id=world.a, account_login=880_001, ts=datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
                        equity=1000.0, balance=1000.0, margin=0.0, floating=0.0),
            Alert(tenant_id=world.a, severity=Severity.CRITICAL, subject="880001", value=50.0,
                  message="Margin level 50.00% is below 100.00%"),
            AlertRule(tenant_id=world.a, kind=next(iter(AlertKind)), threshold=100.0),
            Report(tenant_id=world.a, type=ReportType.DAILY_RISK, status=ReportStatus.READY,
                   period_start=datetime.now(UTC) - timedelta(days=1), period_end=datetime.now(UTC)),
            Invitation(tenant_id=world.a, email="invited@a.test", role=Role.VIEWER,
                       invited_by=world.users[world.a, Role.TENANT_ADMIN], token_hash="0" * 64,
                       expires_at=datetime.now(UTC) + timedelta(days=1)),
            StressScenario(tenant_id=world.a, name="Gold", scenario="XAUUSD -3%"),
            ReportSchedule(tenant_id=world.a, type=ReportType.MANAGEMENT, frequency=Frequency.DAILY,
                           local_time="07:00", time_zone="UTC", recipients=["desk@a.test"]),
        ]
        session.add_all(rows)
        session.flush()
        _account, _point, alert, rule, report, invitation, scenario, schedule = rows
        ids = {"connection_id": str(connection.id), "login": "880001", "alert_id": str(alert.id),
               "rule_id": str(rule.id), "report_id": str(report.id), "invitation_id": str(invitation.id),
               "scenario_id": str(scenario.id), "schedule_id": str(schedule.id),
               "user_id": str(world.users[world.a, Role.VIEWER])}
    yield Owned(ids)
    with session_scope(world.settings.database_url) as session:
        for model in (ReportSchedule, StressScenario, Invitation, Report, AlertRule, Alert, RiskHistory,
                      ClientAccount, Mt5Connection):
            for row in session.exec(select(model).where(col(model.tenant_id) == world.a)):
                session.delete(row)


def _snapshot(world: World) -> list[Any]:
    """Tenant A's rows of every kind the id routes touch, as plain values."""
    with session_scope(world.settings.database_url) as session:
        return [
            sorted((c.id, c.server, c.status) for c in session.exec(select(Mt5Connection))),
            sorted((a.id, a.state) for a in session.exec(select(Alert))),
            sorted((r.id, r.enabled, r.threshold) for r in session.exec(select(AlertRule))),
            sorted((r.id, r.status) for r in session.exec(select(Report))),
            sorted((i.id, i.token_hash, i.revoked_at) for i in session.exec(select(Invitation))),
            sorted((s.id, s.name, s.scenario) for s in session.exec(select(StressScenario))),
            sorted((s.id, s.local_time, s.enabled) for s in session.exec(select(ReportSchedule))),
            sorted((u.id, u.role, u.is_active)
                   for u in session.exec(select(User).where(col(User.tenant_id) == world.a))),
        ]


def test_another_tenants_ids_are_not_found_and_their_rows_stay_as_they_were(
    world: World, api: TestClient, owned: Owned
) -> None:
    before = _snapshot(world)
    token = world.token(world.b, Role.TENANT_ADMIN)
    wrong = []
    for method, path in NEEDS:
        if "{" not in path:
            continue
        assert set(re.findall(r"\{([^}]+)\}", path)) <= set(owned.ids), f"{path}: no row of tenant A to try"
        response = _call(api, method, path, owned.ids, token)
        expected = {404, 503} if (method, path) in ENGINE else {404}  # B's engine does not run here
        if response.status_code not in expected:
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert wrong == []
    assert _snapshot(world) == before
    assert AlertState.OPEN in {state for _id, state in before[1]}
