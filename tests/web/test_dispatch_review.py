"""Dispatch and review as offices do them: the dispatch note, proposals and loads, returns, rework, recall."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, Browser, configured_app, dispatch, intake, latest_case, open_task, user_id
from tracker.models import (
    AuditEvent,
    Case,
    CaseStatus,
    Department,
    Membership,
    Notification,
    Task,
    TaskStatus,
    Timer,
    User,
)
from tracker.services.audit import verify_chain


def _new_case(login, db, **overrides) -> Case:
    """Record a case in grid A (sent on for dispatch) as member_a."""
    assert login("member_a").submit("/cases/new", intake(db, **overrides)).status_code == 302
    return latest_case(db)


def _events(db, case_id: int) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)))


def _notices(db, kind: str) -> list[Notification]:
    db.expire_all()
    return list(db.scalars(select(Notification).where(Notification.kind == kind)))


def _refer(leader, db, case_id: int, note: str = ""):
    """Refer a case's open dispatch task to the seed department."""
    department = db.scalar(select(Department.id))
    return leader.submit(f"/tasks/{open_task(db, case_id).id}", {
        "dispatch_to": "department", "handler_id": "0", "department_id": str(department),
        "deadline_class": "general", "dispatch_note": note})


def _to_review(login, db, handler: str = "member_a2") -> Case:
    """A case dispatched to ``handler``, done, called back satisfied: waiting for archive review."""
    case = _new_case(login, db)
    leader = login("leader_a")
    dispatch(leader, db, case.id, handler=handler)
    task = open_task(db, case.id)
    assert login(handler).submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已修好"}).status_code == 302
    task = open_task(db, case.id)
    who = db.get(User, task.assignee_id).username if task.assignee_id else "member_a"
    assert login(who).submit(f"/tasks/{task.id}", {"satisfaction": "satisfied"}).status_code == 302
    assert open_task(db, case.id).name == "review_archive"
    return latest_case(db)


# -- dispatch --------------------------------------------------------------------------------------------

def test_dispatch_note_reaches_the_handlers_task_page_and_the_chain(login, db):
    case = _new_case(login, db)
    leader = login("leader_a")
    response = leader.submit(f"/tasks/{open_task(db, case.id).id}", {
        "dispatch_to": "member", "handler_id": str(user_id(db, "member_a2")), "department_id": "0",
        "deadline_class": "general", "dispatch_note": "先电话联系张阿姨，傍晚上门"})
    assert response.status_code == 302
    page = login("member_a2").get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert "先电话联系张阿姨，傍晚上门" in page and "派单意见" in page
    dispatched = [e for e in _events(db, case.id) if e.action == "task.dispatch"][-1]
    assert json.loads(dispatched.changes)["form.dispatch_note"] == [None, "先电话联系张阿姨，傍晚上门"]
    assert verify_chain(db, case.id).ok


def test_every_task_page_shows_channel_urgency_and_green_channel(login, db):
    case = _new_case(login, db, urgency="urgent", green_channel="elderly", channel="wechat")
    page = login("leader_a").get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    for text in ("微信", "紧急", "老年人"):
        assert text in page, text


def test_dispatch_form_proposes_limit_and_department_and_shows_loads(login, db):
    case = _new_case(login, db, urgency="emergency")
    other = _new_case(login, db, category="property_repair")
    leader = login("leader_a")
    dispatch(leader, db, other.id, handler="member_a2")
    page = leader.get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert '<option selected value="emergency">' in page
    department = db.scalar(select(Department))
    # The seed department's code is "property", which [dispatch] departments maps property_repair to.
    assert f'<option selected value="{department.id}">' in page
    assert "（该类别建议转办）" in page
    assert "网格员乙 — 在办 1，超期 0" in page  # member_a2 holds the other case
    assert "网格员甲 — 在办 0，超期 0" in page
    normal = _new_case(login, db, category="legal")
    page = leader.get(f"/tasks/{open_task(db, normal.id).id}").get_data(as_text=True)
    assert '<option selected value="complex">' in page


def test_urgent_case_is_proposed_the_24_hour_limit(login, db):
    case = _new_case(login, db, urgency="urgent", category="other")
    page = login("leader_a").get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert '<option selected value="utilities">' in page


