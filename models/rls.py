"""PostgreSQL row-level security: the SQL that walls each tenant's rows off from the others.

The database enforces isolation, not only the application: the `veles_app` role that tenant
requests run as (see `models.db.tenant_session`) sees and writes only rows whose `tenant_id`
equals the transaction's `app.tenant_id` setting. An unset setting matches no row, so a code path
that forgets to set it fails closed.

In production the application logs in as `veles_app` itself (no superuser, no BYPASSRLS: the
start-up checks refuse those), so its platform sessions — sign-in starts from an e-mail, the engine
launcher lists every tenant — cannot bypass RLS either: they open it explicitly with the
transaction-local `app.platform = 'on'` (`models.db.session_scope`), matched by a second policy,
`platform_access`. A tenant session never sets it, and an unset setting matches no row.

Migrations call these builders for every table they create with a `tenant_id`;
`tests/models/test_tenant_isolation.py` proves none was missed.
"""

from __future__ import annotations

APP_ROLE = "veles_app"
POLICY = "tenant_isolation"
PLATFORM_POLICY = "platform_access"
CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::int"
PLATFORM_SCOPE = "current_setting('app.platform', true) = 'on'"


def app_role_statements() -> list[str]:
    """Create the application role if missing (roles are cluster-wide, so it may already exist
    from another database) and let the migrating user switch to it with `SET ROLE`."""
    return [
        f"""DO $$ BEGIN
  CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$""",
        f"""DO $$ BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
  END IF;
END $$""",  # noqa: S608  (constants only, no input reaches this SQL)
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
    ]


def tenant_table_statements(table: str, *, key: str = "tenant_id", append_only: bool = False) -> list[str]:
    """Enable and force RLS on `table`, add the isolation policy on column `key` and grant DML.

    FORCE makes the policy bind the table owner too (only superusers and BYPASSRLS roles pass).
    `append_only` grants SELECT and INSERT alone: the audit log cannot be rewritten by the app.
    """
    privileges = "SELECT, INSERT" if append_only else "SELECT, INSERT, UPDATE, DELETE"
    quoted = f'"{table}"'
    return [
        f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY} ON {quoted} USING ({key} = {CURRENT_TENANT}) "
        f"WITH CHECK ({key} = {CURRENT_TENANT})",
        f"GRANT {privileges} ON {quoted} TO {APP_ROLE}",
        *platform_statements(table),
    ]


def platform_statements(table: str) -> list[str]:
    """The policy that lets a platform session (`app.platform = 'on'`) see and write every row of
    `table`; idempotent, so a migration may (re)apply it to tables made before it existed."""
    quoted = f'"{table}"'
    return [
        f"DROP POLICY IF EXISTS {PLATFORM_POLICY} ON {quoted}",
        f"CREATE POLICY {PLATFORM_POLICY} ON {quoted} USING ({PLATFORM_SCOPE}) WITH CHECK ({PLATFORM_SCOPE})",
    ]


def sequence_statements(sequences: list[str]) -> list[str]:
    """Let the app role draw ids for the rows it inserts."""
    return [f'GRANT USAGE, SELECT ON SEQUENCE "{name}" TO {APP_ROLE}' for name in sequences]
