"""Alembic environment: the tables are `SQLModel.metadata` as the `models` package declares them.

`models.db.upgrade` hands over an open connection in `config.attributes["connection"]`; the
`alembic` command line (`alembic -c migrations/alembic.ini ...`) instead gives a URL through
`-x url=...` or the DATABASE_URL environment variable.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    """Batch mode on SQLite, whose ALTER TABLE cannot change columns or constraints in place."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Use the caller's connection when there is one, else open one from the URL."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ["DATABASE_URL"]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run_migrations(conn)
    finally:
        engine.dispose()


main()
