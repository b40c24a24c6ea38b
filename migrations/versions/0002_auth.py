"""Auth: refresh tokens, SMS sign-in challenges, and per-user lockout columns.

Revision ID: 0002_auth
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0002_auth"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ["refresh_token", "login_challenge"]


def _user_key(table: str) -> sa.ForeignKeyConstraint:
    """The composite key that keeps a row's user inside the row's own tenant."""
    name = op.f(f"fk_{table}_tenant_id_user_id_user")
    return sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"], name=name)


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "refresh_token",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        _user_key("refresh_token"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_refresh_token_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(op.f("ix_refresh_token_family"), "refresh_token", ["family"], unique=False)
    op.create_index(op.f("ix_refresh_token_tenant_id"), "refresh_token", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_refresh_token_user_id"), "refresh_token", ["user_id"], unique=False)

    op.create_table(
        "login_challenge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _user_key("login_challenge"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name=op.f("fk_login_challenge_tenant_id_tenant")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_challenge")),
        sa.UniqueConstraint("challenge_hash", name=op.f("uq_login_challenge_challenge_hash")),
    )
    op.create_index(op.f("ix_login_challenge_tenant_id"), "login_challenge", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_login_challenge_user_id"), "login_challenge", ["user_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        statements = [s for table in TABLES for s in tenant_table_statements(table)]
        for statement in [*statements, *sequence_statements([f"{table}_id_seq" for table in TABLES])]:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("login_challenge")
    op.drop_table("refresh_token")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
