"""Reassignment, stand-in cover, chain head on the case, task event numbers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 20:32:20.344088
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table('cover',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('stand_in_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['grid_id'], ['grid.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['stand_in_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cover', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cover_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cover_member_id'), ['member_id'], unique=False)

    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_head', sa.String(length=64), nullable=True))

    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('closed_seq', sa.Integer(), nullable=True))

    _backfill()



def _backfill() -> None:
    """Give existing cases their chain head, and existing tasks the events that opened and closed them.

    Events are stamped to the second and tasks to the microsecond. A task a person completed was
    closed by its own event (``task.<form>`` naming it, in or after the second it was completed); one
    the process closed, by the first event of that second. A task was opened by the event that closed
    the task completed just before it (the step that led to it), a supervision task by its timer's
    event, the first task of a case by the case's opening (event 1).
    """
    op.execute('UPDATE "case" SET audit_head = (SELECT e.hash FROM audit_event e '
               'WHERE e.case_id = "case".id AND e.seq = "case".audit_seq)')
    second = ("date_trunc('second', {})" if op.get_bind().dialect.name == "postgresql"
              else "substr({}, 1, 19)")
    closed, created = second.format("task.completed_at"), second.format("task.created_at")
    op.execute(f"""UPDATE task SET closed_seq = COALESCE(
        (SELECT MIN(e.seq) FROM audit_event e WHERE e.case_id = task.case_id AND e.task_name = task.name
           AND e.action = 'task.' || task.form_key AND e.at >= {closed}),
        (SELECT MIN(e.seq) FROM audit_event e WHERE e.case_id = task.case_id AND e.at >= {closed}))
        WHERE task.completed_at IS NOT NULL""")
    op.execute(f"""UPDATE task SET opened_seq = COALESCE(
        CASE WHEN task.form_key = 'supervise' THEN
          (SELECT MIN(e.seq) FROM audit_event e WHERE e.case_id = task.case_id AND e.action LIKE 'timer.%'
             AND e.at >= {created}) END,
        (SELECT p.closed_seq FROM task p WHERE p.case_id = task.case_id AND p.id <> task.id
           AND p.completed_at IS NOT NULL AND p.completed_at <= task.created_at
           ORDER BY p.completed_at DESC LIMIT 1),
        1)""")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('closed_seq')
        batch_op.drop_column('opened_seq')

    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_column('audit_head')

    with op.batch_alter_table('cover', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cover_member_id'))
        batch_op.drop_index(batch_op.f('ix_cover_grid_id'))

    op.drop_table('cover')
