"""The process owns the case's states: its status, where signing for (签收) happens, whether it reopens."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, Browser, dispatch, intake, latest_case, open_task
from tracker import create_app
from tracker.models import Case, Department, Timer
from tracker.services.definitions import as_definition

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (ROOT / "bpmn" / "case_closed_loop.bpmn").read_text(encoding="utf-8")


def _path(app, db, case_id: int) -> tuple[str, ...]:
    """The elements the case's workflow went through, as the engine reports them."""
    db.expire_all()
    case = db.get(Case, case_id)
    return app.extensions["gridloop.engine"].snapshot(as_definition(case.definition), case.workflow_state).path


def _app_with(database_url: str, tmp_path: Path, source: str):
    """Start the app on a bpmn directory holding ``source`` as the case process and the real visit process."""
    bpmn = tmp_path / "bpmn"
    bpmn.mkdir()
    (bpmn / "case_closed_loop.bpmn").write_text(source, encoding="utf-8")
    shutil.copy(ROOT / "bpmn" / "routine_visit.bpmn", bpmn)
    # No scheduler thread in this test process: one left ticking would evaluate BPMN expressions (ast.parse)
    # beside later tests building apps, which Python 3.11's ast does not survive from two threads at once.
    return create_app({"app": {"database_url": database_url, "bpmn_dir": str(bpmn)}, "scheduler": {"in_web": False}})


def _login(app, username: str) -> Browser:
    """Log a user in on a client of ``app``."""
    browser = Browser(app.test_client())
    assert browser.submit("/login", {"username": username, "password": PASSWORD}).status_code == 302
    return browser


def _handling(login, db) -> Case:
    """A case recorded by member_a and dispatched to them."""
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    return case


# -- the status ---------------------------------------------------------------------------------


def test_the_status_is_the_one_the_waiting_task_names_in_the_bpmn(app, db, tmp_path):
    old = '<spiffworkflow:property name="status" value="extension_review" />'
    assert SOURCE.count(old) == 1
    local = _app_with(app.config["DATABASE_URL"], tmp_path, SOURCE.replace(
        old, '<spiffworkflow:property name="status" value="handling" />'))
    member, leader = _login(local, "member_a"), _login(local, "leader_a")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(leader, db, case.id)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "extend", "text": "等配件",
                                                          "extension_days": "3"})
    assert open_task(db, case.id).name == "review_extension"
    assert latest_case(db).status == "handling"  # not extension_review: the BPMN said so
    local.extensions["gridloop.db"].dispose()


@pytest.mark.parametrize(("status", "problem"), [
    ("closed", "status 'closed' is not a case status (use one of recording, dispatching, handling, "
               "extension_review, callback, archive_review)"),
    ("archived", "status 'archived' is not a case status"),
])
def test_a_case_process_naming_a_status_the_tracker_does_not_know_is_refused_at_start(
        database_url, tmp_path, status, problem):
    source = SOURCE.replace('<spiffworkflow:property name="status" value="callback" />',
                            f'<spiffworkflow:property name="status" value="{status}" />')
    app = _app_with(database_url, tmp_path, source)
    assert sorted(app.extensions["gridloop.definitions"]) == ["routine_visit"]
    (error,) = app.extensions["gridloop.bpmn_errors"]
    assert (error.file_name, error.element_id) == ("case_closed_loop.bpmn", "callback")
    assert error.problem.startswith(problem)
    app.extensions["gridloop.db"].dispose()


def test_a_case_process_naming_no_status_at_all_is_refused_at_start(database_url, tmp_path):
    # Only versions deployed before statuses were in the BPMN go without (the cases still running on them).
    bare = re.sub(r'\s*<spiffworkflow:property name="status" value="\w+" />', "", SOURCE)
    app = _app_with(database_url, tmp_path, bare)
    assert sorted(app.extensions["gridloop.definitions"]) == ["routine_visit"]  # the visit process needs none
    errors = app.extensions["gridloop.bpmn_errors"]
    assert {e.element_id for e in errors} == {"record_reply", "dispatch", "handle_member", "handle_department",
                                              "review_extension", "callback", "review_archive", "supervise",
                                              "escalate"}
    assert {e.problem for e in errors} == {'user task names no case status: add '
                                           '<spiffworkflow:property name="status" value="..." />'}
    app.extensions["gridloop.db"].dispose()


# -- signing for (签收) ------------------------------------------------------------------------


def test_pressing_sign_for_is_caught_by_the_process(app, login, db):
    case = _handling(login, db)
    task = open_task(db, case.id)
    assert "end_signed" not in _path(app, db, case.id)
    assert login("member_a").submit(f"/tasks/{task.id}/sign", {}, page=f"/tasks/{task.id}").status_code == 302
    assert latest_case(db).signed_at is not None
    assert _path(app, db, case.id)[-2:] == ("s_signed", "end_signed")
    assert (open_task(db, case.id).id, latest_case(db).status) == (task.id, "handling")


def test_claiming_a_referral_from_the_pool_signs_for_it_in_the_process(app, login, db):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    department_id = db.scalar(select(Department.id).where(Department.code == "property"))
    login("leader_a").submit(f"/tasks/{open_task(db, case.id).id}", {
        "dispatch_to": "department", "handler_id": "0", "department_id": str(department_id),
        "deadline_class": "general"})
    task = open_task(db, case.id)
    assert (task.name, task.assignee_id) == ("handle_department", None)
    assert login("dept").submit(f"/tasks/{task.id}/claim", {}, page=f"/tasks/{task.id}").status_code == 302
    assert latest_case(db).signed_at is not None
    assert "end_signed" in _path(app, db, case.id)


def test_submitting_a_result_signs_for_it_and_ends_handling(app, login, db):
    case = _handling(login, db)
    login("member_a").submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "已修好"})
    assert latest_case(db).signed_at is not None
    path = _path(app, db, case.id)
    assert "handle_member" in path and "s_signed" not in path  # handling ended: nothing left to sign for


# -- reopening (重办) ----------------------------------------------------------------------------


def test_only_a_reopen_by_the_process_starts_a_new_handling_period(app, login, db):
    case = _handling(login, db)
    member = login("member_a")
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "已修好"})
    before = latest_case(db)
    period = (before.dispatched_at, before.due_at, before.sign_for_at)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "unreachable"})
    retried = latest_case(db)
    assert (retried.status, (retried.dispatched_at, retried.due_at, retried.sign_for_at)) == ("callback", period)

    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "dissatisfied", "note": "居民说还没修好"})
    reopened = latest_case(db)
    assert (reopened.status, reopened.reopen_count, reopened.signed_at) == ("handling", 1, None)
    assert reopened.dispatched_at > period[0] and reopened.due_at > period[1]
    assert open_task(db, case.id).due_at == reopened.due_at
    assert db.scalar(select(Timer.due_at).where(Timer.case_id == case.id)) == reopened.sign_for_at
    assert _path(app, db, case.id)[-4:] == ("reopen", "gw_reopen", "handling_start", "gw_route")


def test_a_case_answered_on_the_spot_is_reopened_to_dispatch_without_a_period(login, db):
    member = login("member_a")
    member.submit("/cases/new", intake(db, disposition="on_spot", reply="已当场解答"))
    case = latest_case(db)
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "dissatisfied", "note": "居民说还没修好"})
    case = latest_case(db)
    assert (case.status, case.reopen_count, case.due_at, open_task(db, case.id).name) == (
        "dispatching", 1, None, "dispatch")
