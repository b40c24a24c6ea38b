"""Production's database login: the app connects as `veles_app` itself, not as a superuser that
switches role with `SET LOCAL ROLE`. As that login, nothing it sends can leave row-level security:
it is no superuser and has no BYPASSRLS, cannot switch to another role, and a transaction that
sets neither `app.tenant_id` nor `app.platform` sees no row. Its platform sessions still sign in
by e-mail across tenants, and its tenant sessions still see only their tenant.

(Roles are cluster-wide: every test database of this PostgreSQL shares `veles_app`, and it logs in
here under trust authentication, so the password only has to be set, not matched.)"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, text, update
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlmodel import SQLModel, col, select
from typer.testing import CliRunner

from models.db import get_engine, session_scope, tenant_session
from models.rls import APP_ROLE
from models.roles import RolesError, app_url, enable_app_login
from models.tenancy import Tenant, User
from veles.cli import app
from veles.config import Settings, get_settings
from veles.services.preflight import check_database_role

from .conftest import TwoTenants, tenant_tables

pytestmark = [pytest.mark.postgres]
PASSWORD = "veles-app-test-password"


@pytest.fixture
def app_login(two_tenants: TwoTenants) -> str:
    enable_app_login(two_tenants.url, PASSWORD)
    return app_url(two_tenants.url, PASSWORD)


def _rows(url: str, statement: Any) -> list[Any]:
    with get_engine(url).connect() as conn:
        return list(conn.execute(statement).all())


def test_the_app_logs_in_as_veles_app_which_cannot_bypass_rls(app_login: str) -> None:
    assert _rows(app_login, text("SELECT current_user, session_user")) == [(APP_ROLE, APP_ROLE)]
    attributes = text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
    assert _rows(app_login, attributes) == [(False, False)]
    assert check_database_role(Settings(_env_file=None, database_url=app_login)).ok
    with get_engine(app_login).connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("SET ROLE postgres"))


def test_without_a_scope_the_app_login_sees_no_row(app_login: str, two_tenants: TwoTenants) -> None:
    for table in [SQLModel.metadata.tables["tenant"], *tenant_tables()]:
        assert _rows(app_login, select(func.count()).select_from(table)) == [(0,)], table.name
    with get_engine(app_login).connect() as conn, pytest.raises(DBAPIError, match="row-level security"):
        conn.execute(SQLModel.metadata.tables["tenant"].insert().values(name="sneaked in"))


def test_tenant_sessions_see_their_tenant_only_without_set_role(app_login: str,
                                                                 two_tenants: TwoTenants) -> None:
    a, b = two_tenants.a, two_tenants.b
    with tenant_session(app_login, a) as db:
        assert db.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
        assert db.exec(select(User.tenant_id)).all() == [a]
        assert db.exec(select(Tenant.id)).all() == [a]
        renaming = update(Tenant).where(col(Tenant.id) == a).values(name="renamed by a tenant session")
        assert db.execute(renaming).rowcount == 0  # type: ignore[attr-defined]  # its own row is read-only
    with session_scope(two_tenants.url) as db:
        renamed = db.get(Tenant, a)
        assert renamed is not None
        assert renamed.name != "renamed by a tenant session"
    with tenant_session(app_login, b) as db:
        assert db.exec(select(User.tenant_id)).all() == [b]


def test_platform_sessions_see_every_tenant_and_create_tenants(app_login: str,
                                                               two_tenants: TwoTenants) -> None:
    with session_scope(app_login) as db:
        assert sorted(db.exec(select(User.tenant_id)).all()) == sorted([two_tenants.a, two_tenants.b])
        tenant = Tenant(name="Signed up as veles_app")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        db.add(User(tenant_id=tenant.id, email="new@veles-app.test", password_hash="x"))
    with tenant_session(app_login, two_tenants.a) as db:  # the platform flag did not stay on the connection
        assert db.exec(select(User.tenant_id)).all() == [two_tenants.a]


def test_create_roles_command_and_its_refusals(two_tenants: TwoTenants, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", two_tenants.url)
    monkeypatch.setenv("APP_DATABASE_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "create-roles"])
        assert result.exit_code == 0, result.output
        assert _rows(app_url(two_tenants.url, PASSWORD), text("SELECT current_user")) == [(APP_ROLE,)]
        monkeypatch.delenv("APP_DATABASE_PASSWORD")
        get_settings.cache_clear()
        refused = CliRunner().invoke(app, ["db", "create-roles"])
        assert refused.exit_code == 2
        assert "set APP_DATABASE_PASSWORD" in refused.output
    finally:
        get_settings.cache_clear()
    with pytest.raises(RolesError, match="PostgreSQL only"):
        enable_app_login(f"sqlite:///{tmp_path / 'x.db'}", PASSWORD)


def test_sign_in_works_as_veles_app(app_login: str, two_tenants: TwoTenants) -> None:
    """The whole sign-in (user by e-mail across tenants, the throttle, refresh token, audit) as the
    production login."""
    from veles.services.auth import AuthError, Tokens, hash_password, sign_in

    settings = Settings(_env_file=None, database_url=app_login, redis_url=None)
    password = "Quartz-lantern-58-meadow"
    with session_scope(app_login) as db:
        db.add(User(tenant_id=two_tenants.b, email="signs-in@veles-app.test",
                    password_hash=hash_password(password)))
    with session_scope(app_login) as db, pytest.raises(AuthError):
        sign_in(db, settings, "signs-in@veles-app.test", "wrong password", ip="192.0.2.1")
    with session_scope(app_login) as db:
        tokens = sign_in(db, settings, "signs-in@veles-app.test", password, ip="192.0.2.1")
    assert isinstance(tokens, Tokens)
    assert tokens.identity.tenant_id == two_tenants.b
