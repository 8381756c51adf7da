"""Leaders move work: reassign, release, bulk handover, stand-in cover, the workload board."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select, text, update
from werkzeug.security import generate_password_hash

from tests.conftest import PASSWORD, allow_audit, dispatch, intake, latest_case, open_task, refuse_audit, user_id
from tracker.models import AuditEvent, Case, Cover, Grid, Membership, Notification, Role, Task, TaskStatus, User
from tracker.services.audit import verify_chain


def _preview_fingerprint(html: str) -> str:
    """Return the fingerprint a handover preview page carries (to send back with the confirmation)."""
    return re.search(r'id="fingerprint" name="fingerprint" type="hidden" value="([^"]+)"', html).group(1)


def _handling_case(login, db, handler: str = "member_a") -> Case:
    """Record a case in grid A and dispatch it to ``handler``."""
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id, handler=handler)
    return latest_case(db)


def _add_member(db, username: str, grid_code: str = "GA") -> int:
    """Add one more grid member to a grid."""
    grid = db.scalar(select(Grid).where(Grid.code == grid_code))
    user = User(username=username, display_name=f"网格员{username}", password_hash=generate_password_hash(PASSWORD),
                memberships=[Membership(role=Role.GRID_MEMBER, grid_id=grid.id)])
    db.add(user)
    db.flush()
    return user.id


def test_leader_reassigns_a_handling_task_with_a_reason(login, db):
    case = _handling_case(login, db)
    task = open_task(db, case.id)
    leader = login("leader_a")
    page = leader.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "重新分派" in page or "Reassign" in page
    response = leader.submit(f"/tasks/{task.id}/reassign", {
        "assignee_id": str(user_id(db, "member_a2")), "reason": "甲请病假"}, page=f"/tasks/{task.id}")
    assert response.status_code == 302
    task = open_task(db, case.id)
    case = latest_case(db)
    assert task.assignee_id == case.handler_id == user_id(db, "member_a2")
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq.desc())).first()
    assert event.action == "task.reassigned" and event.actor_name == "网格长甲"
    assert "甲请病假" in event.changes and "网格员乙" in event.changes
    assert db.scalar(select(Notification.kind).where(Notification.user_id == user_id(db, "member_a2"))) == "assigned"
    assert verify_chain(db, case.id).ok
    # The old handler can no longer act; the new one can.
    assert login("member_a").submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "修好了"}).status_code == 403
    assert login("member_a2").submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "修好了"}).status_code == 302


def test_reassign_refuses_bad_input_and_changes_nothing(login, db):
    case = _handling_case(login, db)
    task = open_task(db, case.id)
    leader = login("leader_a")
    before = db.scalar(select(func.count()).select_from(AuditEvent))
    no_reason = leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": str(user_id(db, "member_a2")),
                                                              "reason": ""}, page=f"/tasks/{task.id}")
    assert no_reason.status_code == 422 and "请填写重新分派的原因" in no_reason.get_data(as_text=True)
    other_grid = leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": str(user_id(db, "member_b")),
                                                               "reason": "试试"}, page=f"/tasks/{task.id}")
    assert other_grid.status_code == 422
    assert "GA" in other_grid.get_data(as_text=True)
    same = leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": str(user_id(db, "member_a")),
                                                         "reason": "试试"}, page=f"/tasks/{task.id}")
    assert same.status_code == 422
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_stale_reassign_form_gets_a_conflict(login, db):
    case = _handling_case(login, db)
    task = open_task(db, case.id)
    leader = login("leader_a")
    html = leader.get(f"/tasks/{task.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    version = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html).group(1)
    # Someone signs for the case meanwhile: the leader's form is now stale.
    assert login("member_a").submit(f"/tasks/{task.id}/sign", {}, page=f"/tasks/{task.id}").status_code == 302
    response = leader.client.post(f"/tasks/{task.id}/reassign", data={
        "csrf_token": token, "version": version, "assignee_id": str(user_id(db, "member_a2")),
        "reason": "调整"})
    assert response.status_code == 409
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")


def test_release_puts_a_task_back_in_the_pool(login, db):
    case = _handling_case(login, db)
    task = open_task(db, case.id)
    assert login("leader_a").submit(f"/tasks/{task.id}/release", {}, page=f"/tasks/{task.id}").status_code == 302
    task = open_task(db, case.id)
    assert task.assignee_id is None and latest_case(db).handler_id is None
    # Anyone of the lane may claim it now.
    assert login("member_a2").submit(f"/tasks/{task.id}/claim", {}, page=f"/tasks/{task.id}").status_code == 302
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a2")
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)).all()
    assert actions[-2:] == ["task.released", "task.claimed"]


def test_handover_preview_then_confirm_moves_every_task(login, db):
    third = _add_member(db, "member_a3")
    cases = [_handling_case(login, db) for _ in range(4)]
    leader = login("leader_a")
    grid = cases[0].grid_id
    form = {"member_id": str(user_id(db, "member_a")), "to_ids": [str(user_id(db, "member_a2")), str(third)],
            "mode": "even", "reason": "甲调离本网格"}
    preview = leader.submit(f"/grids/{grid}/handover", form)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and html.count("<tr><td>") == 4
    fingerprint = _preview_fingerprint(html)
    # Nothing moved by the preview.
    db.expire_all()
    assert db.scalar(select(func.count()).where(Task.assignee_id == user_id(db, "member_a"),
                                                Task.status == TaskStatus.OPEN)) == 4
    done = leader.submit(f"/grids/{grid}/handover", {**form, "fingerprint": fingerprint, "confirm": "1"})
    assert done.status_code == 302
    db.expire_all()
    owners = db.scalars(select(Task.assignee_id).where(Task.case_id.in_([c.id for c in cases]),
                                                       Task.status == TaskStatus.OPEN)).all()
    assert sorted(owners) == sorted([user_id(db, "member_a2")] * 2 + [third] * 2)
    assert db.scalar(select(func.count()).where(AuditEvent.action == "task.handed_over")) == 4
    assert all(verify_chain(db, c.id).ok for c in cases)
    # Each receiver hears once, with the count.
    assert db.scalar(select(func.count()).where(Notification.kind == "handed_over")) == 2


def test_handover_refuses_a_task_set_changed_since_the_preview(login, db):
    cases = [_handling_case(login, db) for _ in range(2)]
    leader = login("leader_a")
    grid = cases[0].grid_id
    form = {"member_id": str(user_id(db, "member_a")), "to_ids": [str(user_id(db, "member_a2"))],
            "mode": "least_loaded", "reason": "休假"}
    fingerprint = _preview_fingerprint(leader.submit(f"/grids/{grid}/handover", form).get_data(as_text=True))
    _handling_case(login, db)  # a third task reaches member_a after the preview
    response = leader.submit(f"/grids/{grid}/handover", {**form, "fingerprint": fingerprint, "confirm": "1"})
    assert response.status_code == 409 and "预览" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).where(AuditEvent.action == "task.handed_over")) == 0


def test_handover_of_500_tasks_is_one_transaction(app, login, db):
    from tests.factories import dispatched_cases
    at = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
    ids = dispatched_cases(app, 500, at, "member_a", "leader_a")
    leader = login("leader_a")
    grid = db.scalar(select(Case.grid_id).where(Case.id == ids[0]))
    form = {"member_id": str(user_id(db, "member_a")), "to_ids": [str(user_id(db, "member_a2"))],
            "mode": "even", "reason": "整体移交"}
    fingerprint = _preview_fingerprint(leader.submit(f"/grids/{grid}/handover", form).get_data(as_text=True))
    # The database refuses the audit event of the very last task: nothing may move.
    refuse_audit(db, ids[-1])
    app.config["PROPAGATE_EXCEPTIONS"] = False
    failed = leader.submit(f"/grids/{grid}/handover", {**form, "fingerprint": fingerprint, "confirm": "1"})
    assert failed.status_code == 500
    db.expire_all()
    assert db.scalar(select(func.count()).where(Task.assignee_id == user_id(db, "member_a"),
                                                Task.status == TaskStatus.OPEN)) == 500
    assert db.scalar(select(func.count()).where(AuditEvent.action == "task.handed_over")) == 0
    allow_audit(db)
    done = leader.submit(f"/grids/{grid}/handover", {**form, "fingerprint": fingerprint, "confirm": "1"})
    assert done.status_code == 302
    db.expire_all()
    assert db.scalar(select(func.count()).where(Task.assignee_id == user_id(db, "member_a2"),
                                                Task.status == TaskStatus.OPEN)) == 500
    assert db.scalar(select(func.count()).where(AuditEvent.action == "task.handed_over")) == 500
    assert db.scalar(select(func.count(func.distinct(AuditEvent.case_id)))
                     .where(AuditEvent.action == "task.handed_over")) == 500


def _cover_form(db, **overrides) -> dict:
    today = dt.date.today()
    data = {"member_id": str(user_id(db, "member_a")), "stand_in_id": str(user_id(db, "member_a2")),
            "starts_on": today.isoformat(), "ends_on": (today + dt.timedelta(days=3)).isoformat(),
            "reason": "年假"}
    data.update(overrides)
    return data


def test_stand_in_cover_sends_new_work_to_the_stand_in(login, db):
    leader = login("leader_a")
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    assert leader.submit(f"/grids/{grid}/covers", _cover_form(db), page=f"/grids/{grid}/board").status_code == 302
    case = _handling_case(login, db, handler="member_a")
    task = open_task(db, case.id)
    assert task.assignee_id == user_id(db, "member_a2")
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq.desc())).first()
    assert "stand_in" in event.changes and "网格员乙" in event.changes
    # Ended: new work goes to the member again.
    cover = db.scalar(select(Cover.id))
    assert leader.submit(f"/covers/{cover}/end", {}, page=f"/grids/{grid}/board").status_code == 302
    case = _handling_case(login, db, handler="member_a")
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")


def test_bad_cover_is_refused_with_the_reason_and_saves_nothing(login, db):
    leader = login("leader_a")
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    today = dt.date.today()
    backwards = leader.submit(f"/grids/{grid}/covers", _cover_form(
        db, starts_on=(today + dt.timedelta(days=3)).isoformat(), ends_on=today.isoformat()),
        page=f"/grids/{grid}/board")
    assert backwards.status_code == 422 and "结束日期早于开始日期" in backwards.get_data(as_text=True)
    # What was typed stays in the form.
    assert "年假" in backwards.get_data(as_text=True)
    himself = leader.submit(f"/grids/{grid}/covers", _cover_form(db, stand_in_id=str(user_id(db, "member_a"))),
                            page=f"/grids/{grid}/board")
    assert "请选择本网格的另一名网格员代班" in himself.get_data(as_text=True)
    not_a_date = leader.submit(f"/grids/{grid}/covers", _cover_form(db, ends_on="下周五"), page=f"/grids/{grid}/board")
    assert not_a_date.status_code == 422 and "2026-12-01" in not_a_date.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Cover)) == 0


def test_board_counts_open_due_soon_and_overdue_per_member(login, db):
    cases = [_handling_case(login, db) for _ in range(3)]
    now = dt.datetime.now(dt.UTC)
    db.execute(update(Task).where(Task.case_id == cases[0].id).values(due_at=now - dt.timedelta(hours=2)))
    db.execute(update(Task).where(Task.case_id == cases[1].id).values(due_at=now + dt.timedelta(hours=3)))
    page = login("leader_a").get(f"/grids/{cases[0].grid_id}/board").get_data(as_text=True)
    row = re.search(r'<tr data-user="member_a">(.*?)</tr>', page, re.S).group(1)
    cells = re.findall(r'<td class="num [^"]+"[^>]*>(.*?)</td>', row, re.S)
    numbers = [re.sub(r"<[^>]+>", "", c).strip() for c in cells]
    assert numbers == ["3", "1", "1"]


def test_returned_case_and_extension_request_wait_on_the_board(login, db):
    returned = _handling_case(login, db)
    member = login("member_a")
    member.submit(f"/tasks/{open_task(db, returned.id).id}", {"handle_action": "return", "text": "不归我们网格管"})
    extended = _handling_case(login, db)
    member.submit(f"/tasks/{open_task(db, extended.id).id}", {"handle_action": "extend", "text": "等配件",
                                                                "extension_days": "3"})
    page = login("leader_a").get(f"/grids/{returned.grid_id}/board").get_data(as_text=True)
    assert re.search(r'class="k-return".*?' + returned.number, page, re.S)
    assert re.search(r'class="k-extension".*?' + extended.number, page, re.S)


def test_permission_matrix_for_leader_actions(login, db, app):
    case = _handling_case(login, db)
    task = open_task(db, case.id)
    grid_a = case.grid_id
    reassign = {"assignee_id": str(user_id(db, "member_a2")), "reason": "x"}
    handover = {"member_id": str(user_id(db, "member_a")), "to_ids": [str(user_id(db, "member_a2"))],
                "mode": "even", "reason": "x"}
    page = f"/cases/{case.id}"
    for username in ("member_a", "member_a2", "leader_b", "auditor", "street", "dept"):
        who = login(username)
        assert who.submit(f"/tasks/{task.id}/reassign", reassign, page=page).status_code in (403, 404), username
        assert who.submit(f"/grids/{grid_a}/handover", handover, page=page).status_code == 403, username
        assert who.submit(f"/grids/{grid_a}/covers", _cover_form(db), page=page).status_code == 403, username
        assert who.get(f"/grids/{grid_a}/board").status_code == 403, username
    # Only the holder or a leader releases a task.
    task_page = f"/tasks/{task.id}"
    assert login("member_a2").submit(f"/tasks/{task.id}/release", {}, page=task_page).status_code == 403
    assert login("auditor").submit(f"/tasks/{task.id}/release", {}, page=task_page).status_code == 403
    # The leader of both grids' neighbour ("mixed" leads grid A) may act.
    assert login("mixed").get(f"/grids/{grid_a}/board").status_code == 200
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")
    assert db.scalar(select(func.count()).select_from(Cover)) == 0


def test_confirming_other_receivers_than_previewed_is_refused(login, db):
    third = _add_member(db, "member_a3")
    cases = [_handling_case(login, db) for _ in range(2)]
    leader = login("leader_a")
    grid = cases[0].grid_id
    form = {"member_id": str(user_id(db, "member_a")), "to_ids": [str(user_id(db, "member_a2"))],
            "mode": "even", "reason": "休假"}
    fingerprint = _preview_fingerprint(leader.submit(f"/grids/{grid}/handover", form).get_data(as_text=True))
    response = leader.submit(f"/grids/{grid}/handover", {**form, "to_ids": [str(third)],
                                                         "fingerprint": fingerprint, "confirm": "1"})
    assert response.status_code == 409
    assert db.scalar(select(func.count()).where(AuditEvent.action == "task.handed_over")) == 0


def test_a_stand_in_who_left_the_grid_takes_nothing(login, db):
    leader = login("leader_a")
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    assert leader.submit(f"/grids/{grid}/covers", _cover_form(db), page=f"/grids/{grid}/board").status_code == 302
    db.execute(text("DELETE FROM membership WHERE user_id = :u"), {"u": user_id(db, "member_a2")})
    case = _handling_case(login, db, handler="member_a")
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")
