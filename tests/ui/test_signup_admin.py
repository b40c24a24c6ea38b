"""Sign-up and platform administration against the real PostgreSQL (and Ray for suspend/resume)."""

from __future__ import annotations

import asyncio

import pytest
import ray
from sqlmodel import select

from actors.names import supervisor_name
from models.audit import AuditLog
from models.db import session_scope, upgrade
from models.tenancy import Role, Tenant, TenantStatus, User
from veles.config import Settings
from veles.services.admin import audit_entries, set_tenant_status, tenant_usage, tenants_usage
from veles.services.auth import AuthError, authenticate
from veles.services.permissions import PermissionDenied
from veles.services.signup import SignupError, SignupForm, sign_up

GOOD = {"broker": "Acme FX", "email": "Boss@Acme.test ", "password": "correct horse", "plan": "professional"}


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:
    upgrade(pg_url)
    return pg_url


def _form(**changes: str) -> SignupForm:
    return SignupForm.from_form({**GOOD, **changes})


def test_sign_up_creates_tenant_and_its_admin(db: str) -> None:
    identity = sign_up(db, _form())
    assert identity.role is Role.TENANT_ADMIN
    assert identity.email == "boss@acme.test"
    with session_scope(db) as session:
        tenant = session.get(Tenant, identity.tenant_id)
        assert tenant is not None
        assert tenant.name == "Acme FX"
        assert tenant.plan.value == "professional"
        assert tenant.status is TenantStatus.ACTIVE
        assert authenticate(session, "boss@acme.test", "correct horse").tenant_id == identity.tenant_id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"broker": " "}, "broker"),
        ({"broker": "x" * 121}, "broker"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"plan": "platinum"}, "plan"),
    ],
)
def test_bad_field_is_named_and_nothing_is_written(db: str, changes: dict[str, str], field: str) -> None:
    with session_scope(db) as session:
        before = len(session.exec(select(Tenant)).all())
    with pytest.raises(SignupError) as refused:
        sign_up(db, _form(**{"email": "other@acme.test", "broker": "Other", **changes}))
    assert refused.value.field == field
    with session_scope(db) as session:
        assert len(session.exec(select(Tenant)).all()) == before


def test_taken_broker_or_email_is_refused_by_field(db: str) -> None:
    sign_up(db, _form(broker="Taken Ltd", email="first@taken.test"))
    with pytest.raises(SignupError) as broker:
        sign_up(db, _form(broker="Taken Ltd", email="second@taken.test"))
    assert broker.value.field == "broker"
    with pytest.raises(SignupError) as email:
        sign_up(db, _form(broker="Taken Two", email="FIRST@taken.test"))
    assert email.value.field == "email"
    with session_scope(db) as session:
        assert session.exec(select(User).where(User.email == "second@taken.test")).first() is None
        assert session.exec(select(Tenant).where(Tenant.name == "Taken Two")).first() is None


def test_usage_lists_plan_limits_and_refuses_non_platform_roles(db: str) -> None:
    identity = sign_up(db, _form(broker="Usage Co", email="admin@usage.test", plan="starter"))
    usage = {u.tenant_id: u for u in tenants_usage(Role.PLATFORM_ADMIN, db, {identity.tenant_id: 150})}
    mine = usage[identity.tenant_id]
    assert (mine.plan, mine.users, mine.servers, mine.max_servers) == ("Starter", 1, 0, 1)
    assert (mine.accounts, mine.max_accounts, mine.over_limit) == (150, 100, True)
    for role in (Role.TENANT_ADMIN, Role.RISK_MANAGER, Role.VIEWER):
        with pytest.raises(PermissionDenied):
            tenants_usage(role, db)
        with pytest.raises(PermissionDenied):
            audit_entries(role, db)


def test_suspend_stops_the_engine_and_sign_in_resume_starts_it(db: str, ray_local: None) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=None)
    identity = sign_up(db, _form(broker="Suspend Me", email="admin@suspend.test"))
    with session_scope(db) as session:
        admin = User(tenant_id=identity.tenant_id, email="ops@platform.test", password_hash="x",
                     role=Role.PLATFORM_ADMIN)
        session.add(admin)
        session.flush()
        admin_id = admin.id
    assert admin_id is not None
    with pytest.raises(PermissionDenied):
        asyncio.run(set_tenant_status(settings, Role.TENANT_ADMIN, identity.user_id, identity.tenant_id,
                                      TenantStatus.SUSPENDED))

    async def scenario() -> tuple[bool, bool]:
        await set_tenant_status(settings, Role.PLATFORM_ADMIN, admin_id, identity.tenant_id,
                                TenantStatus.ACTIVE)
        supervisor = ray.get_actor(supervisor_name(identity.tenant_id), namespace=settings.ray_namespace)
        running = (await supervisor.status.remote())["running"]
        await set_tenant_status(settings, Role.PLATFORM_ADMIN, admin_id, identity.tenant_id,
                                TenantStatus.SUSPENDED)
        stopped = not (await supervisor.status.remote())["running"]
        await supervisor.stop.remote()
        ray.kill(supervisor)
        return running, stopped

    assert asyncio.run(scenario()) == (True, True)
    with session_scope(db) as session, pytest.raises(AuthError, match="suspended"):
        authenticate(session, "admin@suspend.test", "correct horse")
    actions = [(e.action, e.target) for e in audit_entries(Role.PLATFORM_ADMIN, db, action="tenant.")]
    assert actions[:2] == [("tenant.suspend", f"tenant:{identity.tenant_id}"),
                           ("tenant.resume", f"tenant:{identity.tenant_id}")]
    with session_scope(db) as session:
        assert session.exec(select(AuditLog).where(AuditLog.actor_user_id == admin_id)).first() is not None


def test_unknown_tenant_and_status_are_refused_by_name(db: str) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=None)
    with pytest.raises(LookupError, match="tenant"):
        asyncio.run(set_tenant_status(settings, Role.PLATFORM_ADMIN, 1, 999_999, TenantStatus.SUSPENDED))
    with pytest.raises(ValueError, match="status"):
        asyncio.run(set_tenant_status(settings, Role.PLATFORM_ADMIN, 1, 1, TenantStatus.CLOSED))


def test_plan_page_usage_is_the_tenants_own_and_needs_billing_permission(db: str) -> None:
    identity = sign_up(db, _form(broker="Plan Co", email="admin@plan.test", plan="enterprise"))
    mine = tenant_usage(Role.TENANT_ADMIN, db, identity.tenant_id, live_accounts=7)
    assert (mine.name, mine.plan, mine.accounts, mine.max_accounts, mine.max_servers) == (
        "Plan Co", "Enterprise", 7, None, None)
    assert not mine.over_limit
    with pytest.raises(PermissionDenied):
        tenant_usage(Role.RISK_MANAGER, db, identity.tenant_id)
    with pytest.raises(LookupError, match="tenant"):
        tenant_usage(Role.TENANT_ADMIN, db, 999_999)
