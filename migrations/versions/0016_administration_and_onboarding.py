"""administration and onboarding: forced password change, categories and calendar days in the database,
the admin audit trail, previewed sheets

Revision ID: 0016
Revises: 0015
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

DEADLINE_CLASSES = ("emergency", "utilities", "general", "complex")


def upgrade() -> None:
    """Add the columns and tables."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default='0', nullable=False))
    op.create_table(
        'category',
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('name_zh', sa.String(length=100), nullable=False),
        sa.Column('name_en', sa.String(length=100), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=True),
        sa.Column('deadline_class', sa.String(length=20), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.CheckConstraint(sa.column('deadline_class').in_(DEADLINE_CLASSES), name='ck_category_deadline_class'),
        sa.ForeignKeyConstraint(['department_id'], ['department.id'], ),
        sa.PrimaryKeyConstraint('code'),
    )
    op.create_table(
        'calendar_day',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('working', sa.Boolean(), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )
    op.create_table(
        'admin_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_name', sa.String(length=100), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target', sa.String(length=100), nullable=False),
        sa.Column('changes', sa.Text(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('seq'),
    )
    op.create_table(
        'import_upload',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('digest'),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table('import_upload')
    op.drop_table('admin_event')
    op.drop_table('calendar_day')
    op.drop_table('category')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('must_change_password')
