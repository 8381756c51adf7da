"""message delivery: the outbox of e-mail and webhook messages, each person's preference, visit record keys

Revision ID: 0019
Revises: 0018
Create Date: 2027-02-01 10:00:00

``delivery`` is the outbox and the delivery log (one row per notification and channel, with its
attempts); ``delivery_preference`` says which channels a person wants; ``visit.record_key`` holds the
idempotency key of the record that completed a visit, so an offline phone's replay is recognised.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the outbox and the preferences; add the visit's record key."""
    op.create_table('delivery_preference',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('email_on', sa.Boolean(), nullable=False),
    sa.Column('webhook_on', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(sa.column('channel').in_(('email', 'webhook')), name='ck_delivery_channel'),
    sa.CheckConstraint(sa.column('status').in_(('pending', 'sending', 'sent', 'failed')), name='ck_delivery_status'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notification_id', 'channel', name='uq_delivery_notification_channel')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_delivery_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_key', sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop them again (the outbox's messages and the preferences are lost)."""
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.drop_column('record_key')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_user_id'))
        batch_op.drop_index('ix_delivery_due')
    op.drop_table('delivery')
    op.drop_table('delivery_preference')
