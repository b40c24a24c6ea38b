"""Shared by the identity and access tests: a migrated PostgreSQL database, settings pointing at
it, and users made on demand (each test makes its own, so lockout counters never leak between
tests). Import the fixtures by name: `from tests.auth_support import auth_db, make_user`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from models.audit import AuditLog
from models.db import get_engine, session_scope, tenant_session, upgrade
from models.tenancy import Plan, Role, Tenant, TwoFactor, User
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import Identity, hash_password, issue_token
from veles.services.sessions import forget_versions

PASSWORD = "correct horse battery"
T = TypeVar("T")


def auth_settings(database_url: str, redis_url: str | None = None, **overrides: Any) -> Settings:
    """Explicit settings, so a developer's environment or `.env` cannot change what is tested."""
    return Settings(_env_file=None, database_url=database_url, redis_url=redis_url,
                    ray_address=None, **overrides)


@pytest.fixture
def settings(auth_db: str, redis_url: str) -> Settings:
    """Settings on the module's auth database and the test Redis (for modules that import it)."""
    return auth_settings(auth_db, redis_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The API in-process on those settings."""
    with TestClient(create_api(settings)) as test_client:
        yield test_client


def sign_in(client: TestClient, made: Made) -> dict[str, Any]:
    """A made user's token pair from `POST /api/v1/auth/token`."""
    response = client.post("/api/v1/auth/token", json={"email": made.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def auth_db(pg_url: str) -> str:
    """The test PostgreSQL database, emptied and migrated to the newest revisions for this module."""
    with get_engine(pg_url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(pg_url)
    forget_versions()  # user ids start again: cached versions are someone else's
    return pg_url


@dataclass(frozen=True)
class Made:
    """A user made for one test, with its tenant."""

    user_id: int
    tenant_id: int
    email: str
    password: str = PASSWORD


def make_user(database_url: str, *, role: Role = Role.VIEWER, plan: Plan = Plan.STARTER,
              tenant_id: int | None = None, phone: str | None = None,
              two_factor: TwoFactor = TwoFactor.NONE, temporary: bool = False) -> Made:
    """A new user (in a new tenant unless `tenant_id` is given) with the password `PASSWORD`
    (`temporary`: a one-time password, to be replaced at the first sign-in)."""
    tag = uuid.uuid4().hex[:10]
    with session_scope(database_url) as session:
        if tenant_id is None:
            tenant = Tenant(name=f"Broker {tag}", plan=plan)
            session.add(tenant)
            session.flush()
            assert tenant.id is not None
            tenant_id = tenant.id
        user = User(tenant_id=tenant_id, email=f"user-{tag}@broker.test", role=role, phone=phone,
                    password_hash=hash_password(PASSWORD), two_factor=two_factor,
                    must_change_password=temporary)
        session.add(user)
        session.flush()
        assert user.id is not None
        return Made(user_id=user.id, tenant_id=tenant_id, email=user.email)


def audit_actions(database_url: str, *, user_id: int | None = None, email: str | None = None) -> list[str]:
    """The actions audited for a user (or, for an unknown e-mail, for that address), oldest first."""
    with session_scope(database_url) as session:
        rows = session.exec(select(AuditLog).order_by(AuditLog.id)).all()  # type: ignore[arg-type]
        return [row.action for row in rows
                if (user_id is not None and row.actor_user_id == user_id)
                or (email is not None and row.details.get("email") == email)]


@pytest.fixture
def admin(settings: Settings) -> Made:
    """A tenant admin in a new tenant, on the module's own `settings`."""
    return make_user(settings.database_url, role=Role.TENANT_ADMIN)


def identity_of(made: Made, role: Role = Role.TENANT_ADMIN) -> Identity:
    """Who a made user is to the services, as `role` (a `Made` does not carry its role)."""
    return Identity(user_id=made.user_id, tenant_id=made.tenant_id, role=role, email=made.email)


def bearer(settings: Settings, made: Made, role: Role = Role.TENANT_ADMIN) -> dict[str, str]:
    """An Authorization header with a fresh access token for a made user, as `role`."""
    token = issue_token(identity_of(made, role), settings.secret_key.get_secret_value(), 5)
    return {"Authorization": f"Bearer {token}"}


def run_as(settings: Settings, actor: Made, action: Callable[[Session, Identity], T],
           role: Role = Role.TENANT_ADMIN) -> T:
    """Run one service call as `actor` in its tenant's confined session (committed on success)."""
    with tenant_session(settings.database_url, actor.tenant_id) as session:
        return action(session, identity_of(actor, role))
