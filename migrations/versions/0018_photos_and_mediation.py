"""photos and mediation (reserved: filled by the work that needs it; a no-op until then)

Revision ID: 0018
Revises: 0017
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
