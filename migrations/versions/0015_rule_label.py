"""A toxic_flow alert rule's label gets its own column. Until now the label a toxic_flow rule
watches was kept in the rule's `symbol` column (a toxic_flow rule has no symbol); existing rows are
moved over: their symbol becomes their label and the symbol is cleared. A value that is not a known
label moves too, so the rule stays listed as "not evaluated" with the reason, rather than lost.

Revision ID: 0015_rule_label
Revises: 0014_desk
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_rule_label"
down_revision = "0014_desk"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rule") as batch:
        batch.add_column(sa.Column("label", sa.String(length=32), nullable=True))
    op.execute("UPDATE alert_rule SET label = symbol, symbol = NULL "
               "WHERE kind = 'toxic_flow' AND symbol IS NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE alert_rule SET symbol = label WHERE kind = 'toxic_flow' AND label IS NOT NULL")
    with op.batch_alter_table("alert_rule") as batch:
        batch.drop_column("label")
