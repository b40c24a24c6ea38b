"""Alerts are numbered and escalated: each engine event on a tenant's alerts (raise, repeat, clear)
takes the next number of the tenant's `alert_seq` counter, and the row keeps its latest; the first
raise's engine time; when an unacknowledged critical alert was escalated; each tenant's escalation
delay; each user's read mark and desktop-notification opt-in.

Revision ID: 0011_alert_seq
Revises: 0010_platform_tenant
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0011_alert_seq"
down_revision = "0010_platform_tenant"
branch_labels = None
depends_on = None

_TABLES = ("tenant_counter", "escalation_policy", "alert_reader")


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("first_msc", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_alert_tenant_id_seq", ["tenant_id", "seq"])

    op.create_table(
        "tenant_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_tenant_counter_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_counter")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_tenant_counter_tenant_id_name")),
    )
    op.create_index(op.f("ix_tenant_counter_tenant_id"), "tenant_counter", ["tenant_id"], unique=False)

    op.create_table(
        "escalation_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("after_minutes", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_escalation_policy_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policy")),
    )
    op.create_index(op.f("ix_escalation_policy_tenant_id"), "escalation_policy", ["tenant_id"], unique=False)

    op.create_table(
        "alert_reader",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False),
        sa.Column("desktop_notifications", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_alert_reader_tenant_id_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_alert_reader_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_reader")),
        sa.UniqueConstraint("tenant_id", "user_id", name=op.f("uq_alert_reader_tenant_id_user_id")),
    )
    op.create_index(op.f("ix_alert_reader_tenant_id"), "alert_reader", ["tenant_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        statements = [s for table in _TABLES for s in tenant_table_statements(table)]
        for statement in [*statements, *sequence_statements([f"{table}_id_seq" for table in _TABLES])]:
            op.execute(statement)


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_index(op.f(f"ix_{table}_tenant_id"), table_name=table)
        op.drop_table(table)
    with op.batch_alter_table("alert") as batch:
        batch.drop_constraint("uq_alert_tenant_id_seq", type_="unique")
        batch.drop_column("escalated_at")
        batch.drop_column("first_msc")
        batch.drop_column("seq")
