"""Coded values: each coded column holds one of its StrEnum's values, and the database refuses any other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from tests.conftest import building_id, intake, latest_case, open_task, user_id
from tracker import codes, labels
from tracker.models import Base, Case, CaseStatus, Coded, Household, Notification, utcnow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("enum", "table"), [
    (codes.Channel, labels.CHANNELS), (codes.Door, labels.DOORS), (codes.Urgency, labels.URGENCIES),
    (codes.GreenChannel, labels.GREEN_CHANNEL), (CaseStatus, labels.STATUSES), (codes.Outcome, labels.OUTCOMES),
    (codes.DeadlineClass, labels.DEADLINE_CLASSES), (codes.DispatchTo, labels.DISPATCH_TO),
    (codes.HandleAction, labels.HANDLE_ACTIONS), (codes.CareGroup, labels.CARE_GROUPS),
])
def test_every_code_has_a_label_and_every_label_a_code(enum, table):
    assert [m.value for m in enum] == list(table)


def test_every_notification_kind_has_its_message():
    template = (ROOT / "templates" / "notifications" / "_message.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"n\.kind == '([a-z_]+)'", template))
    assert shown == {k.value for k in codes.NotificationKind}


def test_every_form_key_in_bpmn_is_a_code_and_every_task_form_one():
    from tracker.services.cases import TASKS
    used = {m.group(1) for path in (ROOT / "bpmn").glob("*.bpmn")
            for m in re.finditer(r'name="formKey" value="([^"]*)"', path.read_text(encoding="utf-8"))}
    assert used == {k.value for k in codes.FormKey}
    assert set(TASKS) <= used


def test_every_coded_column_has_its_named_check():
    coded = {(t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns if isinstance(c.type, Coded)}
    checks = {c.name for t in Base.metadata.tables.values() for c in t.constraints if c.name and c.name.startswith("ck_")}
    assert {f"ck_{t}_{c}" for t, c in coded} == checks
    assert {("case", "channel"), ("case", "urgency"), ("task", "form_key"), ("notification", "kind"),
            ("household", "care_group"), ("visit_plan", "on_holiday"), ("membership", "role")} <= coded


def _copy_row(db, table: str, key: str, key_value, **values) -> None:
    """Insert a copy of one row through raw SQL, with ``values`` in place of its columns."""
    columns = [c["name"] for c in inspect(db.get_bind()).get_columns(table) if c["name"] != "id" or "id" in values]
    picked = ", ".join(f":{c}" if c in values else f'"{c}"' for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    db.execute(text(f'INSERT INTO "{table}" ({names}) SELECT {picked} FROM "{table}" WHERE "{key}" = :key'),
               {**values, "key": key_value})


def _insert(db, column: str, value: str, n: int) -> None:
    """Insert through raw SQL a row whose coded ``column`` ("table.column") holds ``value``."""
    case = latest_case(db)
    if column in ("case.channel", "case.urgency"):
        _copy_row(db, "case", "id", case.id, number=f"T-{n}", **{column.split(".")[1]: value})
    elif column == "task.form_key":
        first = db.scalar(text("SELECT min(id) FROM task WHERE case_id = :c"), {"c": case.id})
        _copy_row(db, "task", "id", first, id=f"copy-{n}", form_key=value)
    elif column == "notification.kind":
        db.execute(text("INSERT INTO notification (user_id, kind, params, created_at) VALUES (:u, :k, '{}', :at)"),
                   {"u": user_id(db, "member_a"), "k": value, "at": utcnow()})
    else:
        db.execute(text("INSERT INTO household (grid_id, building_id, address_detail, head_name, phone, care_group, "
                        "note) VALUES (:g, :b, '1单元101', '王奶奶', '', :c, '')"),
                   {"g": case.grid_id, "b": building_id(db), "c": value})


@pytest.mark.parametrize(("column", "good", "bad"), [
    ("case.channel", "hotline_12345", "fax"), ("case.urgency", "emergency", "URGENT"),
    ("task.form_key", "callback", "legacy_form"), ("notification.kind", "handed_over", "sms"),
    ("household.care_group", "", "elderly"),
])
def test_the_database_refuses_a_value_outside_the_codes(db, login, column, good, bad):
    login("member_a").submit("/cases/new", intake(db))
    _insert(db, column, good, 1)
    with pytest.raises(IntegrityError):
        _insert(db, column, bad, 2)


def test_the_orm_refuses_a_value_outside_the_codes(db, login):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    case.channel = "fax"
    with pytest.raises(StatementError, match="'fax' is not among the defined enum values"):
        db.flush()
    db.rollback()
    db.add(Notification(user_id=user_id(db, "member_a"), kind="sms", params="{}"))
    with pytest.raises(StatementError, match="'sms' is not among the defined enum values"):
        db.flush()
    db.rollback()
    db.add(Household(grid_id=case.grid_id, building_id=building_id(db), address_detail="1单元101", head_name="王",
                     care_group="elderly"))
    with pytest.raises(StatementError, match="'elderly' is not among the defined enum values"):
        db.flush()
    db.rollback()


def test_coded_values_read_back_as_members_equal_to_their_strings(db, login):
    login("member_a").submit("/cases/new", intake(db, channel="wechat", green_channel=""))
    case = latest_case(db)
    assert case.channel is codes.Channel.WECHAT and case.channel == "wechat"
    assert case.green_channel is codes.GreenChannel.NONE and case.green_channel == ""
    assert case.intake is codes.Door.WEB and case.dispatch_to is None
    assert open_task(db, case.id).form_key is codes.FormKey.DISPATCH


def test_a_filter_naming_an_unknown_code_matches_nothing(db, login):
    leader = login("leader_a")
    leader.submit("/cases/new", intake(db))
    assert db.scalars(select(Case).where(Case.channel == "fax")).all() == []
    assert db.scalars(select(Case.id).where(Case.channel.in_(["fax", "phone"]))).all() == [latest_case(db).id]
    assert leader.get("/cases/?status=bogus&channel=fax").status_code == 200
