"""Join the feature branches that landed in parallel: auth, reports and notifications.

Revision ID: 0005_merge
Revises: 0002_auth, 0003_reports, 0004_notifications
"""

from __future__ import annotations

revision = "0005_merge"
down_revision = ("0002_auth", "0003_reports", "0004_notifications")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the three branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
