"""API token scopes and expiry

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Give every token a scope and an optional expiry.

    Tokens issued before scopes existed keep acting in full, as they did when issued: narrowing them here
    would silently break the programs using them (a hotline bridge refused mid-shift). Their owners see
    the scope on the profile page and replace them with narrower ones.
    """
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=10), nullable=False, server_default='full'))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    # The default only fills the existing rows: the app always names a new token's scope.
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.alter_column('scope', existing_type=sa.String(length=10), server_default=None)


def downgrade() -> None:
    """Drop scopes and expiry: every token acts in full again, and none expires."""
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scope')