def test_returned_case_shows_why_and_its_history_and_hides_the_old_limit(login, db):
    case = _new_case(login, db)
    leader = login("leader_a")
    assert _refer(leader, db, case.id).status_code == 302
    dept = login("dept")
    task = open_task(db, case.id)
    assert dept.submit(f"/tasks/{task.id}", {"handle_action": "return", "text": "不属于物业范围"}).status_code == 302
    dispatch(leader, db, case.id, handler="member_a")
    task = open_task(db, case.id)
    assert login("member_a").submit(f"/tasks/{task.id}", {"handle_action": "return", "text": "需要专业电工"}).status_code == 302
    page = leader.get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert page.index("不属于物业范围") < page.index("需要专业电工")  # the history, oldest first
    assert "退单" in page
    detail = leader.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "已退回，等待重新派单" in detail
    assert latest_case(db).due_at is not None  # still recorded, no longer shown as the case's limit
    facts = detail.split('class="facts"')[1].split("</dl>")[0]
    assert "物业维修中心" not in facts and "<dt>截止时间</dt>" not in facts
    assert "网格员甲" not in facts.split("<dt>派往</dt>")[1]
    board = leader.get("/board", follow_redirects=True).get_data(as_text=True)
    row = board.split('class="k-return"')[1].split("</tr>")[0]
    assert "—" in row and "超期" not in row


def test_dispatch_note_is_in_the_api_schema_and_accepted(app, login, db):
    from tracker.openapi import task_data
    assert "dispatch_note" in task_data({})["dispatch"]["properties"]


# -- archive review: rework ------------------------------------------------------------------------------

def test_archive_review_sends_back_for_rework_to_the_same_handler_with_a_new_limit(login, db):
    case = _to_review(login, db)
    old_due = case.due_at
    leader = login("leader_a")
    response = leader.submit(f"/tasks/{open_task(db, case.id).id}", {
        "archive_decision": "rework", "comment": "照片不清楚，请补充维修结果"})
    assert response.status_code == 302
    case = latest_case(db)
    task = open_task(db, case.id)
    assert (case.status, task.name, task.assignee_id) == (CaseStatus.HANDLING, "handle_member",
                                                          user_id(db, "member_a2"))
    assert case.due_at is not None and case.due_at > old_due and case.signed_at is None
    assert db.scalar(select(Timer).where(Timer.case_id == case.id)) is not None
    [notice] = _notices(db, "rework")
    assert notice.user_id == user_id(db, "member_a2")
    assert json.loads(notice.params) == {"number": case.number, "by": "网格长甲", "reason": "照片不清楚，请补充维修结果"}
    page = login("member_a2").get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "照片不清楚，请补充维修结果" in page and "退回重办" in page
    history = leader.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "已退回重办" in history and "审核归档" in history
    assert verify_chain(db, case.id).ok


def test_rework_needs_a_reason_and_archive_needs_the_tick(login, db):
    case = _to_review(login, db)
    leader = login("leader_a")
    task = open_task(db, case.id)
    response = leader.submit(f"/tasks/{task.id}", {"archive_decision": "rework", "comment": ""})
    assert response.status_code == 422
    assert "请写明退回重办的理由" in response.get_data(as_text=True)
    response = leader.submit(f"/tasks/{task.id}", {"archive_decision": "archive"})
    assert response.status_code == 422
    assert open_task(db, case.id).id == task.id and latest_case(db).status == CaseStatus.ARCHIVE_REVIEW
    assert leader.submit(f"/tasks/{task.id}", {"archive_decision": "archive", "confirm": "y"}).status_code == 302
    assert latest_case(db).status == CaseStatus.ARCHIVED


def test_rework_through_the_api(app, login, db):
    from tests.web.test_api import make_token  # the API tests' token helper
    case = _to_review(login, db)
    token = make_token(app, "leader_a")[1]
    task = open_task(db, case.id)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    bad = client.post(f"/api/v1/tasks/{task.id}/complete", headers=headers,
                      json={"version": case.version, "data": {"archive_decision": "rework"}})
    assert bad.status_code == 422
    assert any(e["field"] == "data.comment" for e in bad.get_json()["errors"])
    good = client.post(f"/api/v1/tasks/{task.id}/complete", headers=headers,
                       json={"version": case.version, "data": {"archive_decision": "rework", "comment": "重办"}})
    assert good.status_code == 200, good.get_json()
    assert good.get_json()["status"] == "handling"


# -- recall ----------------------------------------------------------------------------------------------

