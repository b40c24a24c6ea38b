"""Database fixtures for the data layer: an empty or migrated schema on the real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from models.db import get_engine, upgrade


def reset_schema(url: str) -> None:
    """Drop everything a previous test left, including `alembic_version`, which `drop_all` keeps."""
    with get_engine(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


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
