"""Store workflow state zlib-compressed (bytes) instead of JSON text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_case = sa.table("case", sa.column("id", sa.Integer), sa.column("workflow_state", sa.Text),
                 sa.column("workflow_blob", sa.LargeBinary))


def upgrade() -> None:
    """Add a binary column, compress every state into it, then replace the text column."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("workflow_blob", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(_case.c.id, _case.c.workflow_state)).all()
    for case_id, text in rows:
        blob = zlib.compress(json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
                             .encode("utf-8"), 6) if text else b""
        connection.execute(_case.update().where(_case.c.id == case_id).values(workflow_blob=blob))
    with op.batch_alter_table("case") as batch:
        batch.drop_column("workflow_state")
        batch.alter_column("workflow_blob", new_column_name="workflow_state", nullable=False,
                           existing_type=sa.LargeBinary())


def downgrade() -> None:
    """Decompress the states back into a text column."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("workflow_text", sa.Text(), nullable=True))
    connection = op.get_bind()
    blobs = sa.table("case", sa.column("id", sa.Integer), sa.column("workflow_state", sa.LargeBinary),
                     sa.column("workflow_text", sa.Text))
    for case_id, blob in connection.execute(sa.select(blobs.c.id, blobs.c.workflow_state)).all():
        text = zlib.decompress(blob).decode("utf-8") if blob else ""
        connection.execute(blobs.update().where(blobs.c.id == case_id).values(workflow_text=text))
    with op.batch_alter_table("case") as batch:
        batch.drop_column("workflow_state")
        batch.alter_column("workflow_text", new_column_name="workflow_state", nullable=False,
                           existing_type=sa.Text())