def test_leader_recalls_a_referred_case_back_to_dispatch(login, db):
    case = _new_case(login, db)
    leader = login("leader_a")
    assert _refer(leader, db, case.id).status_code == 302
    task = open_task(db, case.id)
    page = leader.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'id="recall"' in page
    assert 'id="recall"' not in login("dept").get(f"/tasks/{task.id}").get_data(as_text=True)
    bad = leader.submit(f"/tasks/{task.id}/recall", {"reason": ""}, page=f"/tasks/{task.id}")
    assert bad.status_code == 422 and open_task(db, case.id).id == task.id
    response = leader.submit(f"/tasks/{task.id}/recall", {"reason": "应由城管处理"}, page=f"/tasks/{task.id}")
    assert response.status_code == 302
    case = latest_case(db)
    assert case.status == CaseStatus.DISPATCHING and open_task(db, case.id).name == "dispatch"
    assert db.get(Task, task.id).status == TaskStatus.DONE
    assert db.scalar(select(Timer).where(Timer.case_id == case.id)) is None
    [notice] = _notices(db, "recalled")
    assert notice.user_id == user_id(db, "dept")
    assert json.loads(notice.params) == {"by": "网格长甲", "number": case.number, "reason": "应由城管处理"}
    recalled = [e for e in _events(db, case.id) if e.action == "case.recalled"]
    assert json.loads(recalled[0].changes)["reason"] == [None, "应由城管处理"]
    dispatch_page = leader.get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert "应由城管处理" in dispatch_page and "撤回" in dispatch_page
    assert "从职能部门撤回" in leader.get(f"/cases/{case.id}").get_data(as_text=True)
    diagram = leader.get(f"/cases/{case.id}/diagram").get_data(as_text=True)
    assert '<g class="flow taken" data-id="f_recalled_back">' in diagram  # the path taken, drawn
    board = leader.get("/board", follow_redirects=True).get_data(as_text=True)
    row = board.split('class="k-recall"')[1].split("</tr>")[0]
    assert "撤回：需重新派单" in row and case.number in row
    assert verify_chain(db, case.id).ok


def test_recall_is_for_leaders_of_the_grid_and_referrals_only(login, db):
    case = _new_case(login, db)
    leader = login("leader_a")
    assert _refer(leader, db, case.id).status_code == 302
    task = open_task(db, case.id)
    for who in ("member_a", "dept", "leader_b"):
        response = login(who).submit(f"/tasks/{task.id}/recall", {"reason": "x"}, page=f"/cases/{case.id}")
        assert response.status_code == 403, who
    member_case = _new_case(login, db)
    dispatch(leader, db, member_case.id)
    member_task = open_task(db, member_case.id)
    assert leader.submit(f"/tasks/{member_task.id}/recall", {"reason": "x"},
                         page=f"/tasks/{member_task.id}").status_code == 403
    assert open_task(db, case.id).id == task.id


# -- callback and extension review -----------------------------------------------------------------------

def test_dissatisfied_callback_needs_a_note(login, db):
    case = _new_case(login, db)
    dispatch(login("leader_a"), db, case.id, handler="member_a2")
    task = open_task(db, case.id)
    login("member_a2").submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已修好"})
    task = open_task(db, case.id)
    member = login("member_a")
    response = member.submit(f"/tasks/{task.id}", {"satisfaction": "dissatisfied", "note": ""})
    assert response.status_code == 422 and "请写明居民不满意的地方" in response.get_data(as_text=True)
    assert open_task(db, case.id).id == task.id
    assert member.submit(f"/tasks/{task.id}", {"satisfaction": "dissatisfied", "note": "灯还是不亮"}).status_code == 302
    assert latest_case(db).status == CaseStatus.HANDLING


def test_extension_review_shows_the_handlers_reason_and_the_limit_if_approved(app, login, db):
    case = _new_case(login, db)
    leader = login("leader_a")
    dispatch(leader, db, case.id)
    task = open_task(db, case.id)
    login("member_a").submit(f"/tasks/{task.id}", {"handle_action": "extend", "text": "等配件到货",
                                                    "extension_days": "3"})
    page = leader.get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert "办理人理由" in page and "等配件到货" in page
    due = latest_case(db).due_at
    extended = app.extensions["gridloop.calendar"].add_working_days(due, 3)
    shown = page.split('class="extended-due">')[1].split("<")[0]
    assert "同意后的截止时间" in page and shown == extended.astimezone(ZoneInfo("Asia/Shanghai")).strftime(
        "%Y-%m-%d %H:%M")


