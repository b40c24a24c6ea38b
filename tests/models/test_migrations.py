"""Migrations build exactly the declared tables, on SQLite and PostgreSQL alike, and only once."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from models.db import MIGRATIONS, LegacySchemaError, alembic_config, get_engine, upgrade

from .conftest import RowFactory


def test_upgrade_builds_the_metadata_and_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    with get_engine(database_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_heads()
        tables = set(inspect(conn).get_table_names())
    assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}


def test_every_tenant_table_has_an_indexed_tenant_id() -> None:
    for table in SQLModel.metadata.tables.values():
        if "tenant_id" in table.c:
            assert any(next(iter(index.columns)).name == "tenant_id" for index in table.indexes), table.name
            assert any(fk.column.table.name == "tenant" for fk in table.c.tenant_id.foreign_keys), table.name


def test_a_schema_made_before_migrations_is_refused(database_url: str) -> None:
    with get_engine(database_url).begin() as conn:
        conn.execute(text("CREATE TABLE tenant (id INTEGER PRIMARY KEY)"))
    with pytest.raises(LegacySchemaError, match="before migrations"):
        upgrade(database_url)


def test_branches_are_merged_into_one_head() -> None:
    """Features may branch from the same revision while they are built, but what lands has one
    head, so the next revision has a single parent to name."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_the_invitations_revision_goes_up_and_down_with_its_row_security(migrated_pg_url: str) -> None:
    """0012_invitations on top of a database already in use: the table comes with RLS forced, its
    two policies and the app role's grants, and goes again on downgrade without touching the rest."""
    def state() -> tuple[bool, bool, list[str], list[str]]:
        with get_engine(migrated_pg_url).connect() as conn:
            found = conn.execute(text(
                "SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                "WHERE c.relname = 'invitation'"
            )).first()
            policies = conn.execute(text(
                "SELECT polname::text FROM pg_policy WHERE polrelid = 'invitation'::regclass ORDER BY 1"
            )).scalars().all() if found else []
            grants = conn.execute(text(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE table_name = 'invitation' AND grantee = 'veles_app' ORDER BY 1")).scalars().all()
        return (bool(found and found[0]), bool(found and found[1]), list(policies), list(grants))

    assert state() == (True, True, ["platform_access", "tenant_isolation"],
                       ["DELETE", "INSERT", "SELECT", "UPDATE"])
    with get_engine(migrated_pg_url).begin() as conn:
        command.downgrade(alembic_config(conn), "0011_alert_seq")
    assert "invitation" not in inspect(get_engine(migrated_pg_url)).get_table_names()
    assert "user" in inspect(get_engine(migrated_pg_url)).get_table_names()
    upgrade(migrated_pg_url)
    assert state() == (True, True, ["platform_access", "tenant_isolation"],
                       ["DELETE", "INSERT", "SELECT", "UPDATE"])


def test_the_rule_label_revision_moves_toxic_flow_labels_out_of_the_symbol_column(
    migrated_pg_url: str,
) -> None:
    """0015_rule_label: a toxic_flow rule stored with its label in `symbol` (how labels were kept
    before) has it in `label` after the upgrade and no symbol; other kinds keep their symbol. The
    downgrade puts it back."""
    engine = get_engine(migrated_pg_url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0014_desk")
    rows = RowFactory()
    with engine.begin() as conn:
        tenant = SQLModel.metadata.tables["tenant"]
        tenant_id = rows.insert(conn, tenant, rows.values(tenant, 0))
        for kind, symbol in [("toxic_flow", "scalper"), ("toxic_flow", None), ("exposure", "EURUSD")]:
            conn.execute(text(
                "INSERT INTO alert_rule (tenant_id, kind, threshold, severity, symbol, enabled, created_at) "
                "VALUES (:tenant, :kind, 5, 'warning', :symbol, true, now())"),
                {"tenant": tenant_id, "kind": kind, "symbol": symbol})

    def stored() -> list[tuple[str, ...]]:
        with engine.connect() as conn:
            labelled = "label" in {c["name"] for c in inspect(conn).get_columns("alert_rule")}
            query = ("SELECT kind, symbol, label FROM alert_rule ORDER BY id" if labelled
                     else "SELECT kind, symbol FROM alert_rule ORDER BY id")
            return [tuple(row) for row in conn.execute(text(query))]

    upgrade(migrated_pg_url)
    assert stored() == [("toxic_flow", None, "scalper"), ("toxic_flow", None, None),
                        ("exposure", "EURUSD", None)]
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0014_desk")
    assert stored() == [("toxic_flow", "scalper"), ("toxic_flow", None), ("exposure", "EURUSD")]
    upgrade(migrated_pg_url)
