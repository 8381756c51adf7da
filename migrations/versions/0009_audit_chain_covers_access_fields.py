"""audit chain covers access fields

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:30:00

From this revision a case's chain records its number, its grid and its recorder (the fields that
decide who may read it) and the hash of its process version, and verification compares them with
the case row. Cases opened since record them in their opening event; this revision appends one
event to each older chain that records them, so old cases are covered too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: The action of the event this revision appends.
ACTION = "audit.fields_recorded"
#: The fields chains began to record here, in the order they are looked for.
FIELDS = ("number", "grid_id", "created_by_id", "process_hash")
#: Cases handled per round trip.
BATCH = 1000

case = sa.table("case", sa.column("id", sa.Integer), sa.column("number", sa.String), sa.column("grid_id", sa.Integer),
                sa.column("created_by_id", sa.Integer), sa.column("definition_id", sa.Integer),
                sa.column("audit_seq", sa.Integer), sa.column("audit_head", sa.String),
                sa.column("row_version", sa.Integer))
event = sa.table("audit_event", sa.column("case_id", sa.Integer), sa.column("seq", sa.Integer),
                 sa.column("at", sa.DateTime(timezone=True)), sa.column("actor_id", sa.Integer),
                 sa.column("actor_name", sa.String), sa.column("action", sa.String),
                 sa.column("task_name", sa.String), sa.column("changes", sa.Text),
                 sa.column("prev_hash", sa.String), sa.column("hash", sa.String))
definition = sa.table("process_definition", sa.column("id", sa.Integer), sa.column("content_hash", sa.String))


def _event_hash(case_id: int, seq: int, at: str, actor_id: int | None, actor_name: str, action: str,
                task_name: str | None, changes: str, prev_hash: str) -> str:
    """Return an event's hash as tracker/chain.py defines it (frozen here, as migrations are)."""
    payload = json.dumps([case_id, seq, at, actor_id, actor_name, action, task_name, changes, prev_hash],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def upgrade() -> None:
    """Append to each older chain one event recording the fields it lacks."""
    bind = op.get_bind()
    opening, later = event.alias("opening"), event.alias("later")
    # A chain with an event past its count (tampered) is left as it is: verification names that event.
    query = (sa.select(case.c.id, case.c.number, case.c.grid_id, case.c.created_by_id, case.c.audit_seq,
                       case.c.audit_head, definition.c.content_hash, opening.c.actor_id, opening.c.action,
                       opening.c.changes)
             .join(definition, definition.c.id == case.c.definition_id)
             .join(opening, sa.and_(opening.c.case_id == case.c.id, opening.c.seq == 1))
             .where(~sa.exists().where(later.c.case_id == case.c.id, sa.or_(later.c.action == ACTION,
                                                                             later.c.seq > case.c.audit_seq)))
             .order_by(case.c.id).limit(BATCH))
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    last = 0
    while rows := bind.execute(query.where(case.c.id > last)).all():
        events, heads = [], []
        for row in rows:
            recorded = _recorded_event(row, at)
            if recorded is not None:
                events.append(recorded)
                heads.append({"b_id": row.id, "b_seq": recorded["seq"], "b_head": recorded["hash"]})
        if events:
            bind.execute(event.insert(), events)
            bind.execute(case.update().where(case.c.id == sa.bindparam("b_id")).values(
                audit_seq=sa.bindparam("b_seq"), audit_head=sa.bindparam("b_head"),
                row_version=case.c.row_version + 1), heads)
        last = rows[-1].id


def _recorded_event(row, at: dt.datetime) -> dict | None:
    """Return the event recording what the case's chain lacks, or None if it lacks nothing.

    The recorder is the opening event's actor (the case was opened by its recorder), so a recorder
    changed in the database before this revision does not become the recorded one: it is found.
    """
    opened = json.loads(row.changes)
    recorder = row.actor_id if row.action == "case.opened" and row.actor_id is not None else row.created_by_id
    values = {"number": row.number, "grid_id": row.grid_id, "created_by_id": recorder,
              "process_hash": row.content_hash}
    changes = {name: [None, values[name]] for name in FIELDS if name not in opened}
    if not changes:
        return None
    text = json.dumps(changes, ensure_ascii=False, sort_keys=True)
    seq, prev = row.audit_seq + 1, row.audit_head or "0" * 64
    return {"case_id": row.id, "seq": seq, "at": at, "actor_id": None, "actor_name": "system", "action": ACTION,
            "task_name": None, "changes": text, "prev_hash": prev,
            "hash": _event_hash(row.id, seq, at.isoformat(), None, "system", ACTION, None, text, prev)}


def downgrade() -> None:
    """Keep the appended events: they are links of their chains, and earlier code verifies them as any other."""
