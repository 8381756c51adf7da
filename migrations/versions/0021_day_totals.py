"""numbers: day totals per grid (stats_day) and the index of undecided cases

Revision ID: 0021
Revises: 0020
Create Date: 2027-03-01 10:00:00

The dashboards of an area read a period from each grid's day totals, kept current by triggers with every
write to a case or a duplicate link (services.facts); the cases a clock can still change are read by their
own partial index. Each case gets its local day in the office's time zone (``[app] timezone``; after
changing it, ``flask count-day-totals`` gives them their days and counts again).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from flask import current_app, has_app_context

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

UNDECIDED = "first_dispatched_at IS NOT NULL AND (responded_at IS NULL OR handled_at IS NULL)"
COUNTERS = ("recorded", "on_spot", "dispatched", "response_due", "responded", "handling_due", "on_time", "overdue",
            "handled", "reached", "satisfied", "basic", "dissatisfied", "reopened", "handling_minutes",
            "on_time_original", "overdue_original")


def upgrade() -> None:
    """Give each case its local day; create the day totals, their triggers and the partial index; count the
    totals of the cases there are."""
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_day", sa.Date(), nullable=True))
    op.create_table(
        "stats_day",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id"), primary_key=True),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in COUNTERS),
    )
    op.create_index("ix_stats_day_grid", "stats_day", ["grid_id", "day"])
    op.create_index("ix_case_undecided", "case", ["created_at", "grid_id", "first_dispatched_at", "respond_by",
                                                   "responded_at", "first_due_at", "handled_at", "handled_due_at",
                                                   "due_at", "id"],
                    sqlite_where=sa.text(UNDECIDED), postgresql_where=sa.text(UNDECIDED))
    # Made and counted by the release that brings them (its definitions of the figures are the ones to keep;
    # a later release changing them installs its own triggers and counts again).
    from tracker.services.facts import count_all_days, install_day_totals
    zone = current_app.config["GRIDLOOP"]["app"].get("timezone", "Asia/Shanghai") if has_app_context() \
        else "Asia/Shanghai"
    bind = op.get_bind()
    count_all_days(bind, ZoneInfo(zone))  # every case's local day first (the triggers key the totals by it)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.alter_column("local_day", existing_type=sa.Date(), nullable=False)
    install_day_totals(bind)
    count_all_days(bind, ZoneInfo(zone))


def downgrade() -> None:
    """Drop the triggers, the day totals, the partial index and the local day."""
    bind = op.get_bind()
    for name, table in (("stats_day_case_insert", "case"), ("stats_day_case_delete", "case"),
                        ("stats_day_case_update", "case"), ("stats_day_link_insert", "duplicate_link"),
                        ("stats_day_link_delete", "duplicate_link")):
        if bind.dialect.name == "postgresql":
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_case_undecided", table_name="case")
    op.drop_index("ix_stats_day_grid", table_name="stats_day")
    op.drop_table("stats_day")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("local_day")
