"""The dealer's desk (issue 18): stress scenarios saved per tenant, and the daily closes the
engine keeps from live feeds for VaR. Both tenant-owned, with row-level security.

Revision ID: 0014_desk
Revises: 0013_billing
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0014_desk"
down_revision = "0013_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stress_scenario",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("scenario", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "created_by"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_stress_scenario_tenant_id_created_by_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_stress_scenario_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stress_scenario")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_stress_scenario_tenant_id_name")),
    )
    op.create_index(op.f("ix_stress_scenario_tenant_id"), "stress_scenario", ["tenant_id"], unique=False)
    op.create_table(
        "daily_close",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_daily_close_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_close")),
        sa.UniqueConstraint("tenant_id", "symbol", "day", name=op.f("uq_daily_close_tenant_id_symbol_day")),
    )
    op.create_index(op.f("ix_daily_close_tenant_id"), "daily_close", ["tenant_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        statements = [
            *tenant_table_statements("stress_scenario"),
            *tenant_table_statements("daily_close"),
            *sequence_statements(["stress_scenario_id_seq", "daily_close_id_seq"]),
        ]
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("daily_close")
    op.drop_table("stress_scenario")
