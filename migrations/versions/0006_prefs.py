"""Alert-delivery preferences: at most one row per user.

`veles.services.delivery.save_preferences` updates a user's row in place, but two concurrent saves
of a user without one could each insert a row; the unique key makes the second fail instead. Rows
that already doubled up are reduced to the newest (the one readers used).

Revision ID: 0006_prefs
Revises: 0005_merge
"""

from __future__ import annotations

from alembic import op

revision = "0006_prefs"
down_revision = "0005_merge"
branch_labels = None
depends_on = None

_INDEX = "ix_delivery_preference_tenant_id_user_id"
_UNIQUE = "uq_delivery_preference_tenant_id_user_id"


def upgrade() -> None:
    op.execute(
        "DELETE FROM delivery_preference WHERE id NOT IN "
        "(SELECT MAX(id) FROM delivery_preference GROUP BY tenant_id, user_id)"
    )
    # Batch mode: SQLite cannot add a constraint to a table, so there the table is copied; on
    # PostgreSQL these are plain ALTER TABLE statements and row-level security stays as it is.
    with op.batch_alter_table("delivery_preference") as batch:
        batch.drop_index(_INDEX)
        batch.create_unique_constraint(_UNIQUE, ["tenant_id", "user_id"])


def downgrade() -> None:
    with op.batch_alter_table("delivery_preference") as batch:
        batch.drop_constraint(_UNIQUE, type_="unique")
        batch.create_index(_INDEX, ["tenant_id", "user_id"], unique=False)
