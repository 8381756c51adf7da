"""The JSON API /api/v1 through the real app: the loop, pages, filters, permissions, errors, limits, tokens."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.conftest import PASSWORD, Browser, building_id, configured_app, user_id
from tracker import clock, create_app
from tracker.db import get_session
from tracker.models import ApiToken, AuditEvent, Base, Case, Department, Grid, Notification, Task, User
from tracker.services import tokens

PROBLEM = "application/problem+json"


@dataclass
class Api:
    """A program calling the API with one bearer token."""

    client: FlaskClient
    secret: str

    def get(self, path: str, **params: Any) -> TestResponse:
        """GET /api/v1 + path with the token."""
        return self.client.get("/api/v1" + path, query_string=params, headers=self._auth())

    def post(self, path: str, body: Any = None, **kw: Any) -> TestResponse:
        """POST a JSON body (or raw ``data=``) to /api/v1 + path with the token."""
        if "data" not in kw:
            kw["json"] = body
        return self.client.post("/api/v1" + path, headers=self._auth(), **kw)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def make_token(app: Flask, username: str, name: str = "tests") -> tuple[int, str]:
    """Create a token for a seed user straight through the service; return its id and secret."""
    with app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.username == username))
        row, secret = tokens.create(session, user, name)
        session.commit()
        return row.id, secret


@pytest.fixture
def api(app):
    """Return a function giving a seed user's API client (a fresh token each call)."""
    def _api(username: str) -> Api:
        return Api(app.test_client(), make_token(app, username)[1])
    return _api


def new_case(db, **overrides: Any) -> dict:
    """Return a valid NewCase body for grid A."""
    body = {"resident_name": "张阿姨", "resident_phone": "13812345678", "building_id": building_id(db),
            "address_detail": "2单元301", "category": "property_repair", "description": "楼道灯不亮",
            "channel": "phone", "urgency": "normal", "green_channel": ""}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def created(api: Api, db, **overrides: Any) -> dict:
    """Record a case through the API and return its representation."""
    response = api.post("/cases", new_case(db, **overrides))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def the_task(api: Api, case_id: int) -> dict:
    """Return the one open task of a case, read through the API."""
    tasks = api.get(f"/cases/{case_id}").get_json()["tasks"]
    assert len(tasks) == 1, tasks
    return tasks[0]


def version(api: Api, case_id: int) -> int:
    """Return the case's current version, read through the API."""
    return api.get(f"/cases/{case_id}").get_json()["version"]


def complete(api: Api, case_id: int, data: dict, task: dict | None = None) -> TestResponse:
    """Complete the case's open task with ``data`` at the current version."""
    task = task or the_task(api, case_id)
    return api.post(f"/tasks/{task['id']}/complete", {"version": version(api, case_id), "data": data})


