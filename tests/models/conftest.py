"""Database fixtures for the data layer: an empty or migrated schema on the real PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Column, Connection, Table, text
from sqlmodel import SQLModel

from models.db import get_engine, upgrade
from veles.services.sessions import forget_versions


def reset_schema(url: str) -> None:
    """Drop everything a previous test left, including `alembic_version`, which `drop_all` keeps."""
    with get_engine(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        forget_versions()  # user ids start again: cached versions are someone else's


@pytest.fixture
def empty_pg_url(pg_url: str) -> str:
    """The test database with an empty `public` schema."""
    reset_schema(pg_url)
    return pg_url


@pytest.fixture
def migrated_pg_url(empty_pg_url: str) -> str:
    """The test database migrated to head, with RLS and the `veles_app` role."""
    upgrade(empty_pg_url)
    return empty_pg_url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the application supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'veles.db'}"
    return str(request.getfixturevalue("empty_pg_url"))


class RowFactory:
    """Builds a valid row for any table from its column types, so a table added later gets rows
    (and isolation tests) without anyone writing a factory for it.

    Foreign keys point at the row made earlier for the same table and tenant: `make` must be called
    in `SQLModel.metadata.sorted_tables` order, which `seed_tenant` does.
    """

    def __init__(self) -> None:
        self.serial = 0
        self.ids: dict[tuple[str, int], int] = {}

    def values(self, table: Table, tenant_id: int, parents_of: int | None = None) -> dict[str, Any]:
        """Column values for a new row of `tenant_id`; foreign keys go to the rows of tenant
        `parents_of` (default: the same tenant)."""
        self.serial += 1
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.primary_key:
                continue
            if column.name == "tenant_id":
                row[column.name] = tenant_id
            elif column.foreign_keys:
                parent = next(iter(column.foreign_keys)).column.table.name
                row[column.name] = self.ids[(parent, parents_of or tenant_id)]
            else:
                row[column.name] = self.value(column)
        return row

    def value(self, column: Column[Any]) -> Any:
        kind = column.type
        if isinstance(kind, sa.TypeDecorator):  # e.g. SQLModel's AutoString
            kind = kind.impl_instance
        if isinstance(kind, sa.Enum):
            return kind.enums[0]
        if isinstance(kind, sa.Boolean):
            return True
        if isinstance(kind, sa.Integer):
            return 1000 + self.serial
        if isinstance(kind, sa.Float):
            return 1.5 * self.serial
        if isinstance(kind, sa.DateTime):
            return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=self.serial)
        if isinstance(kind, sa.Date):
            return date(2026, 1, 1) + timedelta(days=self.serial)
        if isinstance(kind, sa.JSON):
            return {"serial": self.serial}
        if isinstance(kind, sa.LargeBinary):
            return f"blob-{self.serial}".encode()
        if isinstance(kind, sa.String):
            text_value = f"{column.name}-{self.serial}"
            return text_value[: kind.length] if kind.length else text_value
        raise TypeError(f"no generated value for {column} of type {kind!r}: teach RowFactory.value")

    @staticmethod
    def insert(conn: Connection, table: Table, values: dict[str, Any]) -> int:
        return int(conn.execute(table.insert().values(values).returning(table.c.id)).scalar_one())

    def seed_tenant(self, conn: Connection) -> int:
        """A tenant with one row in every table that has a `tenant_id`."""
        tenant = SQLModel.metadata.tables["tenant"]
        tenant_id = self.insert(conn, tenant, self.values(tenant, 0))
        self.ids[("tenant", tenant_id)] = tenant_id
        for table in tenant_tables():
            self.ids[(table.name, tenant_id)] = self.insert(conn, table, self.values(table, tenant_id))
        return tenant_id


def tenant_tables() -> list[Table]:
    """Every table owned by a tenant, parents first: read from the metadata so none is forgotten."""
    return [table for table in SQLModel.metadata.sorted_tables if "tenant_id" in table.c]


@dataclass
class TwoTenants:
    """A migrated PostgreSQL database where tenants `a` and `b` each own one row of every table."""

    url: str
    a: int
    b: int
    rows: RowFactory


@pytest.fixture
def two_tenants(migrated_pg_url: str) -> TwoTenants:
    rows = RowFactory()
    with get_engine(migrated_pg_url).begin() as conn:
        a, b = rows.seed_tenant(conn), rows.seed_tenant(conn)
    return TwoTenants(migrated_pg_url, a, b, rows)
