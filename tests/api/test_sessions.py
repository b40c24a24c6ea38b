"""Ending a user's sessions takes effect on the next request, not when the access token expires:
deactivation, a role change and a new password, on the real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event

from models.db import get_engine, session_scope
from models.tenancy import Role, User
from tests.auth_support import PASSWORD, Made, auth_db, auth_settings, make_user
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import Identity, issue_token
from veles.services.sessions import ENDED, INACTIVE, SessionVersions, end_sessions, session_versions

__all__ = ["auth_db"]


@pytest.fixture
def settings(auth_db: str, redis_url: str) -> Settings:
    return auth_settings(auth_db, redis_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_api(settings)) as test_client:
        yield test_client


def sign_in(client: TestClient, made: Made) -> dict[str, Any]:
    response = client.post("/api/v1/auth/token", json={"email": made.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


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
    assert len([q for q in queries if "token_version" in q]) <= 1  # at most the first, then Redis
    cached = redis.Redis.from_url(settings.redis_url or "").keys(f"{settings.redis_prefix}token-version:*")
    assert isinstance(cached, list)
    assert len(cached) >= 1


def test_the_change_reaches_every_process_through_redis(settings: Settings) -> None:
    """Another web process has its own cache object but the same Redis: it sees the change at once."""
    user = make_user(settings.database_url)
    elsewhere = SessionVersions(settings.database_url, redis.Redis.from_url(settings.redis_url or ""))
    assert elsewhere.current(user.user_id) == 0  # loaded and cached before the change
    with session_scope(settings.database_url) as db:
        row = db.get(User, user.user_id)
        assert row is not None
        end_sessions(db, row)
    assert elsewhere.current(user.user_id) == 1
    assert session_versions(settings).current(user.user_id) == 1


def end_then_fail(database_url: str, user_id: int) -> None:
    with session_scope(database_url) as db:
        row = db.get(User, user_id)
        assert row is not None
        end_sessions(db, row)
        raise RuntimeError("the unit of work fails after the change")


def test_a_rolled_back_change_publishes_nothing(settings: Settings) -> None:
    user = make_user(settings.database_url)
    versions = session_versions(settings)
    assert versions.current(user.user_id) == 0
    with pytest.raises(RuntimeError, match="fails"):
        end_then_fail(settings.database_url, user.user_id)
    assert versions.current(user.user_id) == 0


def test_deactivation_is_cached_as_inactive(settings: Settings) -> None:
    user = make_user(settings.database_url)
    with session_scope(settings.database_url) as db:
        row = db.get(User, user.user_id)
        assert row is not None
        row.is_active = False
        end_sessions(db, row)
    assert session_versions(settings).current(user.user_id) == INACTIVE


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
