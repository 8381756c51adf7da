"""codes for the desk, the public notice, the numbers and the field

Revision ID: 0012
Revises: 0011
Create Date: 2027-02-01 10:00:00

New coded values: channels ``qr_code`` (扫码, the public form a grid poster opens) and ``proactive``
(主动发现, opened from a hotspot); the intake door ``public``; notification kinds ``hotspot``,
``mediation_follow_up``, ``rework``, ``recalled`` and ``new_task`` (a case dispatched to someone, for
e-mail and webhook messages). Each column's CHECK constraint is replaced by one
naming the longer list (no data changes: every old value stays allowed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

#: table -> column -> (values before, values after)
CHANGES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "case": {
        "channel": (("walk_in", "phone", "wechat", "app", "mobile_desk", "visit", "hotline_12345", "api", "open311"),
                    ("walk_in", "phone", "wechat", "app", "mobile_desk", "visit", "hotline_12345", "qr_code",
                     "proactive", "api", "open311")),
        "intake": (("web", "api", "open311"), ("web", "api", "open311", "public")),
    },
    "notification": {
        "kind": (("sign_for", "reminder", "supervision", "escalation", "supervision_note", "visit_missed", "assigned",
                  "handed_over"),
                 ("sign_for", "reminder", "supervision", "escalation", "supervision_note", "visit_missed", "assigned",
                  "handed_over", "hotspot", "mediation_follow_up", "rework", "recalled", "new_task")),
    },
}


def _replace(which: int) -> None:
    """Replace each changed column's CHECK constraint by the list before (0) or after (1)."""
    for table, columns in CHANGES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, lists in columns.items():
                batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")
                batch_op.create_check_constraint(f"ck_{table}_{column}", sa.column(column).in_(lists[which]))


def upgrade() -> None:
    """Allow the new values."""
    _replace(1)


def downgrade() -> None:
    """Allow only the old values (a database already holding new ones refuses, by its constraint)."""
    _replace(0)
