"""The database engine and sessions, for SQLite (embedded default) and PostgreSQL alike.

Two kinds of session:
- `session_scope(url)`: the platform session. It serves sign-in, the engine launcher and the
  admin pages, which must see across tenants; on PostgreSQL each of its transactions sets
  `app.platform = 'on'`, which the `platform_access` policies match (`models.rls`).
- `tenant_session(url, tenant_id)`: everything done on behalf of one tenant. On PostgreSQL it
  runs under row-level security as the `veles_app` role with `app.tenant_id` set, so a missing
  `WHERE tenant_id = ...` in application code cannot leak another broker's rows. SQLite has no
  RLS: there the application's own tenant filters are the only wall.

In production DATABASE_URL logs in as `veles_app` itself (`veles db create-roles`), a role with
neither SUPERUSER nor BYPASSRLS, so no statement the app sends can switch row-level security off or
become another role (the start-up checks refuse a login that could). Migrations run as the
schema's owner. Tests and development may log in as a superuser: tenant sessions then
`SET LOCAL ROLE veles_app` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, create_engine

import models  # noqa: F401  (registers every table on SQLModel.metadata)
from models.rls import APP_ROLE

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per URL for the life of the process.

    `pool_pre_ping` makes a connection dropped by a database restart reconnect on next use
    instead of failing the request that draws it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(url, pool_pre_ping=True)


class LegacySchemaError(RuntimeError):
    """The database holds tables made before migrations existed (by `create_all`)."""


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration without an ini file, running on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(url: str) -> None:
    """Migrate the schema to the newest revisions (`alembic upgrade heads`); leaves data alone and
    does nothing when already there. `heads`, not `head`: features that land in parallel each add a
    revision on the same parent, and a merge revision joins them later."""
    with get_engine(url).begin() as connection:
        tables = set(inspect(connection).get_table_names())
        if "tenant" in tables and "alembic_version" not in tables:
            raise LegacySchemaError(
                f"{make_url(url).render_as_string(hide_password=True)} was created before migrations; "
                "dump what you need (docs/backup.md), then recreate the database (the demo SQLite "
                "file can simply be deleted) and run `veles db upgrade`."
            )
        command.upgrade(alembic_config(connection), "heads")


@contextmanager
def _committing(session: Session) -> Iterator[Session]:
    """Use a session for one unit of work: commit on success, roll back on error, then close."""
    with session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A platform session (sees every tenant) that commits on success and rolls back on error.
    On PostgreSQL every transaction of it sets `app.platform = 'on'` (transaction-local, so the
    pooled connection goes back without it)."""
    session = Session(get_engine(url))
    if session.get_bind().dialect.name == "postgresql":

        @event.listens_for(session, "after_begin")
        def open_platform(_session: Session, _transaction: SessionTransaction,
                          connection: Connection) -> None:
            connection.execute(text("SELECT set_config('app.platform', 'on', true)"))

    with _committing(session):
        yield session


def logs_in_as(url: str, role: str) -> bool:
    """Whether `url` connects as `role` itself (then no `SET ROLE` is needed to become it)."""
    return make_url(url).username == role


@contextmanager
def tenant_session(url: str, tenant_id: int, role: str | None = APP_ROLE) -> Iterator[Session]:
    """A session confined to one tenant; commits on success, rolls back on error.

    On PostgreSQL every transaction of the session (also those after an intermediate `commit`)
    starts with `SET LOCAL ROLE <role>` and `app.tenant_id = tenant_id`, both transaction-local
    so the pooled connection goes back clean. `role=None` when DATABASE_URL already logs in as
    the application role; it is skipped too when the URL's user is `role` (production).
    """
    session = Session(get_engine(url))
    if session.get_bind().dialect.name == "postgresql":
        switch = role is not None and not logs_in_as(url, role)

        @event.listens_for(session, "after_begin")
        def confine(_session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
            if switch:
                connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')
            connection.execute(text("SELECT set_config('app.tenant_id', :id, true)"), {"id": str(tenant_id)})

    with _committing(session):
        yield session
