"""Sign-in hardening: the per-(e-mail, IP) failure throttle that replaces account lockout, e-mail
verification links for self-service sign-ups, trials, and temporary passwords that expire.

Revision ID: 0009_sec_auth
Revises: 0008_merge
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.rls import sequence_statements, tenant_table_statements

revision = "0009_sec_auth"
down_revision = "0008_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_sign_in_throttle")),
    )
    op.create_index(op.f("ix_sign_in_throttle_last_failure_at"), "sign_in_throttle", ["last_failure_at"],
                    unique=False)
    op.create_table(
        "email_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "user_id"], ["user.tenant_id", "user.id"],
                                name=op.f("fk_email_verification_tenant_id_user_id_user")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"],
                                name=op.f("fk_email_verification_tenant_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_verification")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_email_verification_token_hash")),
    )
    op.create_index(op.f("ix_email_verification_tenant_id"), "email_verification", ["tenant_id"],
                    unique=False)
    op.create_index(op.f("ix_email_verification_user_id"), "email_verification", ["user_id"], unique=False)
    with op.batch_alter_table("tenant") as batch:
        batch.add_column(sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("password_expires_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for statement in [*tenant_table_statements("email_verification"),
                          *sequence_statements(["email_verification_id_seq"])]:
            op.execute(statement)
        # The throttle is read before anyone is known (no tenant): no row-level security, only hashes.
        op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON sign_in_throttle TO veles_app")


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("password_expires_at")
        batch.drop_column("must_change_password")
        batch.drop_column("email_verified_at")
    with op.batch_alter_table("tenant") as batch:
        batch.drop_column("trial_ends_at")
    op.drop_table("email_verification")
    op.drop_table("sign_in_throttle")
