"""session generation and case intake source

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


#: The action of the event this revision appends to every older chain.
ACTION = "audit.intake_recorded"
#: Cases handled per round trip.
BATCH = 1000

case = sa.table("case", sa.column("id", sa.Integer), sa.column("intake", sa.String),
                sa.column("audit_seq", sa.Integer), sa.column("audit_head", sa.String),
                sa.column("row_version", sa.Integer))
event = sa.table("audit_event", sa.column("case_id", sa.Integer), sa.column("seq", sa.Integer),
                 sa.column("at", sa.DateTime(timezone=True)), sa.column("actor_id", sa.Integer),
                 sa.column("actor_name", sa.String), sa.column("action", sa.String),
                 sa.column("task_name", sa.String), sa.column("changes", sa.Text),
                 sa.column("prev_hash", sa.String), sa.column("hash", sa.String))


def _event_hash(case_id: int, seq: int, at: str, actor_id: int | None, actor_name: str, action: str,
                task_name: str | None, changes: str, prev_hash: str) -> str:
    """Return an event's hash as tracker/chain.py defines it (frozen here, as migrations are)."""
    payload = json.dumps([case_id, seq, at, actor_id, actor_name, action, task_name, changes, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intake', sa.String(length=16), server_default='web', nullable=False))
        batch_op.create_index(batch_op.f('ix_case_intake'), ['intake'], unique=False)
    # Before this revision the door was not recorded, and anyone could pick the channel "Open311 app" in a
    # form: every older case is taken as recorded on the web page, private. `flask publish-open311 USER`
    # publishes the older cases a program account really filed through Open311, on their chains.
    _record_intake_on_chains()


def _record_intake_on_chains() -> None:
    """Append to each older chain one system event recording its door (web), so verification covers it.

    A chain that already recorded its door when the case opened (the revision was downgraded and
    upgraded again) gives the case its door back instead.
    """
    bind = op.get_bind()
    opening, later = event.alias("opening"), event.alias("later")
    # A chain with an event past its count (tampered) is left as it is: verification names that event.
    query = (sa.select(case.c.id, case.c.intake, case.c.audit_seq, case.c.audit_head, opening.c.changes)
             .join(opening, sa.and_(opening.c.case_id == case.c.id, opening.c.seq == 1))
             .where(~sa.exists().where(later.c.case_id == case.c.id, sa.or_(later.c.action == ACTION,
                                                                             later.c.seq > case.c.audit_seq)))
             .order_by(case.c.id).limit(BATCH))
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    last = 0
    while rows := bind.execute(query.where(case.c.id > last)).all():
        events, heads, doors = [], [], []
        for row in rows:
            opened = json.loads(row.changes)
            if "intake" in opened:
                doors.append({"b_id": row.id, "b_intake": opened["intake"][1]})
                continue
            text = json.dumps({"intake": [None, row.intake]}, ensure_ascii=False, sort_keys=True)
            seq, prev = row.audit_seq + 1, row.audit_head or "0" * 64
            digest = _event_hash(row.id, seq, at.isoformat(), None, "system", ACTION, None, text, prev)
            events.append({"case_id": row.id, "seq": seq, "at": at, "actor_id": None, "actor_name": "system",
                           "action": ACTION, "task_name": None, "changes": text, "prev_hash": prev, "hash": digest})
            heads.append({"b_id": row.id, "b_seq": seq, "b_head": digest})
        if events:
            bind.execute(event.insert(), events)
            bind.execute(case.update().where(case.c.id == sa.bindparam("b_id")).values(
                audit_seq=sa.bindparam("b_seq"), audit_head=sa.bindparam("b_head"),
                row_version=case.c.row_version + 1), heads)
        if doors:
            bind.execute(case.update().where(case.c.id == sa.bindparam("b_id")).values(
                intake=sa.bindparam("b_intake")), doors)
        last = rows[-1].id


def downgrade() -> None:
    """Revert this revision (the appended events stay: they are links of their chains)."""
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_intake'))
        batch_op.drop_column('intake')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
