"""numbers, reports and hotspots

Revision ID: 0015
Revises: 0014
Create Date: 2027-02-01 10:00:00

The numbers' facts on each case row (the first dispatch and its sign-for and handling limits, the first
sign-for, the first completed handling with the limit then in force and its working minutes, answered on
the spot, the first callback answer that reached the resident) with the index the dashboards read; the
tables of kept reports and of hotspots. Older cases get their facts replayed from their audit chains
(the sign-for limit, which the chain does not hold, from the shipped calendar: one working day).
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

FACTS = ("first_dispatched_at", "respond_by", "first_due_at", "responded_at", "handled_at", "handled_due_at")
NUMBERS_INDEX = ("created_at", "grid_id", "category", "channel", "department_id", "handler_id", "first_dispatched_at",
                 "respond_by", "responded_at", "first_due_at", "handled_at", "handled_due_at", "due_at",
                 "handling_minutes", "answered_on_spot", "first_outcome", "reopen_count", "status", "id")
REACHED = ("satisfied", "basic", "dissatisfied")
BATCH = 500


def upgrade() -> None:
    """Add the facts, their index, the report and hotspot tables; replay older chains into the facts."""
    with op.batch_alter_table("case", schema=None) as batch_op:
        for name in FACTS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handling_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answered_on_spot", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("first_outcome", sa.String(20), nullable=True))
        batch_op.create_check_constraint("ck_case_first_outcome", sa.column("first_outcome").in_(
            ("satisfied", "basic", "dissatisfied", "unreachable")))
    op.create_index("ix_case_numbers", "case", list(NUMBERS_INDEX))
    op.create_index("ix_case_building_category_created", "case", ["building_id", "category", "created_at"])
    op.create_index("ix_case_open_now", "case", ["status", "grid_id", "handler_id", "due_at"])
    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("user_account.id"), nullable=True),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("period IN ('week', 'month')", name="ck_report_period"),
        sa.CheckConstraint("scope IN ('grid', 'department', 'community')", name="ck_report_scope"),
        sa.UniqueConstraint("period", "scope", "scope_id", "starts_on", name="uq_report_period_scope"),
    )
    op.create_table(
        "hotspot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id"), nullable=False),
        sa.Column("building_id", sa.Integer(), sa.ForeignKey("building.id"), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proactive_case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=True),
    )
    op.create_index("ix_hotspot_grid_id", "hotspot", ["grid_id"])
    op.create_index("ix_hotspot_place", "hotspot", ["building_id", "category", "last_at"])
    op.create_table(
        "hotspot_case",
        sa.Column("hotspot_id", sa.Integer(), sa.ForeignKey("hotspot.id"), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), primary_key=True),
    )
    op.create_index("ix_hotspot_case_case_id", "hotspot_case", ["case_id"])
    replay(op.get_bind())


def replay(bind) -> None:
    """Give older cases their facts from their chains (the rules of tracker/services/facts.py, frozen here)."""
    from tracker.workdays import WorkCalendar  # the published holidays: the same package the app counts with

    calendar = WorkCalendar()
    case = sa.table("case", *(sa.column(n) for n in (*FACTS, "id", "handling_minutes", "answered_on_spot",
                                                     "first_outcome")))
    event = sa.table("audit_event", sa.column("case_id"), sa.column("seq"), sa.column("at"), sa.column("action"),
                     sa.column("changes"))
    last = 0
    while ids := bind.execute(sa.select(case.c.id).where(case.c.id > last).order_by(case.c.id).limit(BATCH)
                              ).scalars().all():
        last = ids[-1]
        facts: dict[int, dict] = {i: {} for i in ids}
        rows = bind.execute(sa.select(event.c.case_id, event.c.at, event.c.action, event.c.changes)
                            .where(event.c.case_id.in_(ids)).order_by(event.c.case_id, event.c.seq))
        due: dict[int, dt.datetime | None] = {}
        for case_id, at, action, changes in rows:
            _step(facts[case_id], due, case_id, _aware(at), action, json.loads(changes or "{}"), calendar)
        for case_id, values in facts.items():
            if values:
                bind.execute(case.update().where(case.c.id == case_id).values(**values))


def _aware(value) -> dt.datetime:
    """Return a stored moment as aware UTC (SQLite keeps no zone; strings as written)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _step(facts: dict, due: dict, case_id: int, at: dt.datetime, action: str, changes: dict, calendar) -> None:
    """Apply one event of a chain to the case's facts."""
    def new(key):
        pair = changes.get(key)
        return pair[1] if isinstance(pair, list) and len(pair) == 2 else None
    if "due_at" in changes and new("due_at"):
        due[case_id] = _aware(new("due_at"))
    if action == "task.dispatch" and "first_dispatched_at" not in facts and due.get(case_id):
        facts["first_dispatched_at"], facts["first_due_at"] = at, due[case_id]
        facts["respond_by"] = min(calendar.add_working_days(at, 1), due[case_id])
    if new("signed_at") and "responded_at" not in facts:
        facts["responded_at"] = _aware(new("signed_at"))
    if action == "task.record_reply" and new("form.answered_on_spot") is True:
        facts["answered_on_spot"] = True
    if action == "task.handle" and new("form.handle_action") == "done" and "handled_at" not in facts:
        facts["handled_at"], facts["handled_due_at"] = at, due.get(case_id)
        if "first_dispatched_at" in facts:
            facts["handling_minutes"] = _minutes(calendar, facts["first_dispatched_at"], at)
    if action == "task.callback" and new("outcome") in REACHED and "first_outcome" not in facts:
        facts["first_outcome"] = new("outcome")


def _minutes(calendar, start: dt.datetime, end: dt.datetime) -> int:
    """Return the minutes from ``start`` to ``end`` within 09:00-17:00 of working days (the shipped hours)."""
    total, day, zone = 0.0, start.astimezone(calendar.zone).date(), calendar.zone
    while day <= end.astimezone(zone).date():
        if calendar.is_working_day(day):
            opens, closes = dt.datetime.combine(day, dt.time(9), zone), dt.datetime.combine(day, dt.time(17), zone)
            total += max((min(closes, end) - max(opens, start)).total_seconds(), 0.0)
        day += dt.timedelta(days=1)
    return round(total / 60)


def downgrade() -> None:
    """Drop the tables, the index and the facts."""
    op.drop_index("ix_hotspot_case_case_id", table_name="hotspot_case")
    op.drop_table("hotspot_case")
    op.drop_index("ix_hotspot_place", table_name="hotspot")
    op.drop_index("ix_hotspot_grid_id", table_name="hotspot")
    op.drop_table("hotspot")
    op.drop_table("report")
    op.drop_index("ix_case_open_now", table_name="case")
    op.drop_index("ix_case_building_category_created", table_name="case")
    op.drop_index("ix_case_numbers", table_name="case")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_constraint("ck_case_first_outcome", type_="check")
        for name in ("first_outcome", "answered_on_spot", "handling_minutes", *reversed(FACTS)):
            batch_op.drop_column(name)
