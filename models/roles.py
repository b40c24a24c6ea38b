"""The application's own database login: `veles_app`, under row-level security.

The migrations create `veles_app` without LOGIN (roles are cluster-wide, and a role that can log in
needs a password the schema should not hold). `enable_app_login` gives it LOGIN with a password
and lets it connect to the database; it runs as the schema's owner (who must be allowed to alter
roles: a superuser, or a CREATEROLE role that was granted veles_app), after the migrations.
"""

from __future__ import annotations

from psycopg import sql
from sqlalchemy.engine import make_url

from models.db import get_engine
from models.rls import APP_ROLE


class RolesError(RuntimeError):
    """The roles cannot be set up on this database (not PostgreSQL, or no password given)."""


def enable_app_login(owner_url: str, password: str, role: str = APP_ROLE) -> None:
    """Let `role` log in with `password` and connect to the database of `owner_url`; idempotent
    (running it again sets the password again). The role itself comes from the migrations."""
    if make_url(owner_url).get_backend_name() != "postgresql":
        raise RolesError("database roles exist on PostgreSQL only; SQLite has no roles")
    if not password:
        raise RolesError("set APP_DATABASE_PASSWORD: the password veles_app logs in with")
    with get_engine(owner_url).begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            # ALTER ROLE takes no bind parameters: the password goes in as a quoted literal.
            cursor.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)))
            cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(str(make_url(owner_url).database)), sql.Identifier(role)))


def app_url(owner_url: str, password: str, role: str = APP_ROLE) -> str:
    """`owner_url` with `role` and `password` as the login: what the app's DATABASE_URL should be."""
    return make_url(owner_url).set(username=role, password=password).render_as_string(hide_password=False)