@pytest.fixture
def office(database_url):
    """An app with config.toml's default: the member who handled a case does not call the resident back."""
    with configured_app(database_url, loop={"callback_by_other_member": True}) as app:
        engine = create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")
        session = Session(engine, expire_on_commit=False)

        def login(name: str) -> Browser:
            browser = Browser(app.test_client())
            assert browser.submit("/login", {"username": name, "password": PASSWORD}).status_code == 302
            return browser
        yield login, session
        session.close()
        engine.dispose()


def _handled(login, db, handler: str) -> Case:
    """member_a records a case, leader_a dispatches it to ``handler``, who reports it done."""
    case = _new_case(login, db)
    dispatch(login("leader_a"), db, case.id, handler=handler)
    assert login(handler).submit(f"/tasks/{open_task(db, case.id).id}",
                                 {"handle_action": "done", "text": "已修好"}).status_code == 302
    return case


def test_the_handler_is_not_given_the_callback_when_another_member_can_take_it(office):
    login, db = office
    case = _handled(login, db, "member_a")  # recorded and handled by member_a
    callback = open_task(db, case.id)
    assert callback.name == "callback" and callback.assignee_id == user_id(db, "member_a2")


def test_the_recorder_still_calls_back_when_someone_else_handled_it(office):
    login, db = office
    case = _handled(login, db, "member_a2")
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")


def test_the_handler_calls_back_when_no_other_member_is_in_the_grid(office):
    login, db = office
    db.execute(delete(Membership).where(Membership.user_id == user_id(db, "member_a2")))
    case = _handled(login, db, "member_a")
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")


def test_callback_by_the_handler_when_configured(login, db):
    case = _handled(login, db, "member_a")  # the tests' settings turn the rule off
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")


def test_a_bad_dispatch_proposal_stops_the_start_naming_the_key():
    from tracker.config import ConfigError, load_config
    with pytest.raises(ConfigError, match=r"dispatch\.deadline_classes\.legal must be one of"):
        load_config(overrides={"dispatch": {"deadline_classes": {"legal": "someday"}}})
    with pytest.raises(ConfigError, match=r"dispatch\.departments\.legal must be a department code"):
        load_config(overrides={"dispatch": {"departments": {"legal": 7}}})


def test_a_case_on_the_previous_process_version_is_neither_reworked_nor_recalled(app, login, db, tmp_path,
                                                                                 monkeypatch):
    """That version knows neither path: the leader is told so, and nothing changes (it is never archived)."""
    from tests.web.test_versions import PREVIOUS
    from tracker import create_app, web
    bpmn = tmp_path / "bpmn"
    bpmn.mkdir()
    (bpmn / "case_closed_loop.bpmn").write_text(PREVIOUS.read_text(encoding="utf-8"), encoding="utf-8")
    with monkeypatch.context() as previous_release:
        previous_release.setattr(web, "check_statuses", lambda engine, definitions, process_id: (definitions, []))
        old_app = create_app({"app": {"database_url": app.config["DATABASE_URL"], "bpmn_dir": str(bpmn),
                                      "session_lifetime_hours": 24, "session_max_days": 4}})
    old = Browser(old_app.test_client())
    assert old.submit("/login", {"username": "member_a", "password": PASSWORD}).status_code == 302
    assert old.submit("/cases/new", intake(db)).status_code == 302
    assert old.submit("/cases/new", intake(db)).status_code == 302
    old_app.extensions["gridloop.db"].dispose()
    reviewed, referred = latest_case(db).id - 1, latest_case(db).id
    leader = login("leader_a")
    dispatch(leader, db, reviewed, handler="member_a2")
    login("member_a2").submit(f"/tasks/{open_task(db, reviewed).id}", {"handle_action": "done", "text": "已修好"})
    login("member_a").submit(f"/tasks/{open_task(db, reviewed).id}", {"satisfaction": "satisfied"})
    review = open_task(db, reviewed)
    response = leader.submit(f"/tasks/{review.id}", {"archive_decision": "rework", "comment": "补充照片"})
    assert response.status_code == 422 and "旧版流程" in response.get_data(as_text=True)
    assert open_task(db, reviewed).id == review.id and db.get(Case, reviewed).status == CaseStatus.ARCHIVE_REVIEW
    assert _notices(db, "rework") == []
    _refer(leader, db, referred)
    handle = open_task(db, referred)
    response = leader.submit(f"/tasks/{handle.id}/recall", {"reason": "应由城管处理"}, page=f"/tasks/{handle.id}")
    assert response.status_code == 422 and "旧版流程" in response.get_data(as_text=True)
    assert open_task(db, referred).id == handle.id and _notices(db, "recalled") == []
    assert verify_chain(db, reviewed).ok and verify_chain(db, referred).ok
