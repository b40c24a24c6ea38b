"""The procedure in docs/backup.md, run for real: dump, drop the database, restore, compare."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from models.db import get_engine, tenant_session, upgrade

from .conftest import TwoTenants


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, as the platform connection sees them."""
    with get_engine(url).connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for name, table in SQLModel.metadata.tables.items()
        }


def seed_platform_tables(two_tenants: TwoTenants) -> None:
    """Two rows in every table no tenant owns (e.g. the sign-in throttle), so the backup is shown to
    bring those back too; read from the metadata, so a table added later is covered."""
    tables = SQLModel.metadata.tables
    platform = [t for name, t in tables.items() if name != "tenant" and "tenant_id" not in t.c]
    with get_engine(two_tenants.url).begin() as conn:
        for table in platform:
            for _ in range(2):
                two_tenants.rows.serial += 1  # value() numbers its output by the serial
                row = {c.name: two_tenants.rows.value(c) for c in table.columns}
                conn.execute(table.insert().values(row))


def test_dump_drop_restore_gives_back_every_row_and_the_row_security(
    two_tenants: TwoTenants, tmp_path: Path
) -> None:
    url = make_url(two_tenants.url)
    connect = ["-h", str(url.host), "-p", str(url.port or 5432), "-U", str(url.username)]
    seed_platform_tables(two_tenants)
    before = snapshot(two_tenants.url)
    assert all(len(rows) >= 2 for name, rows in before.items() if name != "tenant")

    dump = tmp_path / "veles.dump"
    subprocess.run(["pg_dump", *connect, "-Fc", "-d", str(url.database), "-f", str(dump)], check=True)
    get_engine(two_tenants.url).dispose()
    admin = f"postgresql://{url.username}@{url.host}:{url.port or 5432}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{url.database}"')
    assert inspect(get_engine(two_tenants.url)).get_table_names() == []
    subprocess.run(
        [
            "pg_restore",
            *connect,
            "--exit-on-error",
            "--single-transaction",
            "-d",
            str(url.database),
            str(dump),
        ],
        check=True,
    )

    assert snapshot(two_tenants.url) == before
    upgrade(two_tenants.url)  # the migration history came back too: nothing to do
    alerts = SQLModel.metadata.tables["alert"]
    with tenant_session(two_tenants.url, two_tenants.a) as db:
        assert db.execute(select(alerts.c.tenant_id)).scalars().all() == [two_tenants.a]

