"""Auditors trace who did what: history and verification pages, the diagram at a past event, search."""

from __future__ import annotations

import re

import pytest
from lxml import etree
from sqlalchemy import func, select, text

from tests.conftest import dispatch, intake, latest_case, open_task
from tracker.models import AuditEvent, Case, Task


def _handled_case(login, db) -> Case:
    """Record (event 1), record & reply (2), dispatch (3), handle done (4): the case waits for callback."""
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    login("member_a").submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "已更换灯泡"})
    return latest_case(db)


def _svg_states(html: str) -> dict[str, str]:
    """Return BPMN element id -> state class (done/current/overdue) from the page's SVG."""
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    root = etree.fromstring(svg.encode())
    states = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        classes = (g.get("class") or "").split()
        if "el" in classes:
            states[g.get("data-id")] = ("overdue" if "overdue" in classes else "current" if "current" in classes
                                        else "done" if "done" in classes else "")
    return states


def test_history_page_shows_who_did_what_and_verifies(login, db):
    case = _handled_case(login, db)
    page = login("auditor").get(f"/cases/{case.id}/history").get_data(as_text=True)
    assert "链完整" in page and "4" in page
    for who in ("网格员甲", "网格长甲"):
        assert who in page
    assert case.audit_head in page
    # Tamper with the dispatch event: the page names it.
    db.execute(text("UPDATE audit_event SET actor_name = '别人' WHERE case_id = :c AND seq = 3"), {"c": case.id})
    page = login("auditor").get(f"/cases/{case.id}/history").get_data(as_text=True)
    assert "链在第 3 个事件处断裂" in page


def test_diagram_at_a_past_event_shows_the_tasks_current_then(login, db):
    case = _handled_case(login, db)
    auditor = login("auditor")
    now = _svg_states(auditor.get(f"/cases/{case.id}/diagram").get_data(as_text=True))
    assert now["callback"] == "current"
    assert now["handle_member"] == "done" and now["dispatch"] == "done"
    at_dispatch = _svg_states(auditor.get(f"/cases/{case.id}/diagram?at=2").get_data(as_text=True))
    # After event 2 (record & reply) the leader had to dispatch; nothing later had happened.
    assert at_dispatch["dispatch"] == "current"
    assert at_dispatch["record_reply"] == "done"
    assert at_dispatch["handle_member"] == "" and at_dispatch["callback"] == ""
    at_handling = auditor.get(f"/cases/{case.id}/diagram?at=3").get_data(as_text=True)
    assert _svg_states(at_handling)["handle_member"] == "current"
    assert 'data-task="handle_member"' in at_handling


def test_diagram_marks_an_overdue_task(login, db):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    db.execute(text("UPDATE task SET due_at = :d WHERE case_id = :c AND status = 'open'"),
               {"d": "2020-01-01 00:00:00.000000" if db.bind.dialect.name == "sqlite" else "2020-01-01T00:00:00Z",
                "c": case.id})
    states = _svg_states(login("leader_a").get(f"/cases/{case.id}/diagram").get_data(as_text=True))
    assert states["handle_member"] == "overdue"


def test_search_by_actor_action_field_and_date(login, db):
    first = _handled_case(login, db)
    second = _handled_case(login, db)
    auditor = login("auditor")
    by_actor = auditor.get("/audit?actor=网格长甲").get_data(as_text=True)
    assert by_actor.count("网格长甲") >= 2 and first.number in by_actor and second.number in by_actor
    assert "网格员甲</td>" not in by_actor
    by_action = auditor.get("/audit?action=task.handle").get_data(as_text=True)
    assert len(re.findall(r"<tr><td>", by_action)) == 2
    by_field = auditor.get("/audit?field=result").get_data(as_text=True)
    assert len(re.findall(r"<tr><td>", by_field)) == 2
    assert len(re.findall(r"<tr><td>", auditor.get("/audit?date_from=2000-01-01&date_to=2000-12-31")
                          .get_data(as_text=True))) == 0
    one = auditor.get(f"/audit?number={first.number}").get_data(as_text=True)
    assert len(re.findall(r"<tr><td>", one)) == 4


