"""public notice and mobile desk

Revision ID: 0017
Revises: 0016
Create Date: 2027-02-01 10:00:00

The public grid notice (网格公示): each grid's office hours and service items; which staff phones are
public (``public_phone``) and a duty phone published instead of the personal one. Mobile desk sessions
(流动办公桌): routes, sessions, their staff and the requests recorded at them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

#: The desk session's statuses, frozen here (models.DeskStatus).
DESK_STATUSES = ("planned", "open", "closed")


def upgrade() -> None:
    """Add the public notice's fields and the mobile desk's tables."""
    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.add_column(sa.Column('office_hours', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('service_items', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_phone', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('duty_phone', sa.String(length=32), server_default='', nullable=False))
    op.create_table(
        'desk_route',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('starts_at', sa.String(length=5), nullable=False),
        sa.Column('ends_at', sa.String(length=5), nullable=False),
        sa.Column('building_ids', sa.String(length=1000), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['grid_id'], ['grid.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('desk_route', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_route_grid_id'), ['grid_id'], unique=False)
    op.create_table(
        'desk_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grid_id', sa.Integer(), nullable=False),
        sa.Column('route_id', sa.Integer(), nullable=True),
        sa.Column('building_id', sa.Integer(), nullable=True),
        sa.Column('address', sa.String(length=200), nullable=False),
        sa.Column('held_on', sa.Date(), nullable=False),
        sa.Column('starts_at', sa.String(length=5), nullable=False),
        sa.Column('ends_at', sa.String(length=5), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opened_by_id', sa.Integer(), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_by_id', sa.Integer(), nullable=True),
        sa.Column('summary_note', sa.Text(), nullable=False),
        sa.CheckConstraint(sa.column('status').in_(DESK_STATUSES), name='ck_desk_session_status'),
        sa.ForeignKeyConstraint(['building_id'], ['building.id'], ),
        sa.ForeignKeyConstraint(['closed_by_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['grid_id'], ['grid.id'], ),
        sa.ForeignKeyConstraint(['opened_by_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['route_id'], ['desk_route.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('desk_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_session_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_desk_session_held_on'), ['held_on'], unique=False)
        batch_op.create_index('ix_desk_session_grid_day', ['grid_id', 'held_on'], unique=False)
    op.create_table(
        'desk_session_staff',
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['desk_session.id'], ),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('session_id', 'user_id'),
    )
    op.create_table(
        'desk_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('answered_on_spot', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['session_id'], ['desk_session.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id'),
    )
    with op.batch_alter_table('desk_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_entry_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    """Drop the mobile desk's tables and the public notice's fields."""
    with op.batch_alter_table('desk_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_desk_entry_session_id'))
    op.drop_table('desk_entry')
    op.drop_table('desk_session_staff')
    with op.batch_alter_table('desk_session', schema=None) as batch_op:
        batch_op.drop_index('ix_desk_session_grid_day')
        batch_op.drop_index(batch_op.f('ix_desk_session_held_on'))
        batch_op.drop_index(batch_op.f('ix_desk_session_grid_id'))
    op.drop_table('desk_session')
    with op.batch_alter_table('desk_route', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_desk_route_grid_id'))
    op.drop_table('desk_route')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('duty_phone')
        batch_op.drop_column('public_phone')
    with op.batch_alter_table('grid', schema=None) as batch_op:
        batch_op.drop_column('service_items')
        batch_op.drop_column('office_hours')
