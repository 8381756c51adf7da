"""The closed loop through the real web UI, CSRF on, one request at a time."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from tests.conftest import dispatch, intake, latest_case, open_task, user_id
from tracker.models import AuditEvent, Case, CaseStatus, Department, Task
from tracker.services.audit import verify_chain


def test_member_records_and_the_case_travels_the_whole_loop(login, db):
    member, leader = login("member_a"), login("leader_a")

    response = member.submit("/cases/new", intake(db))
    assert response.status_code == 302
    case = latest_case(db)
    assert case.status == CaseStatus.DISPATCHING
    assert case.resident_phone == "+8613812345678"

    task = open_task(db, case.id)
    assert (task.name, task.assignee_id) == ("dispatch", None)
    assert f"/tasks/{task.id}" in leader.get("/").get_data(as_text=True)
    response = leader.submit(f"/tasks/{task.id}", {
        "dispatch_to": "member", "handler_id": str(user_id(db, "member_a")), "department_id": "0",
        "deadline_class": "general"})
    assert response.status_code == 302

    task = open_task(db, case.id)
    assert (task.name, task.assignee_id) == ("handle_member", user_id(db, "member_a"))
    assert latest_case(db).due_at is not None
    assert f"/tasks/{task.id}" in member.get("/").get_data(as_text=True)
    assert member.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已更换灯泡"}).status_code == 302

    task = open_task(db, case.id)
    assert task.name == "callback" and task.assignee_id == user_id(db, "member_a")
    assert member.submit(f"/tasks/{task.id}", {"satisfaction": "satisfied"}).status_code == 302

    task = open_task(db, case.id)
    assert task.name == "review_archive"
    assert leader.submit(f"/tasks/{task.id}", {"confirm": "y", "comment": "同意归档"}).status_code == 302

    case = latest_case(db)
    assert (case.status, case.outcome, case.result) == (CaseStatus.ARCHIVED, "satisfied", "已更换灯泡")
    assert case.archived_at is not None
    assert db.scalar(select(func.count()).select_from(Task).where(Task.case_id == case.id, Task.status == "open")) == 0
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)).all()
    assert actions == ["case.opened", "task.record_reply", "task.dispatch", "task.handle", "task.callback",
                       "task.review_archive"]
    assert verify_chain(db, case.id).ok

    response = leader.get(f"/cases/{case.id}")
    assert response.status_code == 200
    timeline = response.get_data(as_text=True).split('class="timeline"')[1]
    for text in ("网格员甲", "网格长甲", "已更换灯泡", "物业维修", "电话", "已归档", "满意"):
        assert text in timeline
    for code in ("property_repair", "archive_review", "handler_id", "+00:00"):
        assert code not in timeline


def test_timeline_records_each_changed_field_old_and_new(login, db):
    member, leader = login("member_a"), login("leader_a")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    task = open_task(db, case.id)
    leader.submit(f"/tasks/{task.id}", {"dispatch_to": "member", "handler_id": str(user_id(db, "member_a2")),
                                        "department_id": "0", "deadline_class": "emergency"})
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.action == "task.dispatch")).one()
    changes = json.loads(event.changes)
    assert changes["status"] == ["dispatching", "handling"]
    assert changes["handler_id"] == [None, user_id(db, "member_a2")]
    assert changes["deadline_class"] == [None, "emergency"]
    assert event.actor_name == "网格长甲"


def test_answered_on_the_spot_goes_straight_to_callback(login, db):
    member = login("member_a")
    response = member.submit("/cases/new", intake(db, disposition="on_spot", reply="已告知所需材料"))
    assert response.status_code == 302
    case = latest_case(db)
    assert case.reply == "已告知所需材料"
    assert open_task(db, case.id).name == "callback"


def test_on_the_spot_without_reply_is_refused_and_saves_nothing(login, db):
    member = login("member_a")
    response = member.submit("/cases/new", intake(db, disposition="on_spot", reply="", building_id="-1"))
    assert response.status_code == 422
    # Both mistakes are shown at once, on the form itself.
    page = response.get_data(as_text=True)
    assert "请填写给居民的答复。" in page and "请选择诉求所在的楼院。" in page
    assert db.scalar(select(func.count()).select_from(Case)) == 0


def test_referral_goes_to_the_department_and_only_it_may_handle(login, db):
    member, leader, dept = login("member_a"), login("leader_a"), login("dept")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    department_id = db.scalar(select(Department.id).where(Department.code == "property"))
    leader.submit(f"/tasks/{open_task(db, case.id).id}", {
        "dispatch_to": "department", "handler_id": "0", "department_id": str(department_id),
        "deadline_class": "utilities"})
    task = open_task(db, case.id)
    assert (task.name, task.lane, task.department_id) == ("handle_department", "职能部门", department_id)
    assert f"/tasks/{task.id}" in dept.get("/").get_data(as_text=True)
    assert member.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "x"}).status_code == 403
    assert dept.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已维修"}).status_code == 302
    assert open_task(db, case.id).name == "callback"


def _dispatched_case(login, db):
    """Record a case as member_a and dispatch it back to member_a as leader_a."""
    member, leader = login("member_a"), login("leader_a")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(leader, db, case.id)
    return member, leader, case


def test_return_goes_back_to_the_leader_with_the_reason(login, db):
    member, _leader, case = _dispatched_case(login, db)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "return", "text": "不属于本网格"})
    task = open_task(db, case.id)
    assert task.name == "dispatch"
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq.desc())).first()
    assert json.loads(event.changes)["form.text"] == [None, "不属于本网格"]


def test_extension_approved_moves_the_deadline_refused_keeps_it(app, login, db):
    member, leader, case = _dispatched_case(login, db)
    due = latest_case(db).due_at
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "extend", "text": "等配件", "extension_days": "3"})
    assert open_task(db, case.id).name == "review_extension"
    leader.submit(f"/tasks/{open_task(db, case.id).id}", {"decision": "approve"})
    task = open_task(db, case.id)
    assert task.name == "handle_member"
    # Three working days later on the office calendar.
    assert latest_case(db).due_at == app.extensions["gridloop.calendar"].add_working_days(due, 3)
    assert task.due_at == latest_case(db).due_at

    member.submit(f"/tasks/{task.id}", {"handle_action": "extend", "text": "还要等", "extension_days": "5"})
    leader.submit(f"/tasks/{open_task(db, case.id).id}", {"decision": "refuse"})
    assert open_task(db, case.id).name == "handle_member"
    # Three working days later on the office calendar.
    assert latest_case(db).due_at == app.extensions["gridloop.calendar"].add_working_days(due, 3)


def test_dissatisfied_reopens_and_unreachable_retries(login, db):
    member, leader, case = _dispatched_case(login, db)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "处理"})
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "dissatisfied", "note": "居民说还没修好"})
    assert open_task(db, case.id).name == "handle_member"
    assert latest_case(db).reopen_count == 1
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "再次处理"})
    for attempt in (1, 2):
        member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "unreachable"})
        assert open_task(db, case.id).name == "callback"
        assert latest_case(db).callback_attempts == attempt
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "unreachable"})
    assert open_task(db, case.id).name == "review_archive"
    assert latest_case(db).outcome == "unreachable"


def test_case_list_filters_and_pages(login, db, app):
    app.config["GRIDLOOP"]["app"]["page_size"] = 2
    member = login("member_a")
    for i in range(5):
        member.submit("/cases/new", intake(db, category="employment" if i % 2 else "property_repair",
                                           description=f"诉求{i}"))
    page1 = member.get("/cases/").get_data(as_text=True)
    assert "1 / 3" in page1 and 'rel="next"' in page1 and 'rel="prev"' not in page1
    page3 = member.get("/cases/?page=3").get_data(as_text=True)
    assert "3 / 3" in page3 and 'rel="prev"' in page3
    def listed(query: str) -> int:
        return len(re.findall(r'href="/cases/\d+"', member.get(f"/cases/?{query}").get_data(as_text=True)))

    assert listed("category=employment") == 2
    assert listed("status=dispatching&page=1") == 2
    assert listed("status=archived") == 0
    assert listed("q=诉求4") == 1
    assert listed("grid=999") == 0
    assert listed("date_from=2000-01-01&date_to=2000-01-02") == 0


def test_a_grid_leader_records_a_case_and_sends_it_on(login, db):
    response = login("leader_a").submit("/cases/new", intake(db))
    assert response.status_code == 302
    case = latest_case(db)
    assert case.status == "dispatching" and case.created_by.username == "leader_a"
    assert open_task(db, case.id).form_key == "dispatch"
