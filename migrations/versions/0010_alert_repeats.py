"""Alerts fold repeats: the engine rule that raised each alert (built-in ones were found by the
"(rule id)" their message ended with, which messages no longer carry), how many raises the
cool-down folded into it, and the latest of them.

Revision ID: 0010_alert_repeats
Revises: 0009_sec_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_alert_repeats"
down_revision = "0009_sec_auth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("engine_rule", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_raised_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("last_raised_at")
        batch.drop_column("repeats")
        batch.drop_column("engine_rule")
