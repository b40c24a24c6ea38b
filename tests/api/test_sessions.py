"""Ending a user's sessions takes effect on the next request, not when the access token expires:
deactivation, a role change, a new password, signing out, a replayed refresh token and a
suspended broker, on the real PostgreSQL and Redis; and a token naming another tenant than its
user's is refused even when it is signed with the right key."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from models.db import get_engine, session_scope
from models.tenancy import Role, TenantStatus, User
from tests.auth_support import PASSWORD, auth_db, auth_settings, client, make_user, settings, sign_in
from veles.api import create_api
from veles.config import Settings
from veles.services.admin import store_tenant_status
from veles.services.auth import Identity, issue_token
from veles.services.sessions import (
    ENDED,
    FOREIGN,
    INACTIVE,
    SessionVersions,
    end_sessions,
    session_versions,
)

__all__ = ["auth_db", "client", "settings"]


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def renew(client: TestClient, pair: dict[str, Any]) -> int:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code


def sign_out(client: TestClient, pair: dict[str, Any]) -> int:
    return client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code


def test_a_deactivated_user_is_refused_on_the_next_request(client: TestClient, settings: Settings) -> None:
    admin = make_user(settings.database_url, role=Role.TENANT_ADMIN)
    viewer = make_user(settings.database_url, tenant_id=admin.tenant_id)
    theirs, mine = sign_in(client, viewer), sign_in(client, admin)
    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 200

    done = client.post(f"/api/v1/users/{viewer.user_id}/deactivate", headers=bearer(mine))
    assert done.status_code == 200

    refused = client.get("/api/v1/me", headers=bearer(theirs))
    assert refused.status_code == 401
    assert refused.json()["detail"] == ENDED
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": theirs["refresh_token"]})
    assert again.status_code == 401
    assert client.get("/api/v1/users", headers=bearer(mine)).status_code == 200  # the admin goes on


def test_a_role_change_ends_the_old_token_and_refresh_gives_the_new_role(
    client: TestClient, settings: Settings
) -> None:
    admin = make_user(settings.database_url, role=Role.TENANT_ADMIN)
    manager = make_user(settings.database_url, tenant_id=admin.tenant_id, role=Role.RISK_MANAGER)
    theirs, mine = sign_in(client, manager), sign_in(client, admin)
    assert client.get("/api/v1/me", headers=bearer(theirs)).json()["role"] == "risk_manager"

    changed = client.patch(f"/api/v1/users/{manager.user_id}", json={"role": "viewer"}, headers=bearer(mine))
    assert changed.status_code == 200

    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 401
    renewed = client.post("/api/v1/auth/refresh", json={"refresh_token": theirs["refresh_token"]})
    assert renewed.status_code == 200
    me = client.get("/api/v1/me", headers=bearer(renewed.json()))
    assert me.status_code == 200
    assert me.json()["role"] == "viewer"


def test_a_known_version_costs_no_database_query(client: TestClient, settings: Settings) -> None:
    user = make_user(settings.database_url)
    headers = bearer(sign_in(client, user))
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    engine = get_engine(settings.database_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert client.get("/api/v1/me", headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([q for q in queries if "token_version" in q]) <= 1  # at most the first, then memory


def test_the_change_reaches_every_process_through_redis(settings: Settings) -> None:
    """Another web process has its own cache and hears the change over Redis pub/sub at once
    (deliberately changed from a shared Redis key: each process now caches in memory)."""
    user = make_user(settings.database_url)
    elsewhere = SessionVersions(settings.database_url, settings.redis_url, prefix=settings.redis_prefix)
    try:
        assert elsewhere.wait_subscribed(5)
        assert elsewhere.current(user.user_id) == (user.tenant_id, 0)  # cached before the change
        with session_scope(settings.database_url) as db:
            row = db.get(User, user.user_id)
            assert row is not None
            end_sessions(db, row)
        deadline = time.monotonic() + 2
        while elsewhere.cached(user.user_id) != (user.tenant_id, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert elsewhere.current(user.user_id) == (user.tenant_id, 1)
        assert session_versions(settings).current(user.user_id) == (user.tenant_id, 1)
    finally:
        elsewhere.close()


def end_then_fail(database_url: str, user_id: int) -> None:
    with session_scope(database_url) as db:
        row = db.get(User, user_id)
        assert row is not None
        end_sessions(db, row)
        raise RuntimeError("the unit of work fails after the change")


def test_a_rolled_back_change_publishes_nothing(settings: Settings) -> None:
    user = make_user(settings.database_url)
    versions = session_versions(settings)
    assert versions.current(user.user_id) == (user.tenant_id, 0)
    with pytest.raises(RuntimeError, match="fails"):
        end_then_fail(settings.database_url, user.user_id)
    assert versions.current(user.user_id) == (user.tenant_id, 0)


def test_deactivation_is_cached_as_inactive(settings: Settings) -> None:
    user = make_user(settings.database_url)
    with session_scope(settings.database_url) as db:
        row = db.get(User, user.user_id)
        assert row is not None
        row.is_active = False
        end_sessions(db, row)
    assert session_versions(settings).current(user.user_id) == (user.tenant_id, INACTIVE)


def test_with_redis_down_the_database_answers(auth_db: str) -> None:
    settings = auth_settings(auth_db, "redis://127.0.0.1:1/0")
    user = make_user(auth_db)
    identity = Identity(user_id=user.user_id, tenant_id=user.tenant_id, role=Role.VIEWER, email=user.email)
    # sign-in would be 503 with Redis down, so the token is made here
    pair = {"access_token": issue_token(identity, settings.secret_key.get_secret_value(), 5)}
    with TestClient(create_api(settings)) as client:
        assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 200
        with session_scope(auth_db) as db:
            row = db.get(User, user.user_id)
            assert row is not None
            end_sessions(db, row)
        assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 401


def test_without_redis_the_in_process_cache_serves(auth_db: str) -> None:
    settings = auth_settings(auth_db, None)
    user = make_user(auth_db)
    with TestClient(create_api(settings)) as client:
        pair = sign_in(client, user)
        assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 200
        with session_scope(auth_db) as db:
            row = db.get(User, user.user_id)
            assert row is not None
            end_sessions(db, row)
        assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 401


def test_a_token_naming_another_tenant_is_refused(client: TestClient, settings: Settings) -> None:
    """Signed with the right key, the right user and version, but another tenant's id: 401."""
    mine = make_user(settings.database_url, role=Role.TENANT_ADMIN)
    other = make_user(settings.database_url)
    assert mine.tenant_id != other.tenant_id
    secret = settings.secret_key.get_secret_value()
    honest = Identity(mine.user_id, mine.tenant_id, Role.TENANT_ADMIN, mine.email)
    assert client.get("/api/v1/me", headers=bearer({"access_token": issue_token(honest, secret, 5)})
                      ).status_code == 200
    forged = Identity(mine.user_id, other.tenant_id, Role.TENANT_ADMIN, mine.email)
    for path in ("/api/v1/me", "/api/v1/users", "/api/v1/alerts"):
        refused = client.get(path, headers=bearer({"access_token": issue_token(forged, secret, 5)}))
        assert refused.status_code == 401, (path, refused.text)
        assert refused.json()["detail"] == FOREIGN


