"""An API app over a real SQLite database seeded with two brokers, and a real Redis for limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, User
from tests.conftest import REDIS_URL
from tests.models.conftest import reset_schema
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import Identity, hash_password, issue_token
from veles.services.credentials import generate_key
from veles.services.demo import seed_demo
from veles.services.engine import stop_engine

DEMO_EMAIL, DEMO_PASSWORD = "demo@veles.local", "veles-demo"
OTHER_EMAIL, OTHER_PASSWORD = "risk@other-broker.test", "other-broker-pass"


def settings_for(database_url: str, redis_url: str | None) -> Settings:
    """Explicit settings, so a developer's environment or `.env` cannot change what is tested."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        ray_address=None,
        demo_email=DEMO_EMAIL,
        demo_password=DEMO_PASSWORD,
    )


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file with the demo broker and a second broker, one user each."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('api')) / 'veles.db'}"
    seed_demo(settings_for(url, None))
    with session_scope(url) as session:
        other = Tenant(name="Other Broker")
        session.add(other)
        session.flush()
        assert other.id is not None
        session.add(User(tenant_id=other.id, email=OTHER_EMAIL, password_hash=hash_password(OTHER_PASSWORD),
                         role=Role.VIEWER))
    return url


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """Settings on the seeded database and the test Redis (emptied for every test)."""
    return settings_for(database_url, redis_url)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """A fresh app per test: its own metrics registry and rate limiter."""
    return create_api(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client that keeps one event loop for the whole test."""
    with TestClient(app) as test_client:
        yield test_client


def tenant_of(database_url: str, email: str) -> int:
    """The tenant id of a seeded user."""
    with session_scope(database_url) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        return user.tenant_id


# -- PostgreSQL world for the data routes ------------------------------------------------------

ROLES = (Role.VIEWER, Role.RISK_MANAGER, Role.TENANT_ADMIN)


@dataclass(frozen=True)
class World:
    """Two tenants on the real PostgreSQL (migrated, row-level security on): tenant A has a user
    of every tenant role, tenant B a tenant admin (so B is refused by tenancy, never by role)."""

    settings: Settings
    a: int
    b: int
    users: dict[tuple[int, Role], int]

    def token(self, tenant_id: int, role: Role = Role.TENANT_ADMIN) -> str:
        """A valid access token for the seeded user of `tenant_id` with `role`."""
        identity = Identity(user_id=self.users[tenant_id, role], tenant_id=tenant_id, role=role,
                            email=f"{role.value}@{tenant_id}.test")
        return issue_token(identity, self.settings.secret_key.get_secret_value(), 5)

    def headers(self, tenant_id: int, role: Role = Role.TENANT_ADMIN) -> dict[str, str]:
        """Authorization headers for `token(tenant_id, role)`."""
        return {"Authorization": f"Bearer {self.token(tenant_id, role)}"}


@pytest.fixture(scope="module")
def world(pg_url: str) -> Iterator[World]:
    """Empty and migrate the test database and seed the two tenants, once per module: other
    modules empty the same database, so a world kept for the whole session would lose its rows.

    At the end of the module the engine its tenants got is stopped: adding a tenant's first
    connection through the API starts its supervisor when Ray runs in this process, and one left
    running would serve the next module's tenant of the same id with this module's credentials
    key (seen in a full run: the next module's connection marked "cannot be decrypted")."""
    reset_schema(pg_url)
    upgrade(pg_url)
    settings = Settings(
        _env_file=None,
        database_url=pg_url, redis_url=REDIS_URL, ray_address=None, ray_namespace="veles-test",
        credentials_keys=SecretStr(generate_key()), simulator_password=SecretStr("sim-manager-pass"),
    )
    users: dict[tuple[int, Role], int] = {}
    with session_scope(pg_url) as session:
        session.expire_on_commit = False
        a = Tenant(name="Api Broker A", plan=Plan.STARTER)
        b = Tenant(name="Api Broker B", plan=Plan.PROFESSIONAL)
        session.add_all([a, b])
        session.flush()
        assert a.id is not None
        assert b.id is not None
        for tenant_id, roles in ((a.id, ROLES), (b.id, (Role.TENANT_ADMIN,))):
            for role in roles:
                user = User(tenant_id=tenant_id, email=f"{role.value}@{tenant_id}.test", password_hash="x",
                            role=role)
                session.add(user)
                session.flush()
                assert user.id is not None
                users[tenant_id, role] = user.id
    assert a.id is not None
    assert b.id is not None
    yield World(settings, a.id, b.id, users)
    if ray.is_initialized():
        asyncio.run(stop_engine(settings))


@pytest.fixture
def api(world: World, redis_url: str) -> Iterator[TestClient]:
    """A client of a fresh app on the world's settings (the test Redis is emptied per test)."""
    with TestClient(create_api(world.settings)) as test_client:
        yield test_client
