"""A running case stays on the BPMN version it started with; new cases take the newest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import func, select

from tests.conftest import PASSWORD, Browser, dispatch, intake, latest_case, open_task
from tracker import create_app, jobs, web
from tracker.models import Case, Notification, ProcessDefinition, Task, TaskStatus, Timer
from tracker.services.audit import verify_chain
from workflows import content_hash

ROOT = Path(__file__).resolve().parents[2]


def _login(app, username: str) -> Browser:
    """Log a user in on a client of ``app``."""
    browser = Browser(app.test_client())
    assert browser.submit("/login", {"username": username, "password": PASSWORD}).status_code == 302
    return browser


def test_running_case_keeps_its_version_after_a_new_deploy(app, db, tmp_path):
    _login(app, "member_a").submit("/cases/new", intake(db))
    old_case = latest_case(db)

    bpmn = tmp_path / "bpmn"
    bpmn.mkdir()
    source = (ROOT / "bpmn" / "case_closed_loop.bpmn").read_text(encoding="utf-8")
    (bpmn / "case_closed_loop.bpmn").write_text(source.replace('name="派单/转办"', 'name="派单（新版）"'),
                                                encoding="utf-8")
    new_app = create_app({"app": {"database_url": app.config["DATABASE_URL"], "bpmn_dir": str(bpmn)}})
    _login(new_app, "member_a").submit("/cases/new", intake(db))
    new_case = latest_case(db)

    assert db.scalar(select(func.count()).select_from(ProcessDefinition)) == 2
    assert new_case.definition_id != old_case.definition_id
    assert open_task(db, new_case.id).title == "派单（新版）"
    assert open_task(db, old_case.id).title == "派单/转办"

    # The new server drives the old case on the old version.
    assert dispatch(_login(new_app, "leader_a"), db, old_case.id).status_code == 302
    assert open_task(db, old_case.id).name == "handle_member"
    assert db.get(Case, old_case.id).definition_id == old_case.definition_id
    new_app.extensions["gridloop.db"].dispose()


# -- a case started before the process owned its states -----------------------------------------

#: case_closed_loop as deployed before its user tasks named their status, signing for was caught on
#: handling and one sub-process carried the timers (commit 3c4cf86): byte for byte, so its content hash
#: is the one stored for the cases started on it.
PREVIOUS = Path(__file__).resolve().parent / "fixtures" / "case_closed_loop_3c4cf86.bpmn"
SH = ZoneInfo("Asia/Shanghai")


def _at(*args) -> time_machine.travel:
    """Travel to a moment in Beijing time, the clock standing still."""
    return time_machine.travel(dt.datetime(*args, tzinfo=SH), tick=False)


def _open_names(db, case_id: int) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(Task.name).where(Task.case_id == case_id, Task.status == TaskStatus.OPEN)))


def _reload(db, case_id: int) -> Case:
    db.expire_all()
    return db.get(Case, case_id)


def _fired(app, *moment) -> int:
    with _at(*moment):
        return jobs.tick(app).fired


def test_a_case_started_on_the_previous_version_runs_to_archive_after_the_upgrade(app, db, tmp_path, monkeypatch):
    bpmn = tmp_path / "bpmn"
    bpmn.mkdir()
    (bpmn / "case_closed_loop.bpmn").write_text(PREVIOUS.read_text(encoding="utf-8"), encoding="utf-8")
    # The previous release, which knew no status property, deployed that version and started a case on it.
    with monkeypatch.context() as previous_release:
        previous_release.setattr(web, "check_statuses", lambda engine, definitions, process_id: (definitions, []))
        old_app = create_app({"app": {"database_url": app.config["DATABASE_URL"], "bpmn_dir": str(bpmn),
                                      "session_lifetime_hours": 24 * 400, "session_max_days": 400}})
    with _at(2026, 11, 2, 9, 0):
        assert _login(old_app, "member_a").submit("/cases/new", intake(db)).status_code == 302
    old_app.extensions["gridloop.db"].dispose()
    case = latest_case(db)
    assert (case.status, case.definition.content_hash) == ("dispatching", content_hash(PREVIOUS.read_text("utf-8")))

    # The new version is deployed (``app`` loads bpmn/): new cases start on it, the old case stays.
    with _at(2026, 11, 2, 9, 30):
        member, leader = _login(app, "member_a"), _login(app, "leader_a")
        member.submit("/cases/new", intake(db))
    assert latest_case(db).definition_id != case.definition_id
    with _at(2026, 11, 2, 10, 0):  # Monday; the limit is Wednesday 11 November, 10:00
        assert dispatch(leader, db, case.id).status_code == 302
    case = _reload(db, case.id)
    assert (case.status, _open_names(db, case.id)) == ("handling", {"handle_member"})

    # Its own timers fire in turn: sign-for (not signed), reminder, supervision.
    assert _fired(app, 2026, 11, 3, 10, 1) == 1
    handle = open_task(db, case.id)
    with _at(2026, 11, 3, 11, 0):  # signed for late: the old process catches no signal, the case records it
        assert member.submit(f"/tasks/{handle.id}/sign", {}, page=f"/tasks/{handle.id}").status_code == 302
    assert _reload(db, case.id).signed_at is not None
    assert _fired(app, 2026, 11, 9, 10, 1) == 1
    assert _fired(app, 2026, 11, 11, 10, 1) == 1
    assert _open_names(db, case.id) == {"handle_member", "supervise"}
    assert _reload(db, case.id).status == "handling"
    kinds = set(db.scalars(select(Notification.kind).where(Notification.case_id == case.id)))
    assert kinds == {"sign_for", "reminder", "supervision"}

    # Handled: supervision closes; the resident is not satisfied, so the process reopens it (重办) and the
    # case follows it into a new handling period of the same class, starting now.
    with _at(2026, 11, 11, 11, 0):
        member.submit(f"/tasks/{handle.id}", {"handle_action": "done", "text": "已修好"})
    assert (_reload(db, case.id).status, _open_names(db, case.id)) == ("callback", {"callback"})
    with _at(2026, 11, 11, 12, 0):
        member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "dissatisfied", "note": "居民说还没修好"})
    case = _reload(db, case.id)
    assert (case.status, case.reopen_count, case.signed_at, _open_names(db, case.id)) == (
        "handling", 1, None, {"handle_member"})
    calendar = app.extensions["gridloop.calendar"]
    assert case.due_at == calendar.add_working_days(dt.datetime(2026, 11, 11, 12, 0, tzinfo=SH), 7)
    assert open_task(db, case.id).due_at == case.due_at
    assert db.scalar(select(Timer.due_at).where(Timer.case_id == case.id)) == case.sign_for_at
    assert _fired(app, 2026, 11, 12, 12, 1) == 1  # the new period's sign-for limit

    with _at(2026, 11, 13, 9, 0):
        member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "再次修好"})
        member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "satisfied"})
        assert _reload(db, case.id).status == "archive_review"
        leader.submit(f"/tasks/{open_task(db, case.id).id}", {"confirm": "y", "comment": "同意归档"})
    case = _reload(db, case.id)
    assert (case.status, case.outcome, case.definition.content_hash) == (
        "archived", "satisfied", content_hash(PREVIOUS.read_text("utf-8")))
    assert db.scalar(select(Timer).where(Timer.case_id == case.id)) is None
    assert verify_chain(db, case.id).ok
