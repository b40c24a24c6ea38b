"""Notifications: each user's alert delivery preferences and the record of every delivery.

Revision ID: 0004_notifications
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0004_notifications"
down_revision = "0001"
branch_labels = None
depends_on = None


def _enum(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "delivery_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("critical_overrides_quiet", sa.Boolean(), nullable=False),
        sa.Column("digest_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_delivery_preference_tenant_id_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_delivery_preference_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_preference")),
    )
    op.create_index(op.f("ix_delivery_preference_tenant_id"), "delivery_preference", ["tenant_id"],
                    unique=False)
    op.create_index("ix_delivery_preference_tenant_id_user_id", "delivery_preference",
                    ["tenant_id", "user_id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", _enum("portal", "email", "sms", name="channel"), nullable=False),
        sa.Column("alert_key", sa.String(length=200), nullable=False),
        sa.Column("severity", _enum("info", "warning", "critical", name="severity"), nullable=False),
        sa.Column("status", _enum("sent", "failed", "suppressed", name="deliverystatus"), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("alerts", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_delivery_tenant_id_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_delivery_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("tenant_id", "user_id", "channel", "alert_key",
                            name=op.f("uq_delivery_tenant_id_user_id_channel_alert_key")),
    )
    op.create_index(op.f("ix_delivery_tenant_id"), "delivery", ["tenant_id"], unique=False)
    op.create_index("ix_delivery_tenant_id_user_id_created_at", "delivery",
                    ["tenant_id", "user_id", "created_at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        tables = ["delivery_preference", "delivery"]
        statements = [s for table in tables for s in tenant_table_statements(table)]
        for statement in [*statements, *sequence_statements([f"{table}_id_seq" for table in tables])]:
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_delivery_tenant_id_user_id_created_at", table_name="delivery")
    op.drop_index(op.f("ix_delivery_tenant_id"), table_name="delivery")
    op.drop_table("delivery")
    op.drop_index("ix_delivery_preference_tenant_id_user_id", table_name="delivery_preference")
    op.drop_index(op.f("ix_delivery_preference_tenant_id"), table_name="delivery_preference")
    op.drop_table("delivery_preference")
