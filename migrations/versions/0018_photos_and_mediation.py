"""photos and mediation

Revision ID: 0018
Revises: 0017
Create Date: 2027-02-01 10:00:00

Two tables: ``attachment`` (photos of a case or a visit, stored by content hash; the hash is on the
case's audit chain) and ``mediation`` (矛盾调解 records of a case, with the follow-up moment the scheduler
reminds the handler at).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

#: The attachment kinds as of this revision (codes.AttachmentKind).
KINDS = ("intake", "before", "after", "visit", "mediation")


def upgrade() -> None:
    """Create the mediation and attachment tables."""
    op.create_table(
        'mediation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('parties', sa.Text(), nullable=False),
        sa.Column('mediators', sa.String(length=200), nullable=False),
        sa.Column('agreement', sa.Text(), nullable=False),
        sa.Column('accepted', sa.Boolean(), nullable=False),
        sa.Column('referred_to', sa.String(length=200), nullable=False),
        sa.Column('follow_up_on', sa.Date(), nullable=True),
        sa.Column('follow_up_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('mediation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mediation_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mediation_follow_up_at'), ['follow_up_at'], unique=False)
    op.create_table(
        'attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('visit_id', sa.Integer(), nullable=True),
        sa.Column('mediation_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('file_name', sa.String(length=200), nullable=False),
        sa.Column('display_sha256', sa.String(length=64), nullable=False),
        sa.Column('thumb_sha256', sa.String(length=64), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(sa.column('kind').in_(KINDS), name='ck_attachment_kind'),
        sa.ForeignKeyConstraint(['case_id'], ['case.id'], ),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
        sa.ForeignKeyConstraint(['mediation_id'], ['mediation.id'], ),
        sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_mediation_id'), ['mediation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_visit_id'), ['visit_id'], unique=False)


def downgrade() -> None:
    """Drop both tables (their rows are lost; the stored files stay in the store)."""
    op.drop_table('attachment')
    op.drop_table('mediation')
