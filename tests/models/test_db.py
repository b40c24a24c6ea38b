"""Schema, demo data and sign-in against SQLite and the real PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from models.db import session_scope, upgrade
from models.tenancy import Tenant, User
from veles.config import Settings
from veles.services.auth import AuthError, authenticate
from veles.services.demo import seed_demo
from veles.services.tenants import active_tenants


def test_seed_is_idempotent_and_demo_user_signs_in(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    first = seed_demo(settings)
    assert seed_demo(settings) == first
    upgrade(database_url)  # running the upgrade again keeps the data
    with session_scope(database_url) as db:
        assert db.exec(select(func.count()).select_from(Tenant)).one() == 1
        assert db.exec(select(func.count()).select_from(User)).one() == 1
        identity = authenticate(db, "  DEMO@veles.local ", "veles-demo")
    assert identity.tenant_id == first
    assert active_tenants(database_url) == [(first, "Demo Broker")]


def test_wrong_password_and_unknown_user_get_the_same_error(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    seed_demo(settings)
    with session_scope(database_url) as db:
        with pytest.raises(AuthError) as wrong:
            authenticate(db, "demo@veles.local", "nope")
        with pytest.raises(AuthError) as unknown:
            authenticate(db, "nobody@veles.local", "veles-demo")
    assert str(wrong.value) == str(unknown.value) == "Wrong email or password."


def test_suspended_tenant_cannot_sign_in(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    tenant_id = seed_demo(settings)
    with session_scope(database_url) as db:
        tenant = db.get(Tenant, tenant_id)
        assert tenant is not None
        tenant.status = "suspended"
    with session_scope(database_url) as db, pytest.raises(AuthError, match="suspended"):
        authenticate(db, "demo@veles.local", "veles-demo")
    assert active_tenants(database_url) == []
