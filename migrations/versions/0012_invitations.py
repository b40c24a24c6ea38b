"""Pending invitations: an invited address sets its own password through an e-mailed link, and the
user is made then; the row keeps only the SHA-256 of the link's token. Tenant-owned (row-level
security, platform access for the link's anonymous holder), like the password-reset links.

Revision ID: 0012_invitations
Revises: 0011_alert_seq
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0012_invitations"
down_revision = "0011_alert_seq"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.Enum("platform_admin", "tenant_admin", "risk_manager", "viewer", name="role",
                                  native_enum=False, length=32), nullable=False),
        sa.Column("invited_by", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "invited_by"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_invitation_tenant_id_invited_by_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_invitation_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    op.create_index(op.f("ix_invitation_tenant_id"), "invitation", ["tenant_id"], unique=False)
    op.create_index(op.f("ix_invitation_email"), "invitation", ["email"], unique=False)
    op.create_index(op.f("ix_invitation_invited_by"), "invitation", ["invited_by"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        statements = [*tenant_table_statements("invitation"), *sequence_statements(["invitation_id_seq"])]
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("invitation")
