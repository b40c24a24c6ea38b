"""Acceptance: as the application role, one tenant can neither read, change, delete nor create
another tenant's rows, in EVERY table with a `tenant_id` (enumerated from the metadata, so a new
table is covered the day it is declared). Runs on the real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, UniqueConstraint, func, text
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlmodel import Session, SQLModel, select

from models.db import get_engine, tenant_session
from models.rls import APP_ROLE, PLATFORM_POLICY, POLICY
from models.tenancy import Tenant

from .conftest import RowFactory, TwoTenants, tenant_tables

TABLES = [table.name for table in tenant_tables()]
APPEND_ONLY = {"audit_log"}


def count(url: str, table: Table, tenant_id: int) -> int:
    """Rows of `tenant_id` as the platform connection sees them (it bypasses RLS)."""
    with get_engine(url).connect() as conn:
        return int(conn.execute(select(func.count()).where(table.c.tenant_id == tenant_id)).scalar_one())


def another_row(db: Session, rows: RowFactory, table: Table, tenant_id: int) -> dict[str, Any]:
    """Values for one more row of `table` in `tenant_id`. Where a unique key covers a reference
    (one delivery preference per user), a new parent row of the tenant is made first, so that the
    key is not what refuses the row."""
    values = rows.values(table, tenant_id)
    keys = [set(c.columns.keys()) for c in table.constraints if isinstance(c, UniqueConstraint)]
    for fk in table.foreign_key_constraints:
        refs = set(fk.column_keys) - {"tenant_id"}
        if refs and any(refs <= key for key in keys):
            parent = fk.referred_table
            parent_id = db.execute(parent.insert().values(rows.values(parent, tenant_id))
                                   .returning(parent.c.id)).scalar_one()
            values.update({column: parent_id for column in refs})
    return values


def test_the_list_of_tenant_tables_is_complete() -> None:
    assert set(TABLES) >= {
        "user",
        "mt5_connection",
        "client_account",
        "alert_rule",
        "alert",
        "report",
        "audit_log",
        "risk_history",
    }


@pytest.mark.parametrize("name", TABLES)
def test_tenant_a_cannot_touch_tenant_b_rows(two_tenants: TwoTenants, name: str) -> None:
    url, a, b = two_tenants.url, two_tenants.a, two_tenants.b
    table = SQLModel.metadata.tables[name]

    with tenant_session(url, a) as db:  # reads: only A's own row is visible
        assert db.execute(select(table.c.tenant_id)).scalars().all() == [a]
        assert db.execute(select(table).where(table.c.tenant_id == b)).all() == []

    if name in APPEND_ONLY:
        for statement in (table.update().values(tenant_id=b), table.delete()):
            with pytest.raises(ProgrammingError, match="permission denied"), tenant_session(url, a) as db:
                db.execute(statement)
    else:
        with tenant_session(url, a) as db:
            assert db.execute(table.update().where(table.c.tenant_id == b).values(tenant_id=b)).rowcount == 0
            assert db.execute(table.delete().where(table.c.tenant_id == b)).rowcount == 0
        with pytest.raises(ProgrammingError, match="row-level security"), tenant_session(url, a) as db:
            db.execute(table.update().where(table.c.tenant_id == a).values(tenant_id=b))  # hand a row over

    with pytest.raises(ProgrammingError, match="row-level security"), tenant_session(url, a) as db:
        db.execute(table.insert().values(two_tenants.rows.values(table, b)))

    with tenant_session(url, a) as db:  # the role does work on A's own rows: the denials are not vacuous
        db.execute(table.insert().values(another_row(db, two_tenants.rows, table, a)))
    assert count(url, table, a) == 2
    assert count(url, table, b) == 1


@pytest.mark.parametrize("name", TABLES)
def test_a_row_cannot_point_at_another_tenants_row(two_tenants: TwoTenants, name: str) -> None:
    """RLS does not apply to foreign-key checks, so composite (tenant_id, id) keys do this job."""
    table = SQLModel.metadata.tables[name]
    composite = [fk for fk in table.foreign_key_constraints if len(fk.column_keys) > 1]
    assert all("tenant_id" in fk.column_keys for fk in composite)
    if composite:
        foreign = two_tenants.rows.values(table, two_tenants.a, parents_of=two_tenants.b)
        with (
            pytest.raises(IntegrityError, match="foreign key"),
            tenant_session(two_tenants.url, two_tenants.a) as db,
        ):
            db.execute(table.insert().values(foreign))
    plain = {
        fk.referred_table.name
        for fk in table.foreign_key_constraints
        if fk not in composite and fk.referred_table.name != "tenant"
    }
    # The one exception: the audit actor may be a platform admin of another tenant.
    assert plain == ({"user"} if name == "audit_log" else set()), f"{name} refers to {plain} by plain keys"


def test_rls_is_enabled_and_forced_on_every_tenant_table(migrated_pg_url: str) -> None:
    with get_engine(migrated_pg_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "array_agg(p.polname::text ORDER BY p.polname) FROM pg_class c "
                "LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE c.relname = ANY(:names) "
                "GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity"
            ),
            {"names": [*TABLES, "tenant"]},
        ).all()
        role = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
        ).one()
        owners = conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars()
        assert APP_ROLE not in set(owners)
    # the tenant's own rows, and every row for a platform session (`app.platform`, models.rls)
    policies = sorted([PLATFORM_POLICY, POLICY])
    assert sorted(rows) == sorted((name, True, True, policies) for name in [*TABLES, "tenant"])
    assert tuple(role) == (False, False)


def test_without_a_tenant_nothing_is_visible(two_tenants: TwoTenants) -> None:
    """A code path that forgets the tenant fails closed: the setting is empty, no row matches."""
    with get_engine(two_tenants.url).connect() as conn, conn.begin():
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        for name in TABLES:
            assert (
                conn.execute(select(func.count()).select_from(SQLModel.metadata.tables[name])).scalar_one()
                == 0
            )


def test_a_tenant_sees_only_its_own_tenant_row_and_cannot_change_it(two_tenants: TwoTenants) -> None:
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        assert [t.id for t in db.exec(select(Tenant)).all()] == [two_tenants.a]
    # veles_app may update tenants (its platform sessions suspend them), but the tenant policy is
    # FOR SELECT: a tenant session's UPDATE matches no row, its own included.
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        assert db.execute(text("UPDATE tenant SET name = 'taken over'")).rowcount == 0  # type: ignore[attr-defined]
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        assert db.exec(select(Tenant.name)).one() != "taken over"


def test_the_confinement_survives_an_intermediate_commit(two_tenants: TwoTenants) -> None:
    table = SQLModel.metadata.tables["alert_rule"]
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        db.commit()
        assert db.execute(text("SELECT current_user")).scalar_one() == APP_ROLE
        assert db.execute(select(table.c.tenant_id)).scalars().all() == [two_tenants.a]


def test_the_pooled_connection_comes_back_clean(two_tenants: TwoTenants) -> None:
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        db.execute(text("SELECT 1"))
    with get_engine(two_tenants.url).connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() != APP_ROLE
        assert conn.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar_one() in (None, "")


def test_errors_are_database_errors_not_silent(two_tenants: TwoTenants) -> None:
    """Denials raise (the app sees them); they never turn into an empty success."""
    table = SQLModel.metadata.tables["audit_log"]
    with pytest.raises(DBAPIError), tenant_session(two_tenants.url, two_tenants.a) as db:
        db.execute(table.delete())
