"""The deal log: every deal the engine applied, for account statements.

Revision ID: 0006_deals
Revises: 0005_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0006_deals"
down_revision = "0005_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("ticket", sa.BigInteger(), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("profit", sa.Float(), nullable=False),
        sa.Column("commission", sa.Float(), nullable=False),
        sa.Column("swap", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_deal_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal")),
        sa.UniqueConstraint("tenant_id", "login", "ticket", name=op.f("uq_deal_tenant_id_login_ticket")),
    )
    op.create_index(op.f("ix_deal_tenant_id"), "deal", ["tenant_id"], unique=False)
    op.create_index("ix_deal_tenant_id_login_executed_at", "deal", ["tenant_id", "login", "executed_at"],
                    unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in [*tenant_table_statements("deal"), *sequence_statements(["deal_id_seq"])]:
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_deal_tenant_id_login_executed_at", table_name="deal")
    op.drop_index(op.f("ix_deal_tenant_id"), table_name="deal")
    op.drop_table("deal")
