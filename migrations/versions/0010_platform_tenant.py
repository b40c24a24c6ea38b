"""Mark the operator's own tenant: platform admins belong to it, and it is no broker.

`veles admin create-platform-admin` puts platform admins in one tenant with `is_platform` set, so
they have no broker's book as their own; the engine launcher and the admin page's broker list skip
it. Existing tenants are brokers (false).

Revision ID: 0010_platform_tenant
Revises: 0009_app_login
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_platform_tenant"
down_revision = "0009_app_login"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenant", sa.Column("is_platform", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.drop_column("is_platform")
