"""An API app over a real SQLite database seeded with two brokers, and a real Redis for limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from models.db import session_scope
from models.tenancy import Role, Tenant, User
from veles.api import create_api
from veles.config import Settings
from veles.services.auth import hash_password
from veles.services.demo import seed_demo

DEMO_EMAIL, DEMO_PASSWORD = "demo@veles.local", "veles-demo"
OTHER_EMAIL, OTHER_PASSWORD = "risk@other-broker.test", "other-broker-pass"


def settings_for(database_url: str, redis_url: str | None) -> Settings:
    """Explicit settings, so a developer's environment or `.env` cannot change what is tested."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
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
