"""The client behind each account (issue 18): name and country as the MT5 user record has them,
for the accounts list. Existing rows get empty strings until their connection is next admitted.

Revision ID: 0016_account_client
Revises: 0015_rule_label
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_account_client"
down_revision = "0015_rule_label"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("client_account", sa.Column("name", sa.String(length=128), nullable=False,
                                              server_default=""))
    op.add_column("client_account", sa.Column("country", sa.String(length=64), nullable=False,
                                              server_default=""))


def downgrade() -> None:
    op.drop_column("client_account", "country")
    op.drop_column("client_account", "name")
