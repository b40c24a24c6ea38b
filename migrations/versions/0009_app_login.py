"""The application logs in as veles_app: platform sessions open RLS with `app.platform`.

Until now the app connected as a superuser (or BYPASSRLS owner) and switched to `veles_app` with
`SET LOCAL ROLE` for tenant work only. Now every table gets a `platform_access` policy for
transactions that set `app.platform = 'on'` (the platform session does, a tenant session never),
and `veles_app` may create and change tenants and draw their ids, so DATABASE_URL can name
`veles_app` itself (`veles db create-roles` lets it log in). A tenant session still reads only its
own tenant row and cannot change it.

Revision ID: 0009_app_login
Revises: 0010_alert_repeats
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from models.rls import APP_ROLE, CURRENT_TENANT, PLATFORM_POLICY, POLICY, platform_statements

revision = "0009_app_login"
down_revision = "0010_alert_repeats"
branch_labels = None
depends_on = None


def _policy_tables() -> list[str]:
    rows = op.get_bind().execute(text(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = :policy"
    ), {"policy": POLICY})
    return sorted(str(row[0]) for row in rows)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no roles and no RLS
    statements = [s for table in _policy_tables() for s in platform_statements(table)]
    statements += [
        f"DROP POLICY {POLICY} ON tenant",
        f"CREATE POLICY {POLICY} ON tenant FOR SELECT USING (id = {CURRENT_TENANT})",
        f"GRANT SELECT, INSERT, UPDATE ON tenant TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON SEQUENCE tenant_id_seq TO {APP_ROLE}",
    ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    statements = [f'DROP POLICY IF EXISTS {PLATFORM_POLICY} ON "{table}"' for table in _policy_tables()]
    statements += [
        f"DROP POLICY {POLICY} ON tenant",
        f"CREATE POLICY {POLICY} ON tenant USING (id = {CURRENT_TENANT}) WITH CHECK (id = {CURRENT_TENANT})",
        f"REVOKE INSERT, UPDATE ON tenant FROM {APP_ROLE}",
        f"REVOKE USAGE, SELECT ON SEQUENCE tenant_id_seq FROM {APP_ROLE}",  # noqa: S608 (constants only)
    ]
    for statement in statements:
        op.execute(statement)
