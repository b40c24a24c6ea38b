"""`/api/v1/connections` on the real PostgreSQL: CRUD, live test against the simulated server,
credentials never returned nor stored in clear, plan limits, and 401/403/404 for every route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import delete, select

from models.accounts import ClientAccount
from models.audit import AuditLog
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Role

from .conftest import World

PASSWORD = "sim-manager-pass"  # what the world's simulated servers accept


@pytest.fixture
def clean(world: World) -> Iterator[None]:
    """Each test starts with no connections in either tenant (the plan counts them). Their
    accounts go first, as `delete_connection` does: the engine the first connection started
    (in a tenant host already running, at once) may have written them by now."""
    yield
    with session_scope(world.settings.database_url) as session:
        rows = session.exec(select(Mt5Connection).with_for_update()).all()  # as delete_connection does
        session.exec(delete(ClientAccount))
        for row in rows:
            session.delete(row)


def _add(
    api: TestClient,
    world: World,
    server: str = "sim://alpha",
    login: int = 1001,
    password: str = PASSWORD,
    tenant: int | None = None,
) -> dict[str, object]:
    response = api.post(
        "/api/v1/connections",
        headers=world.headers(tenant or world.a),
        json={"server": server, "login": login, "password": password},
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_create_list_change_delete_and_the_password_never_comes_back(
    api: TestClient, world: World, clean: None
) -> None:
    created = _add(api, world)
    assert created["status"] == "pending"
    assert "password" not in created
    assert "credentials_encrypted" not in created
    headers = world.headers(world.a)
    listed = api.get("/api/v1/connections", headers=headers)
    assert listed.json() == [created]
    assert PASSWORD not in listed.text

    with session_scope(world.settings.database_url) as session:  # encrypted at rest
        row = session.exec(select(Mt5Connection)).one()
        assert PASSWORD.encode() not in row.credentials_encrypted
        assert PASSWORD not in repr(row)

    changed = api.patch(f"/api/v1/connections/{created['id']}", headers=headers, json={"login": 1002})
    assert changed.status_code == 200, changed.text
    assert changed.json()["login"] == 1002
    assert api.get(f"/api/v1/connections/{created['id']}", headers=headers).json() == changed.json()

    assert api.delete(f"/api/v1/connections/{created['id']}", headers=headers).status_code == 204
    assert api.get(f"/api/v1/connections/{created['id']}", headers=headers).status_code == 404
    assert api.get("/api/v1/connections", headers=headers).json() == []

    with session_scope(world.settings.database_url) as session:  # who did what, never the password
        trail = [
            (row.action, row.tenant_id, row.actor_user_id, row.details)
            for row in session.exec(
                select(AuditLog).where(AuditLog.target == f"connection:{created['id']}").order_by(AuditLog.id)
            ).all()
        ]
    admin = world.users[world.a, Role.TENANT_ADMIN]
    assert trail == [
        ("connection.create", world.a, admin, {"server": "sim://alpha", "login": 1001}),
        ("connection.update", world.a, admin, {"fields": ["login"]}),
        ("connection.delete", world.a, admin, {}),
    ]


def test_live_test_connects_or_says_wrong_password(api: TestClient, world: World, clean: None) -> None:
    headers = world.headers(world.a)
    good = _add(api, world)
    result = api.post(f"/api/v1/connections/{good['id']}/test", headers=headers)
    assert result.status_code == 200, result.text
    assert result.json()["ok"] is True
    assert result.json()["accounts"] == 5
    row = api.get(f"/api/v1/connections/{good['id']}", headers=headers).json()
    assert (row["status"], row["last_error"]) == ("connected", None)
    assert row["last_connected_at"] is not None

    wrong = api.patch(f"/api/v1/connections/{good['id']}", headers=headers, json={"password": "guess"})
    assert wrong.json()["status"] == "pending"  # new credentials: the old test says nothing
    result = api.post(f"/api/v1/connections/{good['id']}/test", headers=headers)
    assert result.json()["ok"] is False
    assert "wrong password" in result.json()["message"]
    assert "guess" not in result.text
    row = api.get(f"/api/v1/connections/{good['id']}", headers=headers).json()
    assert row["status"] == "failed"
    assert "wrong password" in row["last_error"]


def test_a_real_server_without_a_connector_is_a_clear_failure(
    api: TestClient, world: World, clean: None
) -> None:
    created = _add(api, world, server="mt5.broker.example:443")
    result = api.post(f"/api/v1/connections/{created['id']}/test", headers=world.headers(world.a)).json()
    assert result["ok"] is False
    assert "no MT5 manager connector" in result["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"server": "nohost", "login": 1, "password": "p"}, "server"),
        ({"server": "h:70000", "login": 1, "password": "p"}, "server"),
        ({"server": "sim://bad name", "login": 1, "password": "p"}, "server"),
        ({"server": "h:1", "login": 0, "password": "p"}, "login"),
        ({"server": "h:1", "login": 1, "password": ""}, "password"),
        ({"server": "h:1", "login": 1}, "password"),
        ({"server": "h:1", "login": 1, "password": "p", "platform": "mt6"}, "platform"),
        ({"server": "h:1", "login": 1, "password": "p", "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    api: TestClient, world: World, clean: None, body: dict[str, object], field: str
) -> None:
    response = api.post("/api/v1/connections", headers=world.headers(world.a), json=body)
    assert response.status_code == 422
    assert field in [error["loc"][-1] for error in response.json()["detail"]]
    assert api.get("/api/v1/connections", headers=world.headers(world.a)).json() == []


def test_duplicates_and_the_plan_are_409(api: TestClient, world: World, clean: None) -> None:
    _add(api, world)
    duplicate = api.post(
        "/api/v1/connections",
        headers=world.headers(world.a),
        json={"server": "sim://alpha", "login": 1001, "password": "x"},
    )
    assert duplicate.status_code == 409
    assert "already uses login 1001" in duplicate.json()["detail"]
    _add(api, world, login=1002)  # a second login on the same server: still one server
    over = api.post(
        "/api/v1/connections",
        headers=world.headers(world.a),
        json={"server": "sim://beta", "login": 1001, "password": "x"},
    )
    assert over.status_code == 409
    assert "Starter plan allows 1 MT5 server" in over.json()["detail"]
    assert over.json()["upgrade_url"].endswith("/plan")  # the portal's plan page: Checkout or the portal
    assert over.json()["upgrade_url"].startswith(("http://", "https://"))
    assert "upgrade_url" not in duplicate.json()  # only a plan limit offers the upgrade
    listed = api.get("/api/v1/connections", headers=world.headers(world.a)).json()
    assert len(listed) == 2
    assert {c["upgrade_url"] for c in listed} == {None}


def test_a_plan_limit_the_engine_met_offers_the_upgrade(api: TestClient, world: World, clean: None) -> None:
    """The 101st account on Starter is found when the server is read (the engine refuses the
    connection and stores why): the connection then names the plan page; another failure does not."""
    created = _add(api, world)
    other = _add(api, world, login=1002)
    with session_scope(world.settings.database_url) as session:
        over = "Refused: the Starter plan allows 100 accounts; this would make 101."
        for row_id, why in ((created["id"], over),
                            (other["id"], "Gave up after 3 attempts in 60 s: connection refused")):
            row = session.get(Mt5Connection, row_id)
            assert row is not None
            row.last_error = why
    listed = {c["id"]: c for c in api.get("/api/v1/connections", headers=world.headers(world.a)).json()}
    assert listed[created["id"]]["upgrade_url"] == "/plan"
    assert listed[other["id"]]["upgrade_url"] is None


def test_anonymous_wrong_role_and_other_tenant(api: TestClient, world: World, clean: None) -> None:
    created = _add(api, world)
    one = f"/api/v1/connections/{created['id']}"
    body = {"server": "sim://x", "login": 5, "password": "p"}
    routes = [
        ("get", "/api/v1/connections", None),
        ("post", "/api/v1/connections", body),
        ("get", one, None),
        ("patch", one, {"login": 7}),
        ("delete", one, None),
        ("post", f"{one}/test", None),
    ]
    for method, path, json in routes:
        assert api.request(method, path, json=json).status_code == 401, path
        for role in (Role.VIEWER, Role.RISK_MANAGER):
            assert (
                api.request(method, path, json=json, headers=world.headers(world.a, role)).status_code == 403
            )
    for method, path, json in routes[2:]:
        response = api.request(method, path, json=json, headers=world.headers(world.b))
        assert response.status_code == 404, (method, path)
    assert api.get("/api/v1/connections", headers=world.headers(world.b)).json() == []
    # B's tries changed nothing of A's. The engine may have connected it meanwhile (a tenant host
    # left running by an earlier module feeds a new connection at once): its fields are the engine's.
    engine_fields = {"status", "last_error", "last_connected_at"}
    after = api.get(one, headers=world.headers(world.a)).json()
    assert {k: v for k, v in after.items() if k not in engine_fields} == \
        {k: v for k, v in created.items() if k not in engine_fields}
