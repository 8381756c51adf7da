"""Permissions, CSRF, bad input and concurrent completion through the web UI."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from tests.conftest import building_id, dispatch, intake, latest_case, open_task, user_id
from tracker.models import AuditEvent, Case, Grid, Task


def _case_in_grid(login, db, grid: str = "GA"):
    """Record a case in a grid as its member and return it."""
    member = login("member_a" if grid == "GA" else "member_b")
    response = member.submit("/cases/new", intake(db, building_id=str(building_id(db, grid))))
    assert response.status_code == 302
    return latest_case(db)


def test_member_of_grid_b_gets_403_on_grid_a_case_and_task(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    other = login("member_b")
    assert other.get(f"/cases/{case.id}").status_code == 403
    assert other.get(f"/tasks/{task.id}").status_code == 403
    assert other.submit(f"/tasks/{task.id}", {"dispatch_to": "member"}, page="/cases/new").status_code == 403
    assert other.submit(f"/tasks/{task.id}/claim", {"version": "1"}, page="/").status_code == 403
    assert case.number not in other.get("/cases/").get_data(as_text=True)
    assert open_task(db, case.id).id == task.id


def test_leader_of_grid_b_cannot_see_grid_a_but_the_auditor_can_only_read(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    assert login("leader_b").get(f"/cases/{case.id}").status_code == 403
    auditor = login("auditor")
    assert auditor.get(f"/cases/{case.id}").status_code == 200
    assert case.number in auditor.get("/cases/").get_data(as_text=True)
    response = auditor.submit(f"/tasks/{task.id}", {"dispatch_to": "member", "handler_id": "1",
                                                     "deadline_class": "general", "version": "9"})
    assert response.status_code == 403
    assert auditor.get("/cases/new").status_code == 403


def test_member_cannot_dispatch(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    member = login("member_a")
    page = member.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert 'name="dispatch_to"' not in page
    response = member.submit(f"/tasks/{task.id}", {
        "dispatch_to": "member", "handler_id": str(user_id(db, "member_a")), "department_id": "0",
        "deadline_class": "general", "version": str(case.version)})
    assert response.status_code == 403
    assert open_task(db, case.id).name == "dispatch"


def test_roles_are_per_grid_a_member_in_b_may_lead_in_a(login, db):
    case = _case_in_grid(login, db, "GA")
    mixed = login("mixed")
    _ = mixed.get("/")
    assert dispatch(mixed, db, case.id).status_code == 302
    assert open_task(db, case.id).name == "handle_member"
    # ... but the member role in grid B gives no right to handle grid A's member task.
    assert mixed.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "x"}).status_code == 403


def test_assigned_task_belongs_to_its_assignee_only(login, db):
    case = _case_in_grid(login, db, "GA")
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    colleague = login("member_a2")
    task = open_task(db, case.id)
    assert colleague.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "x"}).status_code == 403


def test_claiming_a_pool_task_moves_it_to_my_inbox(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    leader = login("leader_a")
    response = leader.submit(f"/tasks/{task.id}/claim", {}, page=f"/tasks/{task.id}")
    assert response.status_code == 302
    assert open_task(db, case.id).assignee_id == user_id(db, "leader_a")
    other_leader = login("leader_a2")
    assert other_leader.submit(f"/tasks/{task.id}", {"dispatch_to": "member", "handler_id": "1",
                                                      "deadline_class": "general", "version": "99"}).status_code == 403


def test_invalid_phone_rerenders_with_a_message_and_saves_nothing(login, db):
    member = login("member_a")
    response = member.submit("/cases/new", intake(db, resident_phone="12345"))
    assert response.status_code == 422
    assert "电话号码无效" in response.get_data(as_text=True)
    assert 'value="张阿姨"' in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_missing_building_rerenders_with_a_message_and_saves_nothing(login, db):
    member = login("member_a")
    for bad in ("-1", "", "999999", str(building_id(db, "GB"))):
        response = member.submit("/cases/new", intake(db, building_id=bad))
        assert response.status_code == 422, bad
        if bad in ("-1", ""):
            assert "请选择诉求所在的楼院" in response.get_data(as_text=True), bad
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    assert db.scalar(select(func.count()).select_from(Task)) == 0


def test_post_without_csrf_token_is_refused(login, db):
    member = login("member_a")
    response = member.client.post("/cases/new", data=intake(db))
    assert response.status_code == 400
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    page = response.get_data(as_text=True)
    assert "表单已过期" in page and "CSRF" not in page  # said in the person's language, without the jargon


def test_wrong_password_is_refused(app):
    from tests.conftest import Browser
    browser = Browser(app.test_client())
    response = browser.submit("/login", {"username": "member_a", "password": "wrong"})
    assert response.status_code == 401
    assert browser.get("/").status_code == 302


def test_stale_form_gets_the_conflict_message_and_nothing_is_lost(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    first, second = login("leader_a"), login("leader_a2")
    pages = [b.get(f"/tasks/{task.id}").get_data(as_text=True) for b in (first, second)]
    from tests.conftest import csrf_token
    data = {"dispatch_to": "member", "department_id": "0", "deadline_class": "general",
            "version": str(case.version)}
    ok = first.client.post(f"/tasks/{task.id}", data={**data, "handler_id": str(user_id(db, "member_a")),
                                                      "csrf_token": csrf_token(pages[0])})
    lost = second.client.post(f"/tasks/{task.id}", data={**data, "handler_id": str(user_id(db, "member_a2")),
                                                         "csrf_token": csrf_token(pages[1])})
    assert ok.status_code == 302
    assert lost.status_code == 409
    assert "该任务已由网格长甲办理完毕，请刷新" in lost.get_data(as_text=True)
    case = latest_case(db)
    assert case.handler_id == user_id(db, "member_a")
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "task.dispatch")) == 1


def test_two_truly_concurrent_completions_one_wins_one_conflicts(login, db):
    case = _case_in_grid(login, db, "GA")
    task = open_task(db, case.id)
    browsers = [login("leader_a"), login("leader_a2")]
    from tests.conftest import csrf_token
    tokens = [csrf_token(b.get(f"/tasks/{task.id}").get_data(as_text=True)) for b in browsers]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def submit(i: int) -> None:
        barrier.wait()
        response = browsers[i].client.post(f"/tasks/{task.id}", data={
            "dispatch_to": "member", "handler_id": str(user_id(db, ("member_a", "member_a2")[i])),
            "department_id": "0", "deadline_class": "general", "version": str(case.version),
            "csrf_token": tokens[i]})
        results.append(response.status_code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == [302, 409]
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "task.dispatch")) == 1
    assert open_task(db, case.id).name == "handle_member"
    assert latest_case(db).handler_id in (user_id(db, "member_a"), user_id(db, "member_a2"))


def test_archived_case_is_read_only(login, db):
    member, leader = login("member_a"), login("leader_a")
    member.submit("/cases/new", intake(db, disposition="on_spot", reply="已答复"))
    case = latest_case(db)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "satisfied"})
    last = open_task(db, case.id)
    leader.submit(f"/tasks/{last.id}", {"confirm": "y"})
    case = latest_case(db)
    assert case.status == "archived"
    response = leader.submit(f"/tasks/{last.id}", {"confirm": "y", "version": str(case.version)})
    assert response.status_code == 409
    assert db.scalar(select(func.count()).select_from(Task).where(Task.case_id == case.id, Task.status == "open")) == 0


def test_grid_filter_options_escape_grid_names_and_keep_the_chosen_grid(login, db):
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    grid.name = '<b onmouseover="x()">A</b>'
    db.commit()
    html = login("leader_a").get(f"/cases/?grid={grid.id}").get_data(as_text=True)
    assert f'<option value="{grid.id}" selected>GA &lt;b onmouseover=&#34;x()&#34;&gt;A&lt;/b&gt;</option>' in html
    assert "<b onmouseover" not in html
