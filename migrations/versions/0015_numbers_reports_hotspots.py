"""numbers reports hotspots (reserved: filled by the work that needs it; a no-op until then)

Revision ID: 0015
Revises: 0014
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
