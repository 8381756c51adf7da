"""desk defects: program accounts are no people (user_account.is_program)

Revision ID: 0020
Revises: 0019
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the flag, and set it for the accounts that act only through Open311 tokens (the programs' accounts
    of the demo and of the guide): every token they hold is scoped ``open311``."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_program', sa.Boolean(), server_default='0', nullable=False))
    op.execute(sa.text(
        "UPDATE user_account SET is_program = :yes WHERE NOT is_admin "
        "AND id IN (SELECT user_id FROM api_token WHERE scope = 'open311') "
        "AND id NOT IN (SELECT user_id FROM api_token WHERE scope <> 'open311')").bindparams(yes=True))


def downgrade() -> None:
    """Drop the flag."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('is_program')