def test_search_and_history_respect_scope(login, db):
    case = _handled_case(login, db)
    other = login("member_b")
    assert case.number not in other.get("/audit").get_data(as_text=True)
    assert other.get(f"/cases/{case.id}/history").status_code == 403
    assert other.get(f"/cases/{case.id}/diagram").status_code == 403
    assert other.get(f"/cases/{case.id}/bundle.zip").status_code == 403


def test_verify_all_streams_and_names_broken_chains(login, db):
    good, bad = _handled_case(login, db), _handled_case(login, db)
    db.execute(text("DELETE FROM audit_event WHERE case_id = :c AND seq = 2"), {"c": bad.id})
    response = login("auditor").get("/audit/verify")
    assert response.is_streamed
    page = response.get_data(as_text=True)
    assert bad.number in page and good.number not in page
    assert "2 条记录链中有 1 条断裂" in page


@pytest.mark.parametrize("path", ["/tasks/{task}", "/tasks/{task}/claim", "/tasks/{task}/sign",
                                  "/tasks/{task}/reassign", "/tasks/{task}/release", "/cases/new",
                                  "/grids/{grid}/handover", "/grids/{grid}/covers"])
def test_auditor_changes_nothing(login, db, path):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    task = open_task(db, case.id)
    before = (db.scalar(select(func.count()).select_from(AuditEvent)), db.scalar(select(Task.assignee_id)
                                                                                 .where(Task.id == task.id)))
    auditor = login("auditor")
    url = path.format(task=task.id, grid=case.grid_id)
    response = auditor.submit(url, {"handle_action": "done", "text": "x", "assignee_id": "1", "reason": "x",
                                    "member_id": "1", "to_ids": ["1"], "mode": "even", "version": str(case.version)},
                              page=f"/cases/{case.id}")
    assert response.status_code == 403, (url, response.status_code)
    db.expire_all()
    assert before == (db.scalar(select(func.count()).select_from(AuditEvent)),
                      db.scalar(select(Task.assignee_id).where(Task.id == task.id)))


def test_auditor_reads_and_exports(login, db):
    case = _handled_case(login, db)
    auditor = login("auditor")
    for url in (f"/cases/{case.id}", f"/cases/{case.id}/history", f"/cases/{case.id}/diagram", "/audit",
                f"/cases/{case.id}/bundle.zip", "/cases/export.csv", "/cases/export.xlsx", "/audit/verify"):
        assert auditor.get(url).status_code == 200, url


def test_district_auditor_reads_every_community_and_community_auditor_only_its_own(app, login, db):
    from tests.conftest import PASSWORD
    from tracker.models import Community, Grid
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "district", "--name", "区审计员", "--password", PASSWORD,
                                 "--role", "auditor", "--district"])
    assert result.exit_code == 0, result.output
    elsewhere = Community(name="别的社区")
    db.add(elsewhere)
    db.flush()
    db.add(Grid(community_id=elsewhere.id, code="GX", name="X网格"))
    db.flush()
    result = runner.invoke(args=["create-user", "outsider", "--name", "外社区审计员", "--password", PASSWORD,
                                 "--role", "auditor", "--grid", "GX"])
    assert result.exit_code == 0, result.output
    case = _handled_case(login, db)
    district = login("district")
    assert district.get(f"/cases/{case.id}/history").status_code == 200
    assert case.number in district.get("/cases/").get_data(as_text=True)
    assert case.number in district.get("/audit").get_data(as_text=True)
    outsider = login("outsider")
    assert outsider.get(f"/cases/{case.id}/history").status_code == 403
    assert case.number not in outsider.get("/audit").get_data(as_text=True)
    # Reading is all a district auditor does.
    task = open_task(db, case.id)
    assert district.submit(f"/tasks/{task.id}", {"satisfaction": "satisfied"}, page=f"/cases/{case.id}").status_code == 403


def test_verify_audit_command_prints_the_chain_head_of_one_case(app, login, db):
    case = _handled_case(login, db)
    result = app.test_cli_runner().invoke(args=["verify-audit", case.number])
    assert result.exit_code == 0
    assert f"{case.number}: intact, 4 events, chain head {case.audit_head}" in result.output
