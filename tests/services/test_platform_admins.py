"""`veles admin create-platform-admin EMAIL`: a platform admin with a one-time password, in the
platform's own tenant rather than a broker's. They sign in, see every broker on the admin page,
and have no broker's users or book as their own; the platform tenant gets no engine."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Role, Tenant, TenantStatus, User
from veles.api import create_api
from veles.cli import app
from veles.config import Settings, get_settings
from veles.services.admin import set_tenant_status, tenants_usage
from veles.services.auth import PasswordChangeRequired, Tokens, sign_in
from veles.services.demo import DEMO_TENANT, seed_demo
from veles.services.platform_admins import PLATFORM_TENANT
from veles.services.tenants import active_tenants
from veles.services.tokens import as_utc

EMAIL = "Root@Operator.example"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    made = Settings(_env_file=None, database_url=url, redis_url=None, ray_address=None)
    seed_demo(made)
    yield made
    get_settings.cache_clear()


def create(email: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["admin", "create-platform-admin", email])
    return result.exit_code, result.output


def test_a_platform_admin_signs_in_with_the_printed_password(settings: Settings) -> None:
    code, output = create(EMAIL)
    assert code == 0, output
    match = re.search(r"platform admin root@operator\.example created; one-time password \(shown only now, "
                      r"replace it at the first sign-in\): (\S+)$", output.strip())
    assert match, output
    with session_scope(settings.database_url) as db, pytest.raises(PasswordChangeRequired):
        sign_in(db, settings, EMAIL, match.group(1))  # temporary, like an invited user's
    with session_scope(settings.database_url) as db:
        tokens = sign_in(db, settings, EMAIL, match.group(1), new_password="Violet-harbour-73-quietly")
    assert isinstance(tokens, Tokens)
    assert tokens.identity.role == Role.PLATFORM_ADMIN
    with session_scope(settings.database_url) as db:
        tenant = db.get(Tenant, tokens.identity.tenant_id)
        assert tenant is not None
        assert (tenant.name, tenant.is_platform) == (PLATFORM_TENANT, True)
        assert tenant.status == TenantStatus.ACTIVE
        demo_id = db.exec(select(Tenant.id).where(Tenant.name == DEMO_TENANT)).one()
    # the admin page lists brokers, not the platform; the engine runs for brokers only
    assert [t.name for t in tenants_usage(Role.PLATFORM_ADMIN, settings.database_url)] == [DEMO_TENANT]
    assert active_tenants(settings.database_url) == [(demo_id, DEMO_TENANT)]
    # no broker's users or connections are theirs
    with TestClient(create_api(settings)) as client:
        headers = {"Authorization": f"Bearer {tokens.access_token}"}
        users = client.get("/api/v1/users", headers=headers)
        assert users.status_code == 200, users.text
        assert [u["email"] for u in users.json()] == ["root@operator.example"]
        connections = client.get("/api/v1/connections", headers=headers)
        assert (connections.status_code, connections.json()) == (200, [])
    # and the platform tenant cannot be suspended (that would lock every platform admin out)
    with pytest.raises(LookupError, match="no broker"):
        asyncio.run(set_tenant_status(settings, Role.PLATFORM_ADMIN, tokens.identity.user_id,
                                      tokens.identity.tenant_id, TenantStatus.SUSPENDED))


def test_a_second_admin_joins_the_same_platform_tenant(settings: Settings) -> None:
    assert create("first@operator.example")[0] == 0
    assert create("second@operator.example")[0] == 0
    with session_scope(settings.database_url) as db:
        assert len(db.exec(select(Tenant).where(Tenant.is_platform == True)).all()) == 1  # noqa: E712
        user = db.exec(select(User).where(User.email == "second@operator.example")).one()
        assert user.must_change_password
        assert user.password_expires_at is not None
        hours = (as_utc(user.password_expires_at) - utcnow()).total_seconds() / 3600
        assert settings.temporary_password_hours - 1 < hours <= settings.temporary_password_hours


@pytest.mark.parametrize(("email", "message"), [
    ("not an address", "is not an e-mail address"),
    ("demo@veles.local", "demo@veles.local is already registered"),
])
def test_bad_or_taken_addresses_are_refused(settings: Settings, email: str, message: str) -> None:
    code, output = create(email)
    assert code == 2
    assert message in output


def test_set_plan_changes_the_plan_and_refuses_unknown_ones(settings: Settings) -> None:
    """`veles admin set-plan TENANT PLAN` stores the plan (audited) and says whether an engine
    took it; an unknown plan or tenant is exit 2 naming it (the engine's side of a plan change:
    tests/actors/test_plan_limits.py)."""
    with session_scope(settings.database_url) as db:
        demo_id = db.exec(select(Tenant.id).where(Tenant.name == DEMO_TENANT)).one()
    result = CliRunner().invoke(app, ["admin", "set-plan", str(demo_id), "starter"])
    assert result.exit_code == 0, result.output
    # no engine for it: stored, and said so (not told: this process has no Ray to ask, as alone;
    # not running: the suite's Ray runs here and has no supervisor for the tenant)
    assert "engine not told" in result.output or "engine not running" in result.output
    with session_scope(settings.database_url) as db:
        tenant = db.get(Tenant, demo_id)
        assert tenant is not None
        assert tenant.plan == "starter"
    bad = CliRunner().invoke(app, ["admin", "set-plan", str(demo_id), "gold"])
    assert (bad.exit_code, "plan: one of starter, professional, enterprise" in bad.output) == (2, True)
    missing = CliRunner().invoke(app, ["admin", "set-plan", "999", "starter"])
    assert (missing.exit_code, "no broker 999" in missing.output) == (2, True)
