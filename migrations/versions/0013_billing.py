"""Billing with Stripe: the tenant's billing status, chosen plan, subscription state and dunning
clock, and the ledger of Stripe events already applied (a platform table: webhooks are applied by
the platform connection; no tenant reads it).

Revision ID: 0013_billing
Revises: 0012_invitations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import APP_ROLE, platform_statements

revision = "0013_billing"
down_revision = "0012_invitations"
branch_labels = None
depends_on = None

BILLING_STATUS = ("trialing", "active", "past_due", "read_only", "suspended")
PLANS = ("starter", "professional", "enterprise")


def upgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.add_column(sa.Column("billing_status", sa.Enum(*BILLING_STATUS, name="billingstatus",
                                                             native_enum=False, length=32),
                                   nullable=False, server_default="active"))
        batch.add_column(sa.Column("plan_chosen", sa.Enum(*PLANS, name="plan", native_enum=False, length=32),
                                   nullable=True))
        batch.add_column(sa.Column("subscription_status", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("subscription_event_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lapsed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "billing_event",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_ref", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_event")),
    )
    op.create_index(op.f("ix_billing_event_tenant_ref"), "billing_event", ["tenant_ref"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for statement in ['ALTER TABLE "billing_event" ENABLE ROW LEVEL SECURITY',
                          'ALTER TABLE "billing_event" FORCE ROW LEVEL SECURITY',
                          *platform_statements("billing_event"),
                          f'GRANT SELECT, INSERT ON "billing_event" TO {APP_ROLE}']:
            op.execute(statement)


def downgrade() -> None:
    op.drop_index(op.f("ix_billing_event_tenant_ref"), table_name="billing_event")
    op.drop_table("billing_event")
    with op.batch_alter_table("tenant") as batch:
        for column in ("lapsed_at", "current_period_end", "subscription_event_at", "subscription_status",
                       "plan_chosen", "billing_status"):
            batch.drop_column(column)
