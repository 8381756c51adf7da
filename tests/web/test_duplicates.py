"""Duplicates (重复件): the warning at intake, linking to a main case, the result passed on, unlinking."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select

from tests.conftest import building_id, dispatch, intake, latest_case, open_task
from tests.factories import assert_day_totals_current
from tracker.models import AuditEvent, Case, DuplicateLink, Task, TaskStatus
from tracker.services.audit import verify_chain
from tracker.services.duplicates import shingles, similarity

# -- similar text: character bigrams -------------------------------------------------------------------

def test_chinese_is_compared_by_character_bigrams_not_words():
    assert shingles("楼道灯不亮。") == {"楼道", "道灯", "灯不", "不亮"}
    assert shingles("灯") == {"灯"} and shingles(" ，") == set()
    assert similarity("楼道灯不亮", "3单元楼道的灯坏了，晚上不亮") == 0.5
    assert similarity("楼道灯不亮", "楼道灯不亮了") == 1.0
    assert similarity("楼道灯不亮", "孩子入学证明") == 0.0
    assert similarity("", "楼道灯不亮") == 0.0


# -- the warning at intake -------------------------------------------------------------------------------

def _form(browser) -> dict:
    """Load the intake page and return its hidden fields (CSRF token, one-time key)."""
    html = browser.get("/cases/new").get_data(as_text=True)
    return dict(re.findall(r'name="(csrf_token|intake_key)" type="hidden" value="([^"]+)"', html))


def _post(browser, db, fields: dict, **data):
    return browser.client.post("/cases/new", data={**fields, **intake(db, **data)})


def _record(browser, db, **data) -> Case:
    response = _post(browser, db, _form(browser), duplicates="check", **data)
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    browser.get(response.location)
    return latest_case(db)


def _count(db) -> int:
    return len(db.scalars(select(Case.id)).all())


def test_the_same_phone_warns_before_saving_and_saving_anyway_records(login, db):
    member = login("member_a")
    first = _record(member, db, resident_phone="13912345678", description="楼道灯不亮")
    fields = _form(member)
    response = _post(member, db, fields, duplicates="check", resident_phone="139 1234 5678",
                     description="孩子入学要开居住证明", category="certificates")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="duplicate-warning"' in page
    assert first.number in page and f'/cases/{first.id}' in page
    assert _count(db) == 1  # nothing saved yet
    # What was typed stays in the form; the person records it anyway.
    assert "孩子入学要开居住证明" in page and 'value="confirmed"' in page
    response = _post(member, db, fields, duplicates="confirmed", resident_phone="139 1234 5678",
                     description="孩子入学要开居住证明", category="certificates")
    assert response.status_code == 302 and _count(db) == 2


def test_similar_text_in_the_same_building_and_category_warns_other_text_does_not(login, db):
    member = login("member_a")
    first = _record(member, db, resident_phone="13912345678", description="3单元楼道的灯坏了，晚上不亮")
    response = _post(member, db, _form(member), duplicates="check", resident_phone="13700000000",
                     description="楼道灯不亮")
    assert response.status_code == 200 and first.number in response.get_data(as_text=True)
    # Other text, or another category, or another building: no warning.
    for phone, data in (("13600000001", {"description": "小区里有人乱停车"}),
                        ("13600000002", {"description": "楼道灯不亮", "category": "other"}),
                        ("13600000003", {"description": "楼道灯不亮", "building_id": str(building_id(db, "GB"))})):
        browser = login("mixed") if "building_id" in data else member
        response = _post(browser, db, _form(browser), duplicates="check", resident_phone=phone, **data)
        assert response.status_code in (302, 403), (data, response.get_data(as_text=True)[:500])
        if response.status_code == 302:
            assert 'id="duplicate-warning"' not in browser.get(response.location).get_data(as_text=True)


def test_the_window_is_configurable(app, login, db):
    member = login("member_a")
    _record(member, db, resident_phone="13912345678", description="楼道灯不亮")
    case = latest_case(db)
    db.execute(Case.__table__.update().where(Case.id == case.id)
               .values(created_at=case.created_at - dt.timedelta(days=40)))
    # Older than the window (30 days) and still open: the same phone still warns (open), similar text does not.
    response = _post(member, db, _form(member), duplicates="check", resident_phone="13700000000",
                     description="楼道灯不亮")
    assert response.status_code == 302
    app.config["GRIDLOOP"]["duplicates"]["window_days"] = 60
    response = _post(member, db, _form(member), duplicates="check", resident_phone="13600000000",
                     description="楼道灯不亮")
    assert response.status_code == 200 and case.number in response.get_data(as_text=True)


def test_the_warning_shows_only_cases_the_person_may_read(login, db):
    mixed = login("mixed")  # leader in grid A, member in grid B
    _record(login("member_b"), db, resident_phone="13912345678", building_id=str(building_id(db, "GB")))
    hidden = latest_case(db)
    member = login("member_a")
    response = _post(member, db, _form(member), duplicates="check", resident_phone="13912345678")
    assert response.status_code == 302  # grid B's case is not member_a's to see
    response = _post(mixed, db, _form(mixed), duplicates="check", resident_phone="13912345678",
                     building_id=str(building_id(db, "GB")), description="另一件事")
    assert response.status_code == 200 and hidden.number in response.get_data(as_text=True)


# -- linking ----------------------------------------------------------------------------------------------

def _link(leader, db, case: Case, main_number: str):
    return leader.submit(f"/cases/{case.id}/link", {"main_number": main_number}, page=f"/cases/{case.id}")


def _events(db, case_id: int) -> list[tuple[str, dict]]:
    db.expire_all()
    return [(e.action, json.loads(e.changes)) for e in
            db.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq))]


def _two_cases(login, db):
    member = login("member_a")
    main = _record(member, db, resident_phone="13912345678", description="楼道灯不亮")
    duplicate = _post(member, db, _form(member), duplicates="confirmed", resident_name="李师傅",
                      resident_phone="13700000000", description="3单元楼道灯坏了")
    assert duplicate.status_code == 302
    return member, main, latest_case(db)


def test_a_leader_links_a_duplicate_it_follows_the_main_case_and_gets_its_result_and_callback(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    page = leader.get(f"/cases/{duplicate.id}").get_data(as_text=True)
    assert 'id="link"' in page
    assert 'id="link"' not in member.get(f"/cases/{duplicate.id}").get_data(as_text=True)  # leaders only
    response = _link(leader, db, duplicate, main.number)
    assert response.status_code == 302
    db.expire_all()
    assert db.get(DuplicateLink, duplicate.id).main_case_id == main.id
    assert db.scalars(select(Task).where(Task.case_id == duplicate.id, Task.status == TaskStatus.OPEN)).all() == []
    assert ("case.linked", {"duplicate_of": [None, main.number]}) in _events(db, duplicate.id)
    assert ("case.duplicate_linked", {"duplicate": [None, duplicate.number]}) in _events(db, main.id)
    page = leader.get(f"/cases/{main.id}").get_data(as_text=True)
    assert duplicate.number in page and 'id="duplicates"' in page
    # The main case is handled: the duplicate goes on to its callback with the main case's result.
    dispatch(leader, db, main.id)
    member.submit(f"/tasks/{open_task(db, main.id).id}", {"handle_action": "done", "text": "已更换灯泡"})
    db.expire_all()
    follower = db.get(Case, duplicate.id)
    assert follower.status == "callback" and follower.result == "已更换灯泡" and follower.reply == "已更换灯泡"
    task = open_task(db, duplicate.id)
    assert task.name == "callback" and task.assignee_id == main.created_by_id  # the member who recorded it
    assert db.get(DuplicateLink, duplicate.id).released_at is not None
    actions = [a for a, _ in _events(db, duplicate.id)]
    assert actions[-1] == "case.followed_main"
    assert "case.duplicate_released" in [a for a, _ in _events(db, main.id)]
    # Its own callback closes its own loop.
    assert member.submit(f"/tasks/{task.id}", {"satisfaction": "satisfied"}).status_code == 302
    assert open_task(db, duplicate.id).name == "review_archive"
    assert verify_chain(db, duplicate.id).ok and verify_chain(db, main.id).ok


def test_a_dissatisfied_duplicate_is_reopened_to_dispatch(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    _link(leader, db, duplicate, main.number)
    dispatch(leader, db, main.id)
    member.submit(f"/tasks/{open_task(db, main.id).id}", {"handle_action": "done", "text": "已更换灯泡"})
    member.submit(f"/tasks/{open_task(db, duplicate.id).id}", {"satisfaction": "dissatisfied", "note": "灯还是不亮"})
    assert open_task(db, duplicate.id).name == "dispatch"


def test_linking_to_a_case_already_handled_passes_its_result_on_at_once(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    dispatch(leader, db, main.id)
    member.submit(f"/tasks/{open_task(db, main.id).id}", {"handle_action": "done", "text": "已修好"})
    assert _link(leader, db, duplicate, main.number).status_code == 302
    db.expire_all()
    assert db.get(Case, duplicate.id).status == "callback" and db.get(Case, duplicate.id).result == "已修好"
    assert verify_chain(db, duplicate.id).ok


def test_unlinking_reopens_the_waiting_task_and_is_on_both_chains(app, login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    task_before = open_task(db, duplicate.id)
    _link(leader, db, duplicate, main.number)
    page = leader.get(f"/cases/{duplicate.id}").get_data(as_text=True)
    assert 'id="unlink"' in page and main.number in page
    response = leader.submit(f"/cases/{duplicate.id}/unlink", {}, page=f"/cases/{duplicate.id}")
    assert response.status_code == 302
    db.expire_all()
    assert db.get(DuplicateLink, duplicate.id) is None
    assert open_task(db, duplicate.id).id == task_before.id
    assert ("case.unlinked", {"duplicate_of": [main.number, None]}) in _events(db, duplicate.id)
    assert ("case.duplicate_unlinked", {"duplicate": [duplicate.number, None]}) in _events(db, main.id)
    # Handling the main case now leaves the unlinked case alone; it is dispatched on its own.
    dispatch(leader, db, main.id)
    member.submit(f"/tasks/{open_task(db, main.id).id}", {"handle_action": "done", "text": "已修好"})
    assert open_task(db, duplicate.id).name == "dispatch"
    assert dispatch(leader, db, duplicate.id).status_code == 302
    assert verify_chain(db, duplicate.id).ok and verify_chain(db, main.id).ok
    assert_day_totals_current(app)  # the numbers counted the duplicate out, and in again


def test_links_that_lead_nowhere_are_refused_with_a_reason_and_change_nothing(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    third = _post(member, db, _form(member), duplicates="confirmed", resident_phone="13600000000")
    assert third.status_code == 302
    third = latest_case(db)
    for number, reason in (("no-such-case", "no-such-case"), (duplicate.number, "")):
        response = _link(leader, db, duplicate, number)
        assert response.status_code == 302
        assert db.get(DuplicateLink, duplicate.id) is None
        page = leader.get(response.location).get_data(as_text=True)
        assert 'class="flash error"' in page and reason in page
    assert _link(leader, db, duplicate, main.number).status_code == 302
    # A chain of duplicates is refused: link to the main case itself.
    _link(leader, db, third, duplicate.number)
    db.expire_all()
    assert db.get(DuplicateLink, third.id) is None
    # A case being handled is no duplicate any more; a member may not link; another grid's leader neither.
    dispatch(leader, db, third.id)
    _link(leader, db, third, main.number)
    db.expire_all()
    assert db.get(DuplicateLink, third.id) is None
    assert _link(login("leader_b"), db, main, duplicate.number).status_code == 403


def test_a_stale_link_form_is_refused(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    html = leader.get(f"/cases/{duplicate.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = leader.client.post(f"/cases/{duplicate.id}/link", data={
        "csrf_token": token, "version": str(duplicate.version + 5), "main_number": main.number})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(DuplicateLink, duplicate.id) is None


# -- the API ------------------------------------------------------------------------------------------------

def test_the_api_links_and_unlinks_and_shows_both_ends(app, login, db):
    from tests.web.test_api import make_token
    member, main, duplicate = _two_cases(login, db)
    client = app.test_client()
    leader = {"Authorization": f"Bearer {make_token(app, 'leader_a')[1]}"}
    member_token = {"Authorization": f"Bearer {make_token(app, 'member_a')[1]}"}
    body = {"version": duplicate.version, "main_number": main.number}
    assert client.post(f"/api/v1/cases/{duplicate.id}/link", json=body, headers=member_token).status_code == 403
    stale = client.post(f"/api/v1/cases/{duplicate.id}/link", json={**body, "version": 99}, headers=leader)
    assert stale.status_code == 409
    bad = client.post(f"/api/v1/cases/{duplicate.id}/link", json={"version": 1}, headers=leader)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "main_number"
    linked = client.post(f"/api/v1/cases/{duplicate.id}/link", json=body, headers=leader)
    assert linked.status_code == 200, linked.get_data(as_text=True)
    answer = linked.get_json()
    assert answer["duplicate_of"] == {"id": main.id, "number": main.number, "released": False}
    assert answer["tasks"] == []
    shown = client.get(f"/api/v1/cases/{main.id}", headers=leader).get_json()
    assert shown["duplicates"] == [{"id": duplicate.id, "number": duplicate.number, "released": False}]
    assert shown["duplicate_of"] is None
    unlinked = client.post(f"/api/v1/cases/{duplicate.id}/unlink", json={"version": answer["version"]},
                           headers=leader)
    assert unlinked.status_code == 200
    assert unlinked.get_json()["duplicate_of"] is None and [t["name"] for t in unlinked.get_json()["tasks"]] == [
        "dispatch"]
    again = client.post(f"/api/v1/cases/{duplicate.id}/unlink", json={"version": unlinked.get_json()["version"]},
                        headers=leader)
    assert again.status_code == 422


def test_the_demo_shows_a_resident_who_called_twice_linked_as_a_duplicate(tmp_path):
    from tests.conftest import configured_app
    from tracker.db import get_session
    with configured_app(f"sqlite:///{tmp_path / 'demo.sqlite3'}") as app:
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            session = get_session()
            link = session.scalars(select(DuplicateLink)).one()
            assert link.case.resident_phone == link.main_case.resident_phone == "+8613988886666"
            assert link.main_case.waiting_duplicates == 1 and link.released_at is None
            assert verify_chain(session, link.case_id).ok and verify_chain(session, link.main_case_id).ok


def test_a_duplicate_still_waiting_for_recording_follows_too(app, login, db):
    """A case left for the grid's record-and-reply step (a program's filing) is answered with the main result."""
    from tests.web.test_api import make_token, new_case
    member, main, _ = _two_cases(login, db)
    filed = app.test_client().post("/api/v1/cases", json={**new_case(db, channel="phone"), "answered_on_spot": None},
                                   headers={"Authorization": f"Bearer {make_token(app, 'member_a2')[1]}"})
    assert filed.status_code == 201 and filed.get_json()["status"] == "recording"
    waiting = db.get(Case, filed.get_json()["id"])
    leader = login("leader_a")
    assert _link(leader, db, waiting, main.number).status_code == 302
    dispatch(leader, db, main.id)
    member.submit(f"/tasks/{open_task(db, main.id).id}", {"handle_action": "done", "text": "已修好"})
    db.expire_all()
    follower = db.get(Case, waiting.id)
    assert follower.status == "callback" and follower.reply == "已修好"
    assert open_task(db, waiting.id).name == "callback"
    assert verify_chain(db, waiting.id).ok


def test_the_case_list_marks_duplicates_still_following(login, db):
    member, main, duplicate = _two_cases(login, db)
    leader = login("leader_a")
    page = leader.get("/cases/").get_data(as_text=True)
    assert page.count('<span class="badge">重复件</span>') == 0
    _link(leader, db, duplicate, main.number)
    page = leader.get("/cases/").get_data(as_text=True)
    row = page[page.index(f">{duplicate.number}<"):]
    assert row[:row.index("</tr>")].count("重复件") == 1
    assert page.count('<span class="badge">重复件</span>') == 1
