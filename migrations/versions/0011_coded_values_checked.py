"""coded values checked

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-10 10:00:00

Every coded column gets a CHECK constraint naming the values it may hold (tracker/codes.py and the
enums of tracker/models.py). A database holding other values is not changed: the upgrade stops and
names each table, column and value, so that someone who knows what they meant fixes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


#: table -> column -> the values it may hold, frozen as of this revision (a later one that adds a value
#: replaces that column's constraint). The constraint of each is named ck_<table>_<column>.
CODES: dict[str, dict[str, tuple[str, ...]]] = {
    "membership": {
        "role": ("grid_member", "grid_leader", "department_handler", "auditor", "street_office"),
    },
    "case": {
        "channel": ("walk_in", "phone", "wechat", "app", "mobile_desk", "visit", "hotline_12345", "api", "open311"),
        "intake": ("web", "api", "open311"),
        "urgency": ("normal", "urgent", "emergency"),
        "green_channel": ("", "elderly", "disabled", "sick"),
        "status": ("recording", "dispatching", "handling", "extension_review", "callback", "archive_review",
                   "archived"),
        "dispatch_to": ("member", "department"),
        "deadline_class": ("emergency", "utilities", "general", "complex"),
        "outcome": ("satisfied", "basic", "dissatisfied", "unreachable"),
    },
    "task": {
        "form_key": ("record_reply", "dispatch", "handle", "review_extension", "callback", "review_archive",
                     "supervise", "visit"),
        "role": ("grid_member", "grid_leader", "department_handler", "auditor", "street_office"),
        "status": ("open", "done"),
    },
    "api_token": {
        "scope": ("open311", "read", "full"),
    },
    "notification": {
        "kind": ("sign_for", "reminder", "supervision", "escalation", "supervision_note", "visit_missed", "assigned",
                 "handed_over"),
    },
    "household": {
        "care_group": ("", "elderly_alone", "left_behind_child", "hardship", "migrant"),
    },
    "visit_plan": {
        "on_holiday": ("keep", "skip"),
    },
    "visit": {
        "status": ("open", "done"),
    },
}
#: Offending values named per column in the message; the rest are counted.
SHOWN = 20


def _name(table: str, column: str) -> str:
    """Return the name of a column's CHECK constraint."""
    return f"ck_{table}_{column}"


def upgrade() -> None:
    """Refuse a database holding values outside the codes, then add a CHECK constraint per coded column."""
    problems = [line for table, columns in CODES.items() for column, values in columns.items()
                if (line := _outside(table, column, values))]
    if problems:
        raise CommandError(_refusal(problems))
    for table, columns in CODES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in columns.items():
                batch_op.create_check_constraint(_name(table, column), sa.column(column).in_(values))


def _outside(table: str, column: str, values: tuple[str, ...]) -> str:
    """Return a line naming the values of ``table.column`` outside ``values`` and their row counts, or ""."""
    col = sa.column(column, sa.String)
    query = (sa.select(col, sa.func.count()).select_from(sa.table(table, col))
             .where(col.is_not(None), col.not_in(values)).group_by(col).order_by(col))
    rows = op.get_bind().execute(query).all()
    if not rows:
        return ""
    shown = ", ".join(f"{value!r} ({count} row{'s' if count != 1 else ''})" for value, count in rows[:SHOWN])
    more = f" and {len(rows) - SHOWN} more value(s)" if len(rows) > SHOWN else ""
    allowed = ", ".join(repr(value) for value in values)
    return f"  {table}.{column}: {shown}{more}; allowed: {allowed}"


def _refusal(problems: list[str]) -> str:
    """Return the message of an upgrade refused for values outside the codes."""
    return ("Migration 0011 did not run: these columns hold values outside their codes, and the upgrade does not "
            "change data:\n" + "\n".join(problems) + "\n"
            "Change each such row to an allowed value (for example UPDATE \"case\" SET channel = 'phone' "
            "WHERE channel = 'fax'; a nullable column may also be set to NULL), then run the upgrade again.")


def downgrade() -> None:
    """Drop the CHECK constraints."""
    for table, columns in reversed(CODES.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_constraint(_name(table, column), type_="check")
