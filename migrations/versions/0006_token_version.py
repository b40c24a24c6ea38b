"""Each user's token version, so deactivating a user or changing their role or password ends
their sessions at once (`veles.services.sessions`). Existing users start at 0, the version tokens
issued before this revision are read as.

Revision ID: 0006_token_version
Revises: 0006_prefs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_token_version"
down_revision = "0006_prefs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user", sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("token_version")
