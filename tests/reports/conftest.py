"""Report fixtures: a simulated book (real risk-core output), and a local S3 server (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from models.db import session_scope
from models.tenancy import Role, Tenant, User
from tests.stubs.smtp_stub import free_port
from veles.bench.reports import simulated_book
from veles.reports.errors import SourceError
from veles.reports.gather import Row


def seed_brokers(url: str, suffix: str = "") -> dict[str, tuple[int, int, Role]]:
    """Two brokers, Alpha and Beta, each with a risk manager and a viewer: `{"Alpha-viewer":
    (tenant_id, user_id, role), ...}`, so tests reach a report across tenants and roles."""
    users = {}
    with session_scope(url) as session:
        for name in ("Alpha", "Beta"):
            tenant = Tenant(name=f"{name}{suffix}")
            session.add(tenant)
            session.flush()
            assert tenant.id is not None
            for role in (Role.RISK_MANAGER, Role.VIEWER):
                user = User(tenant_id=tenant.id, email=f"{role.value}@{name.lower()}.test", password_hash="x",
                            role=role)
                session.add(user)
                session.flush()
                assert user.id is not None
                users[f"{name}-{role.value}"] = (tenant.id, user.id, role)
    return users


@pytest.fixture(scope="session")
def book_200() -> dict[str, Any]:
    """An aggregator snapshot of a 200-account simulated broker."""
    return simulated_book(200, seed=11)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) on a free port, for the whole session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class NoEngine:
    """The engine for reports that never ask it (alerts logs): says so loudly if one ever does."""

    def book(self, tenant_id: int) -> Row:
        raise SourceError("an alerts log must not need the engine")

    def account(self, tenant_id: int, login: int) -> Row | None:
        raise SourceError("an alerts log must not need the engine")
