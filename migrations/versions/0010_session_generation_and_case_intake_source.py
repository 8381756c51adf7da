"""session generation and case intake source

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intake', sa.String(length=16), server_default='web', nullable=False))
        batch_op.create_index(batch_op.f('ix_case_intake'), ['intake'], unique=False)
    # Before this revision the door was not recorded and anyone could pick the channel "Open311 app".
    # A case is taken as filed through Open311 only if it says so and its recorder is an account that
    # holds an API token (a program); a member who picked the channel in the web form keeps it private.
    op.execute("""UPDATE "case" SET intake = 'open311' WHERE channel = 'open311'
                  AND created_by_id IN (SELECT user_id FROM api_token)""")
    op.execute("""UPDATE "case" SET intake = 'api' WHERE channel = 'api'
                  AND created_by_id IN (SELECT user_id FROM api_token)""")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_intake'))
        batch_op.drop_column('intake')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