def test_signing_out_ends_the_access_token_at_once(client: TestClient, settings: Settings) -> None:
    user = make_user(settings.database_url)
    pair, elsewhere = sign_in(client, user), sign_in(client, user)
    assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 200
    assert sign_out(client, pair) == 204

    refused = client.get("/api/v1/me", headers=bearer(pair))
    assert refused.status_code == 401
    assert refused.json()["detail"] == ENDED
    # another sign-in of the user loses its access token too, but renews with its own refresh token
    assert client.get("/api/v1/me", headers=bearer(elsewhere)).status_code == 401
    renewed = client.post("/api/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert renewed.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(renewed.json())).status_code == 200
    # signing out again changes nothing
    assert sign_out(client, pair) == 204
    assert client.get("/api/v1/me", headers=bearer(renewed.json())).status_code == 200


def test_a_replayed_refresh_token_ends_the_access_token_at_once(
    client: TestClient, settings: Settings
) -> None:
    user = make_user(settings.database_url)
    first = sign_in(client, user)
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    current = second.json()
    assert client.get("/api/v1/me", headers=bearer(current)).status_code == 200

    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401

    assert client.get("/api/v1/me", headers=bearer(current)).status_code == 401
    assert renew(client, current) == 401


def test_a_new_password_ends_the_access_token_at_once(client: TestClient, settings: Settings) -> None:
    user = make_user(settings.database_url)
    pair, elsewhere = sign_in(client, user), sign_in(client, user)
    changed = client.put("/api/v1/me/password", headers=bearer(pair),
                         json={"current_password": PASSWORD, "new_password": "a different long passphrase"})
    assert changed.status_code == 204, changed.text
    for each in (pair, elsewhere):
        assert client.get("/api/v1/me", headers=bearer(each)).status_code == 401
        assert renew(client, each) == 401


def test_suspending_the_tenant_ends_every_access_token_at_once(
    client: TestClient, settings: Settings
) -> None:
    admin = make_user(settings.database_url, role=Role.TENANT_ADMIN)
    viewer = make_user(settings.database_url, tenant_id=admin.tenant_id)
    bystander = make_user(settings.database_url)  # another tenant, not suspended
    pairs = [sign_in(client, admin), sign_in(client, viewer)]
    theirs = sign_in(client, bystander)
    assert all(client.get("/api/v1/me", headers=bearer(p)).status_code == 200 for p in pairs)

    store_tenant_status(settings.database_url, bystander.user_id, admin.tenant_id, TenantStatus.SUSPENDED)

    for pair in pairs:
        assert client.get("/api/v1/me", headers=bearer(pair)).status_code == 401
        assert renew(client, pair) == 401
    assert client.get("/api/v1/me", headers=bearer(theirs)).status_code == 200
    # resumed: the old tokens stay dead; signing in again works
    store_tenant_status(settings.database_url, bystander.user_id, admin.tenant_id, TenantStatus.ACTIVE)
    assert client.get("/api/v1/me", headers=bearer(pairs[0])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(sign_in(client, admin))).status_code == 200


def test_with_redis_gone_the_listener_stops_trusting_its_cache(auth_db: str) -> None:
    """A push may be lost while the listener is cut off, so meanwhile every check reads the database."""
    versions = SessionVersions(auth_db, "redis://127.0.0.1:1/0")
    try:
        user = make_user(auth_db)
        assert not versions.wait_subscribed(0.5)
        assert versions.current(user.user_id) == (user.tenant_id, 0)
        identity = Identity(user.user_id, user.tenant_id, Role.VIEWER, user.email)
        assert versions.check_cached(identity) is False  # not trusted: the next check asks the database
    finally:
        versions.close()
