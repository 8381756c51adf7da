"""administration and onboarding (reserved: filled by the work that needs it; a no-op until then)

Revision ID: 0016
Revises: 0015
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
