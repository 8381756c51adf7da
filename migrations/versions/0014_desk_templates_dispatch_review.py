"""desk: reply templates (常用语) of a grid

Revision ID: 0014
Revises: 0013
Create Date: 2027-02-01 10:00:00

The table of reply templates: per grid and (optionally) category, for the on-the-spot reply, the handling
result or the callback; ``{name}`` and ``{number}`` in the text are filled in when a template is inserted.
Dispatch notes, returns, reworks and recalls need no column: they live on the cases' audit chains.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

#: ReplyUse's values, frozen as of this revision.
USES = ("reply", "result", "callback")


def upgrade() -> None:
    """Add the reply template table."""
    op.create_table(
        "reply_template",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id"), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("use", sa.String(20), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(sa.column("use").in_(USES), name="ck_reply_template_use"),
    )
    op.create_index("ix_reply_template_grid_use", "reply_template", ["grid_id", "use", "category"])


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_reply_template_grid_use", table_name="reply_template")
    op.drop_table("reply_template")