def dispatched(api, db, handler: str = "member_a") -> tuple[Api, Api, dict]:
    """Record a case as member_a and dispatch it to ``handler`` as leader_a; return both clients and the case."""
    member, leader = api("member_a"), api("leader_a")
    case = created(member, db)
    response = complete(leader, case["id"], {"dispatch_to": "member", "handler_id": user_id(db, handler),
                                             "deadline_class": "general"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return member, leader, response.get_json()


def assert_problem(response: TestResponse, status: int, *fields: str) -> dict:
    """Assert an RFC 9457 answer with ``status`` whose errors name exactly ``fields`` (when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["title"] and body["type"]
    if fields:
        assert sorted({e["field"] for e in body["errors"]}) == sorted(fields), body
    return body


def counts(db) -> tuple[int, int, int, int]:
    """Count cases, tasks, audit events and notifications (nothing may change on a refused call)."""
    db.expire_all()
    return tuple(db.scalar(select(func.count()).select_from(model))
                 for model in (Case, Task, AuditEvent, Notification))


# -- the whole loop --------------------------------------------------------------------------------

def test_a_case_travels_the_whole_loop_through_the_api_alone(api, db):
    member, leader = api("member_a"), api("leader_a")
    me = member.get("/me").get_json()
    assert (me["username"], me["display_name"], me["is_admin"]) == ("member_a", "网格员甲", False)
    assert me["roles"] == [{"role": "grid_member", "grid_id": me["roles"][0]["grid_id"], "department_id": None,
                            "community_id": None}]
    buildings = member.get("/buildings").get_json()["items"]
    assert [(b["name"], b["grid_code"]) for b in buildings] == [("1号楼院", "GA")]

    response = member.post("/cases", new_case(db, building_id=buildings[0]["id"]))
    assert response.status_code == 201
    case = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/cases/{case['id']}")
    assert (case["status"], case["resident_phone"], case["grid"]["code"]) == ("dispatching", "+8613812345678", "GA")
    assert [(t["name"], t["form_key"], t["assignee"]) for t in case["tasks"]] == [("dispatch", "dispatch", None)]
    assert case["deadline"]["due_at"] is None and case["due_at"] is None

    # The dispatch task waits in the leaders' pool; the member has nothing yet.
    assert [t["id"] for t in leader.get("/tasks", scope="pool").get_json()["items"]] == [case["tasks"][0]["id"]]
    assert member.get("/tasks").get_json()["items"] == []
    response = complete(leader, case["id"], {"dispatch_to": "member", "handler_id": user_id(db, "member_a"),
                                             "deadline_class": "general"})
    assert response.status_code == 200, response.get_data(as_text=True)
    case = response.get_json()
    assert (case["status"], case["dispatch_to"], case["handler"]["name"]) == ("handling", "member", "网格员甲")
    assert case["deadline"]["class"] == "general" and case["deadline"]["dispatched_at"]
    assert case["deadline"]["due_at"] == case["due_at"] and case["due_at"] > case["created_at"]
    assert case["deadline"]["overdue"] is False and case["deadline"]["signed_at"] is None

    mine = member.get("/tasks", scope="mine").get_json()["items"]
    assert [(t["name"], t["assignee"]["name"]) for t in mine] == [("handle_member", "网格员甲")]
    task = member.get(f"/tasks/{mine[0]['id']}").get_json()
    assert task == mine[0]
    response = member.post(f"/tasks/{task['id']}/sign", {"version": case["version"]})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert member.get(f"/cases/{case['id']}").get_json()["deadline"]["signed_at"]
    assert complete(member, case["id"], {"handle_action": "done", "text": "已更换灯泡"}).status_code == 200

    task = the_task(member, case["id"])
    assert (task["name"], task["assignee"]["name"]) == ("callback", "网格员甲")
    assert complete(member, case["id"], {"satisfaction": "satisfied", "note": "居民满意"}).status_code == 200
    assert the_task(leader, case["id"])["name"] == "review_archive"
    response = complete(leader, case["id"], {"confirm": True, "comment": "同意归档"})
    assert response.status_code == 200

    case = leader.get(f"/cases/{case['id']}").get_json()
    assert (case["status"], case["outcome"], case["result"], case["tasks"]) == ("archived", "satisfied", "已更换灯泡", [])
    assert case["archived_at"] and case["deadline"]["overdue"] is False
    assert case["reply"] == "" and case["description"] == "楼道灯不亮"
    assert member.get("/tasks").get_json()["items"] == []
    assert leader.get("/tasks", scope="pool").get_json()["items"] == []

    history = member.get(f"/cases/{case['id']}/history").get_json()
    assert (history["case_id"], history["number"]) == (case["id"], case["number"])
    events = history["events"]
    assert [e["action"] for e in events] == ["case.opened", "task.record_reply", "task.dispatch", "task.signed",
                                             "task.handle", "task.callback", "task.review_archive"]
    assert [e["actor"]["name"] for e in events] == ["网格员甲", "网格员甲", "网格长甲", "网格员甲", "网格员甲",
                                                    "网格员甲", "网格长甲"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in zip(events, events[1:]))
    assert events[2]["changes"]["status"] == ["dispatching", "handling"]
    assert events[0]["at"].endswith("Z") and case["audit_head"] == events[-1]["hash"]

    report = leader.get(f"/cases/{case['id']}/verify").get_json()
    assert report == {"case_id": case["id"], "ok": True, "events": len(events), "broken_seq": None,
                      "problem": report["problem"], "head": events[-1]["hash"]}


def test_answered_on_the_spot_and_referral_to_a_department(api, db):
    member, leader, dept = api("member_a"), api("leader_a"), api("dept")
    case = created(member, db, answered_on_spot=True, reply="已告知所需材料")
    assert (case["status"], case["reply"], case["tasks"][0]["name"]) == ("callback", "已告知所需材料", "callback")

    case = created(member, db)
    department_id = db.scalar(select(Department.id).where(Department.code == "property"))
    response = complete(leader, case["id"], {"dispatch_to": "department", "department_id": department_id,
                                             "deadline_class": "utilities"})
    assert response.status_code == 200, response.get_data(as_text=True)
    task = the_task(dept, case["id"])
    assert (task["name"], task["department_id"], task["assignee"]) == ("handle_department", department_id, None)
    assert [t["id"] for t in dept.get("/tasks", scope="pool").get_json()["items"]] == [task["id"]]
    # Only the department may handle it: the member reads the case but may not complete the task.
    assert_problem(complete(member, case["id"], {"handle_action": "done", "text": "x"}), 403)
    claimed = dept.post(f"/tasks/{task['id']}/claim", {"version": version(dept, case["id"])})
    assert claimed.status_code == 200 and claimed.get_json()["assignee"]["name"] == "维修员"
    released = dept.post(f"/tasks/{task['id']}/release", {"version": version(dept, case["id"])})
    assert released.status_code == 200 and released.get_json()["assignee"] is None
    assert_problem(dept.post(f"/tasks/{task['id']}/release", {"version": version(dept, case["id"])}), 409)
    assert complete(dept, case["id"], {"handle_action": "done", "text": "已维修"}).status_code == 200
    assert the_task(member, case["id"])["name"] == "callback"


def test_extension_is_asked_and_approved_through_the_api(api, db):
    member, leader, case = dispatched(api, db)
    due = case["due_at"]
    response = complete(member, case["id"], {"handle_action": "extend", "text": "等配件", "extension_days": 3})
    assert response.status_code == 200 and response.get_json()["status"] == "extension_review"
    response = complete(leader, case["id"], {"decision": "approve", "comment": "同意"})
    case = response.get_json()
    assert case["status"] == "handling" and case["due_at"] > due


# -- reading: pages and filters --------------------------------------------------------------------

def test_keyset_pages_neither_overlap_nor_skip_even_when_cases_share_a_moment(app, api, db):
    from tests.factories import dispatched_cases
    member = api("member_a")
    same_moment = dispatched_cases(app, 4, dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC), "member_a", "leader_a")
    for i in range(3):
        created(member, db, resident_name=f"居民API{i}")
    created(api("member_b"), db, building_id=building_id(db, "GB"))  # not member_a's to read

    expected = [c.id for c in db.scalars(select(Case).where(Case.grid_id == db.scalar(
        select(Grid.id).where(Grid.code == "GA"))).order_by(Case.created_at.desc(), Case.id.desc()))]
    assert len(expected) == 7 and set(same_moment) <= set(expected)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = member.get("/cases", **params)
        assert response.status_code == 200
        page = response.get_json()
        pages += 1
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert (seen, pages) == (expected, 3)
    assert [c["id"] for c in member.get("/cases").get_json()["items"]] == expected  # default page: all of them

    for bad in ("nonsense", "e30", "WyJ4IiwgMV0", "WyIyMDI2LTAzLTAyVDAyOjAwOjAwIiwgMV0"):  # {}, ["x", 1], naive time
        assert_problem(member.get("/cases", cursor=bad), 400, "cursor")
    assert_problem(member.get("/cases", limit=0), 400, "limit")
    assert_problem(member.get("/cases", limit=201), 400, "limit")
    assert_problem(member.get("/cases", limit="ten"), 400, "limit")


def test_list_filters_work_as_in_the_ui(api, db):
    member, leader, case = dispatched(api, db)
    other = created(member, db, resident_name="李大爷", category="security", channel="wechat",
                    description="小区门禁坏了")
    grid_a = case["grid"]["id"]

    def ids(**params: Any) -> list[int]:
        response = leader.get("/cases", **params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [c["id"] for c in response.get_json()["items"]]

    both = [other["id"], case["id"]]
    assert ids() == both
    assert ids(status="handling") == [case["id"]] and ids(status="dispatching") == [other["id"]]
    assert ids(status="archived") == []
    assert ids(grid=grid_a) == both and ids(grid=grid_a + 1) == []
    assert ids(category="security") == [other["id"]] and ids(channel="phone") == [case["id"]]
    assert ids(q="李大爷") == [other["id"]] and ids(q="门禁") == [other["id"]]
    assert ids(q=case["number"]) == [case["id"]]
    today = clock.now().date()
    assert ids(date_from=today.isoformat(), date_to=today.isoformat()) == both
    assert ids(date_from=(today + dt.timedelta(days=1)).isoformat()) == []
    assert ids(date_to=(today - dt.timedelta(days=1)).isoformat()) == []
    assert ids(deadline="overdue") == []
    with clock.shifted(dt.timedelta(days=60)):
        assert ids(deadline="overdue") == [case["id"]]
        assert ids(deadline="mine") == []
        assert member.get("/cases", deadline="mine").get_json()["items"][0]["id"] == case["id"]
        assert member.get(f"/cases/{case['id']}").get_json()["deadline"]["overdue"] is True

    assert_problem(leader.get("/cases", status="lost"), 400, "status")
    assert_problem(leader.get("/cases", grid="GA"), 400, "grid")
    assert_problem(leader.get("/cases", deadline="late"), 400, "deadline")
    assert_problem(leader.get("/cases", date_from="2026-02-30", date_to="yesterday"), 400, "date_from", "date_to")
    assert_problem(leader.get("/tasks", scope="everyone"), 400, "scope")


# -- permissions -----------------------------------------------------------------------------------

def test_a_grid_b_member_cannot_see_or_touch_a_grid_a_case(api, db):
    member, _leader, case = dispatched(api, db)
    task = the_task(member, case["id"])
    other = api("member_b")
    before = counts(db)
    for path in (f"/cases/{case['id']}", f"/cases/{case['id']}/history", f"/cases/{case['id']}/verify",
                 f"/tasks/{task['id']}"):
        assert_problem(other.get(path), 404)
    for action in ("claim", "sign", "release"):
        assert_problem(other.post(f"/tasks/{task['id']}/{action}", {"version": case["version"]}), 404)
    assert_problem(other.post(f"/tasks/{task['id']}/complete", {
        "version": case["version"], "data": {"handle_action": "done", "text": "x"}}), 404)
    assert_problem(other.post(f"/tasks/{task['id']}/reassign", {
        "version": case["version"], "assignee_id": user_id(db, "member_b"), "reason": "x"}), 404)
    assert other.get("/cases").get_json()["items"] == []
    assert other.get("/tasks").get_json()["items"] == [] and other.get("/tasks", scope="pool").get_json()["items"] == []
    assert_problem(other.get("/cases/999999"), 404)
    assert_problem(other.get("/tasks/no-such-task"), 404)
    assert counts(db) == before


def test_members_cannot_reassign_or_hand_over_and_leaders_only_manage_their_grid(api, db):
    member, leader, case = dispatched(api, db)
    task = the_task(member, case["id"])
    grid_a = case["grid"]["id"]
    handover = {"member_id": user_id(db, "member_a"), "to_ids": [user_id(db, "member_a2")], "mode": "even",
                "reason": "调岗"}
    before = counts(db)
    assert_problem(member.post(f"/tasks/{task['id']}/reassign", {
        "version": case["version"], "assignee_id": user_id(db, "member_a2"), "reason": "我忙"}), 403)
    assert_problem(member.post(f"/grids/{grid_a}/handover", handover), 403)
    assert_problem(member.get(f"/grids/{grid_a}/workload"), 403)
    leader_b = api("leader_b")
    assert_problem(leader_b.get(f"/grids/{grid_a}/workload"), 403)
    assert_problem(leader_b.post(f"/grids/{grid_a}/handover", handover), 403)
    assert leader_b.get(f"/grids/{grid_a + 1}/workload").status_code == 200
    assert_problem(leader.get("/grids/999999/workload"), 404)
    assert_problem(leader.post("/grids/999999/handover", handover), 404)
    assert counts(db) == before

    board = leader.get(f"/grids/{grid_a}/workload").get_json()
    assert board["grid"] == {"id": grid_a, "code": "GA", "name": "A网格"}
    people = {p["user"]["name"]: p for p in board["people"]}
    assert people["网格员甲"]["open"] == 1 and people["网格员乙"]["open"] == 0
    assert (board["pool"], board["waiting_for_decision"]) == (0, [])

    response = leader.post(f"/tasks/{task['id']}/reassign", {
        "version": case["version"], "assignee_id": user_id(db, "member_a2"), "reason": "甲休假"})
    assert response.status_code == 200 and response.get_json()["assignee"]["name"] == "网格员乙"
    assert member.get("/tasks").get_json()["items"] == []
    assert_problem(leader.post(f"/tasks/{task['id']}/reassign", {
        "version": version(leader, case["id"]), "assignee_id": user_id(db, "member_b"), "reason": "x"}),
        422, "assignee_id")


def test_an_auditor_reads_and_verifies_but_every_post_is_refused(api, db):
    member, leader, case = dispatched(api, db)
    task = the_task(member, case["id"])
    pool_case = created(member, db)
    pool_task = the_task(member, pool_case["id"])
    auditor = api("auditor")
    assert auditor.get(f"/cases/{case['id']}").status_code == 200
    assert auditor.get(f"/cases/{case['id']}/history").status_code == 200
    assert auditor.get(f"/cases/{case['id']}/verify").get_json()["ok"] is True
    assert {c["id"] for c in auditor.get("/cases").get_json()["items"]} == {case["id"], pool_case["id"]}
    assert auditor.get(f"/tasks/{task['id']}").status_code == 200
    assert auditor.get("/buildings").get_json()["items"] == []

    before = counts(db)
    v, pv = case["version"], pool_case["version"]
    refused = [
        auditor.post("/cases", new_case(db)),
        auditor.post(f"/tasks/{pool_task['id']}/claim", {"version": pv}),
        auditor.post(f"/tasks/{pool_task['id']}/release", {"version": pv}),
        auditor.post(f"/tasks/{task['id']}/sign", {"version": v}),
        auditor.post(f"/tasks/{task['id']}/release", {"version": v}),
        auditor.post(f"/tasks/{task['id']}/complete", {"version": v, "data": {"handle_action": "done", "text": "x"}}),
        auditor.post(f"/tasks/{pool_task['id']}/complete", {"version": pv, "data": {
            "dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}}),
        auditor.post(f"/tasks/{task['id']}/reassign", {"version": v, "assignee_id": user_id(db, "member_a2"),
                                                      "reason": "x"}),
        auditor.post(f"/grids/{case['grid']['id']}/handover", {
            "member_id": user_id(db, "member_a"), "to_ids": [user_id(db, "member_a2")], "mode": "even",
            "reason": "x"}),
        auditor.post(f"/grids/{case['grid']['id']}/handover", {
            "member_id": user_id(db, "member_a"), "to_ids": [user_id(db, "member_a2")], "mode": "even",
            "reason": "x", "fingerprint": "0" * 16}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    for response in refused:
        assert_problem(response, 403)
    assert_problem(auditor.get(f"/grids/{case['grid']['id']}/workload"), 403)
    assert counts(db) == before
    assert version(leader, case["id"]) == v and version(leader, pool_case["id"]) == pv


# -- authentication --------------------------------------------------------------------------------

def test_no_token_a_wrong_one_or_a_revoked_one_gets_401(app, api, db):
    client = app.test_client()
    for path in ("/api/v1/me", "/api/v1/cases", "/api/v1/tasks"):
        response = client.get(path)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.post("/api/v1/cases", json=new_case(db)), 401)
    for header in ("Bearer glt_not-a-token", "Basic bWVtYmVyX2E6c2VjcmV0", "Bearer ", "glt_x"):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert_problem(response, 401)
        assert "WWW-Authenticate" in response.headers
    # The session cookie of a logged-in person does not work here (so there is no CSRF to forge).
    browser = Browser(app.test_client())
    assert browser.submit("/login", {"username": "member_a", "password": PASSWORD}).status_code == 302
    assert_problem(browser.get("/api/v1/me"), 401)

    token_id, secret = make_token(app, "member_a")
    member = Api(app.test_client(), secret)
    assert member.get("/me").status_code == 200
    with app.app_context():
        session = get_session()
        tokens.revoke(session, session.get(User, user_id(db, "member_a")), token_id)
        session.commit()
    assert_problem(member.get("/me"), 401)
    assert_problem(member.post("/cases", new_case(db)), 401)
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    # The OpenAPI document itself is public.
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_unknown_routes_and_methods_answer_problems(api):
    member = api("member_a")
    assert_problem(member.get("/nowhere"), 404)
    response = member.client.delete("/api/v1/cases", headers=member._auth())
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_ids_and_filters_no_column_can_hold_are_refused_not_crashed_on(api, db):
    leader = api("leader_a")
    case = created(api("member_a"), db)
    too_big = 2**31
    for path in (f"/cases/{too_big}", f"/cases/{10**30}/history", f"/grids/{too_big}/workload", "/tasks/x%00y",
                 "/tasks/" + "a" * 37):
        assert_problem(leader.get(path), 404)
    assert_problem(leader.post(f"/grids/{too_big}/handover", {}), 404)
    assert_problem(leader.post(f"/tasks/{case['tasks'][0]['id']}/reassign", {
        "version": case["version"], "assignee_id": too_big, "reason": "x"}), 422, "assignee_id")
    assert_problem(leader.get("/cases", grid="²"), 400, "grid")  # a digit to str.isdigit, not to int()
    assert_problem(leader.get("/cases", grid=str(too_big)), 400, "grid")
    assert_problem(leader.get("/cases", date_to="9999-12-31"), 400, "date_to")  # the day after does not exist
    assert_problem(leader.get("/cases", date_from="2026-1-5"), 400, "date_from")
    assert_problem(leader.get("/cases", q="灯\x00"), 400, "q")
    # A filter sent empty is malformed (the UI's form sends empty ones; programs leave them out).
    assert_problem(leader.get("/cases", status="", date_to=""), 400, "date_to", "status")
    assert [c["id"] for c in leader.get("/cases", q="").get_json()["items"]] == [case["id"]]


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "fields"), [
    ({"resident_name": None, "description": None}, ["description", "resident_name"]),
    ({"building_id": "x"}, ["building_id"]),
    ({"building_id": 0}, ["building_id"]),
    ({"answered_on_spot": "yes"}, ["answered_on_spot"]),
    ({"nickname": "阿姨", "age": 70}, ["age", "nickname"]),
    ({"description": "长" * 4001}, ["description"]),
    ({"category": "aliens"}, ["category"]),
    ({"resident_phone": "12345"}, ["resident_phone"]),
    ({"resident_phone": "phone"}, ["resident_phone"]),
    ({"answered_on_spot": True}, ["reply"]),
    ({"resident_name": "张\x00"}, ["resident_name"]),
])
def test_bad_case_bodies_name_the_field_and_save_nothing(api, db, overrides, fields):
    member = api("member_a")
    before = counts(db)
    body = assert_problem(member.post("/cases", new_case(db, **overrides)), 422, *fields)
    assert body["type"] == "urn:gridloop:problem:invalid-input"
    assert all(e["message"] for e in body["errors"])
    assert counts(db) == before


def test_a_building_of_another_grid_is_not_a_choice(api, db):
    before = counts(db)
    assert_problem(api("member_a").post("/cases", new_case(db, building_id=building_id(db, "GB"))), 422,
                   "building_id")
    assert counts(db) == before


@pytest.mark.parametrize("send", [
    {"data": "resident_name=张"},
    {"data": "{not json", "content_type": "application/json"},
    {"data": '"just a string"', "content_type": "application/json"},
    {"data": "[1, 2]", "content_type": "application/json"},
    {"data": json.dumps({"resident_name": "张"}), "content_type": "text/plain"},
])
def test_a_body_that_is_not_a_json_object_is_a_400_problem(api, db, send):
    before = counts(db)
    body = assert_problem(api("member_a").post("/cases", **send), 400)
    assert body["type"] == "urn:gridloop:problem:not-json"
    assert counts(db) == before


def test_task_bodies_are_checked_too(api, db):
    member, leader, case = dispatched(api, db)
    task = the_task(member, case["id"])
    v = case["version"]
    before = counts(db)
    assert_problem(member.post(f"/tasks/{task['id']}/sign", {}), 422, "version")
    assert_problem(member.post(f"/tasks/{task['id']}/sign", {"version": "1"}), 422, "version")
    assert_problem(member.post(f"/tasks/{task['id']}/sign", {"version": v, "force": True}), 422, "force")
    assert_problem(member.post(f"/tasks/{task['id']}/complete", {"version": v}), 422, "data")
    # Data of another form: a callback's answer on the handling task.
    body = assert_problem(member.post(f"/tasks/{task['id']}/complete", {
        "version": v, "data": {"satisfaction": "satisfied"}}), 422)
    assert {e["field"] for e in body["errors"]} == {"data.handle_action", "data.satisfaction", "data.text"}
    assert_problem(member.post(f"/tasks/{task['id']}/complete", {
        "version": v, "data": {"handle_action": "extend", "text": "等配件"}}), 422, "data.extension_days")
    # Data that fits no form at all still names what this task's form misses.
    assert_problem(member.post(f"/tasks/{task['id']}/complete", {
        "version": v, "data": {"handle_action": "done"}}), 422, "data.text")
    assert_problem(member.post(f"/tasks/{task['id']}/complete", {"version": v, "data": "done"}), 422, "data")
    assert_problem(member.post(f"/tasks/{task['id']}/complete", {
        "version": v, "data": {"handle_action": "done", "text": "x" * 4001}}), 422)
    assert_problem(leader.post(f"/tasks/{task['id']}/reassign", {"version": v, "reason": ""}), 422,
                   "assignee_id", "reason")
    grid_a = case["grid"]["id"]
    assert_problem(leader.post(f"/grids/{grid_a}/handover", {
        "member_id": user_id(db, "member_a"), "to_ids": [], "mode": "fair", "reason": "x"}), 422, "mode", "to_ids")
    assert_problem(leader.post(f"/grids/{grid_a}/handover", {
        "member_id": user_id(db, "member_a"), "to_ids": [user_id(db, "member_b")], "mode": "even",
        "reason": "x"}), 422, "to_ids")
    assert counts(db) == before


def test_a_dispatch_needs_a_member_of_the_grid(api, db):
    member, leader = api("member_a"), api("leader_a")
    case = created(member, db)
    before = counts(db)
    assert_problem(complete(leader, case["id"], {"dispatch_to": "member", "deadline_class": "general"}), 422,
                   "data.handler_id")
    assert_problem(complete(leader, case["id"], {"dispatch_to": "member", "handler_id": user_id(db, "member_b"),
                                                 "deadline_class": "general"}), 422, "data.handler_id")
    assert counts(db) == before


# -- versions --------------------------------------------------------------------------------------

def test_stale_versions_get_409_and_change_nothing(api, db):
    member, leader = api("member_a"), api("leader_a")
    case = created(member, db)
    task = the_task(leader, case["id"])
    stale = case["version"]
    claimed = leader.post(f"/tasks/{task['id']}/claim", {"version": stale})
    assert claimed.status_code == 200 and claimed.get_json()["assignee"]["name"] == "网格长甲"
    before = counts(db)
    body = assert_problem(api("leader_a2").post(f"/tasks/{task['id']}/claim", {"version": stale}), 409)
    assert body["type"] == "urn:gridloop:problem:conflict"
    assert_problem(leader.post(f"/tasks/{task['id']}/complete", {"version": stale, "data": {
        "dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}}), 409)
    assert counts(db) == before
    fresh = version(leader, case["id"])
    assert fresh == stale + 1
    done = leader.post(f"/tasks/{task['id']}/complete", {"version": fresh, "data": {
        "dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}})
    assert done.status_code == 200
    # Completing the same task again: it is gone.
    assert_problem(leader.post(f"/tasks/{task['id']}/complete", {"version": done.get_json()["version"], "data": {
        "dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}}), 409)


# -- handover --------------------------------------------------------------------------------------

def test_handover_is_previewed_then_carried_out_and_a_changed_set_is_refused(api, db):
    member, leader, first = dispatched(api, db)
    second = dispatched(api, db)[2]
    grid_a = first["grid"]["id"]
    body = {"member_id": user_id(db, "member_a"), "to_ids": [user_id(db, "member_a2")], "mode": "even",
            "reason": "甲调岗"}
    before = counts(db)
    preview = leader.post(f"/grids/{grid_a}/handover", body)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    plan = preview.get_json()
    assert plan["done"] is False and len(plan["fingerprint"]) == 16
    assert sorted(m["case_number"] for m in plan["moves"]) == sorted([first["number"], second["number"]])
    assert {m["to"]["name"] for m in plan["moves"]} == {"网格员乙"}
    assert counts(db) == before and len(member.get("/tasks").get_json()["items"]) == 2

    assert_problem(leader.post(f"/grids/{grid_a}/handover", {**body, "fingerprint": "0" * 16}), 409)
    assert counts(db) == before
    # A third task arrives after the preview: the old fingerprint no longer matches.
    third = dispatched(api, db)[2]
    assert_problem(leader.post(f"/grids/{grid_a}/handover", {**body, "fingerprint": plan["fingerprint"]}), 409)
    assert len(member.get("/tasks").get_json()["items"]) == 3

    plan = leader.post(f"/grids/{grid_a}/handover", body).get_json()
    done = leader.post(f"/grids/{grid_a}/handover", {**body, "fingerprint": plan["fingerprint"]})
    assert done.status_code == 200
    assert done.get_json()["done"] is True and len(done.get_json()["moves"]) == 3
    assert member.get("/tasks").get_json()["items"] == []
    assert {t["case_id"] for t in api("member_a2").get("/tasks").get_json()["items"]} == {
        first["id"], second["id"], third["id"]}
    actions = [e["action"] for e in leader.get(f"/cases/{third['id']}/history").get_json()["events"]]
    assert actions[-1] == "task.handed_over"


# -- rate limits -----------------------------------------------------------------------------------

@pytest.fixture
def limited_app(database_url) -> Iterator[Flask]:
    """An app with tiny rate limits switched on."""
    with configured_app(database_url, api={"ratelimit_enabled": True, "rate_limit": "3 per minute",
                                           "login_rate_limit": "2 per minute"}) as app:
        yield app


def test_the_fourth_call_in_a_minute_gets_429_with_retry_after(limited_app):
    member = Api(limited_app.test_client(), make_token(limited_app, "member_a")[1])
    assert [member.get("/me").status_code for _ in range(3)] == [200, 200, 200]
    response = member.get("/me")
    body = assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert "Rate limit" in body["detail"]
    # Each token has its own budget.
    other = Api(limited_app.test_client(), make_token(limited_app, "leader_a")[1])
    assert other.get("/me").status_code == 200


def test_login_attempts_are_limited(limited_app):
    browser = Browser(limited_app.test_client())
    wrong = {"username": "member_a", "password": "wrong-password"}
    assert [browser.submit("/login", wrong).status_code for _ in range(2)] == [401, 401]
    response = browser.submit("/login", wrong)
    assert response.status_code == 429
    assert response.mimetype == "text/html" and "429" in response.get_data(as_text=True)
    # Even the right password waits now.
    assert browser.submit("/login", {"username": "member_a", "password": PASSWORD}).status_code == 429


# -- tokens: profile page and CLI ------------------------------------------------------------------

SECRET_RE = re.compile(r'<code class="secret">([^<]+)</code>')


def test_the_profile_page_creates_a_token_shown_once_and_stored_hashed(app, login, db):
    browser = login("member_a")
    response = browser.submit("/profile", {"name": "12345热线对接", "scope": "full"})
    assert response.status_code == 200
    secret = SECRET_RE.search(response.get_data(as_text=True)).group(1)
    assert secret.startswith(tokens.PREFIX)
    page = browser.get("/profile").get_data(as_text=True)
    assert secret not in page and "12345热线对接" in page and secret[:10] in page

    row = db.scalars(select(ApiToken)).one()
    assert row.token_hash == tokens.digest(secret) and row.prefix == secret[:10]
    for table in Base.metadata.sorted_tables:  # no column of any table holds the secret
        for values in db.execute(select(table)):
            assert not any(secret in str(value) for value in values), table.name

    api = Api(app.test_client(), secret)
    assert api.get("/me").get_json()["username"] == "member_a"
    db.expire_all()
    assert db.get(ApiToken, row.id).last_used_at is not None

    assert browser.submit(f"/profile/tokens/{row.id}/revoke", {}, page="/profile").status_code == 302
    assert_problem(api.get("/me"), 401)
    db.expire_all()
    assert db.get(ApiToken, row.id).revoked_at is not None
    assert "12345热线对接" in browser.get("/profile").get_data(as_text=True)
    # Nobody else may revoke it, and a token needs a name.
    assert browser.submit("/profile", {"name": "", "scope": "full"}).status_code == 422


def test_someone_else_cannot_revoke_my_token(app, login, db):
    token_id, secret = make_token(app, "member_a")
    other = login("member_a2")
    assert other.submit(f"/profile/tokens/{token_id}/revoke", {}, page="/profile").status_code == 404
    assert Api(app.test_client(), secret).get("/me").status_code == 200


def test_cli_creates_a_working_token_and_revokes_it(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-token", "leader_a", "--name", "巡查脚本", "--scope", "full"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    token_id = int(re.search(r"token (\d+) for leader_a", result.output).group(1))
    api = Api(app.test_client(), secret)
    assert api.get("/me").get_json()["username"] == "leader_a"
    assert db.scalar(select(ApiToken.name).where(ApiToken.id == token_id)) == "巡查脚本"

    result = runner.invoke(args=["revoke-token", str(token_id)])
    assert result.exit_code == 0 and "revoked" in result.output
    assert_problem(api.get("/me"), 401)
    assert runner.invoke(args=["create-token", "nobody", "--name", "x", "--scope", "read"]).exit_code != 0
    assert runner.invoke(args=["revoke-token", "999999"]).exit_code != 0


def test_made_up_tokens_share_the_address_budget(limited_app):
    client = limited_app.test_client()
    codes = [client.get("/api/v1/me", headers={"Authorization": f"Bearer glt_made-up-{i}"}).status_code
             for i in range(4)]
    assert codes == [401, 401, 401, 429]


def test_one_address_trying_many_accounts_is_limited(database_url):
    app = create_app({"app": {"database_url": database_url}, "api": {
        "ratelimit_enabled": True, "login_rate_limit": "100 per minute", "login_address_rate_limit": "3 per minute"}})
    app.config.update(TESTING=True)
    try:
        codes = []
        for name in ("member_a", "member_b", "leader_a", "leader_b"):
            browser = Browser(app.test_client())
            codes.append(browser.submit("/login", {"username": name, "password": "wrong-password"}).status_code)
        assert codes == [401, 401, 401, 429]
    finally:
        app.extensions["gridloop.db"].dispose()


def test_a_program_filed_case_is_called_back_by_a_person_from_the_pool(api, db):
    program, leader, member = api("member_a"), api("leader_a"), api("member_a2")
    case = program.post("/cases", new_case(db, channel="api")).get_json()
    complete(leader, case["id"], {"dispatch_to": "member", "handler_id": user_id(db, "member_a2"),
                                  "deadline_class": "general"})
    assert complete(member, case["id"], {"handle_action": "done", "text": "已修好"}).status_code == 200
    task = the_task(leader, case["id"])
    assert (task["name"], task["assignee"]) == ("callback", None)
    assert task["id"] in [t["id"] for t in member.get("/tasks", scope="pool").get_json()["items"]]
