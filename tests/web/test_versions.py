"""A running case stays on the BPMN version it started with; new cases take the newest."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import Browser, PASSWORD, dispatch, intake, latest_case, open_task
from tracker import create_app
from tracker.models import Case, ProcessDefinition

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
