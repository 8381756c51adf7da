"""desk defects (reserved: filled by the work that needs it; a no-op until then)

Revision ID: 0020
Revises: 0019
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
