"""When each user's phone number was proven theirs (an SMS code sent to it was entered), so alert
preferences may choose SMS only for a number that reaches its owner.

Revision ID: 0006_phone_verified
Revises: 0006_token_version
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_phone_verified"
down_revision = "0006_token_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("user", sa.Column("phone_verified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("phone_verified_at")
