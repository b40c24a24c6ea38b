"""Join the branches that landed in parallel: deals for statements, user sessions and phone
verification (with delivery preferences under them), and password reset.

Revision ID: 0008_merge
Revises: 0006_deals, 0006_phone_verified, 0007_reset
"""

from __future__ import annotations

revision = "0008_merge"
down_revision = ("0006_deals", "0006_phone_verified", "0007_reset")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the three branches touch different tables."""


def downgrade() -> None:
    """Nothing to undo."""
