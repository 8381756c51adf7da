"""public notice and mobile desk (reserved: filled by the work that needs it; a no-op until then)

Revision ID: 0017
Revises: 0016
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
