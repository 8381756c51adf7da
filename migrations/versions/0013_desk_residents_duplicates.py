"""desk: residents found by phone, duplicates (重复件) and one-time intake keys

Revision ID: 0013
Revises: 0012
Create Date: 2027-02-01 10:00:00

An index on the resident's phone (the resident view and the duplicate check look cases up by it); a
count on each case of the duplicates waiting for its result; the
table of duplicate links (a case following a main case); the table of one-time intake keys (the desk
form's hidden key and the API's Idempotency-Key header).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the phone index, the count of waiting duplicates and the two tables."""
    op.create_index("ix_case_resident_phone", "case", ["resident_phone"])
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_duplicates", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "duplicate_link",
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), primary_key=True),
        sa.Column("main_case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("linked_by_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_duplicate_link_main_case_id", "duplicate_link", ["main_case_id"])
    op.create_table(
        "intake_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "key", name="uq_intake_key_user_key"),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_table("intake_key")
    op.drop_index("ix_duplicate_link_main_case_id", table_name="duplicate_link")
    op.drop_table("duplicate_link")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("waiting_duplicates")
    op.drop_index("ix_case_resident_phone", table_name="case")
