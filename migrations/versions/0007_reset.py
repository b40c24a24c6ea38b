"""Password reset: one row per e-mailed reset link, holding only the SHA-256 of its token.

Revision ID: 0007_reset
Revises: 0005_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0007_reset"
down_revision = "0005_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_password_reset_tenant_id_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_password_reset_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_token_hash")),
    )
    op.create_index(op.f("ix_password_reset_tenant_id"), "password_reset", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_password_reset_user_id"), "password_reset", ["user_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in [*tenant_table_statements("password_reset"),
                          *sequence_statements(["password_reset_id_seq"])]:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("password_reset")
