"""Printable A4 pages: the dispatch slip (派单单), the handling record (办结单) and the whole case file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import configured_app, dispatch, intake, latest_case, open_task
from tests.web.test_attachments import files, photo


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _handled(login, db):
    """Record a case with a photo, dispatch it, add an after photo and handle it; return it."""
    member = login("member_a")
    assert member.submit("/cases/new", {**intake(db, description="3单元楼道灯不亮"),
                                        "photos": files((photo(), "light.jpg"))}).status_code == 302
    case = latest_case(db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    task = open_task(db, case.id)
    assert member.submit(f"/cases/{case.id}/photos", {"kind": "after", "task_id": task.id,
                                                      "photos": files((photo("white"), "fixed.jpg"))},
                         page=f"/tasks/{task.id}").status_code == 302
    assert member.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已更换灯泡"}).status_code == 302
    return latest_case(db)


def test_the_case_page_links_the_three_print_pages_and_each_prints_on_a4(app, login, db):
    case = _handled(login, db)
    reader = login("auditor")
    page = reader.get(f"/cases/{case.id}").get_data(as_text=True)
    for path in ("dispatch", "handling", "file"):
        assert f"/cases/{case.id}/print/{path}" in page
    slip = reader.get(f"/cases/{case.id}/print/dispatch").get_data(as_text=True)
    assert "派单单" in slip and "网格员甲" in slip and "3单元楼道灯不亮" in slip and "接单人签字" in slip
    assert "print.css" in slip and "gridloop.css" not in slip  # a sheet of paper, no site header
    record = reader.get(f"/cases/{case.id}/print/handling").get_data(as_text=True)
    assert "办结单" in record and "已更换灯泡" in record and "处理后" in record
    whole = reader.get(f"/cases/{case.id}/print/file").get_data(as_text=True)
    assert "案卷" in whole and "诉求照片" in whole and "已更换灯泡" in whole and case.audit_head[:16] in whole


def test_print_pages_follow_the_case_permissions(app, login, db):
    case = _handled(login, db)
    for path in ("dispatch", "handling", "file"):
        assert login("member_b").get(f"/cases/{case.id}/print/{path}").status_code == 403
        assert login("leader_a").get(f"/cases/{case.id}/print/{path}").status_code == 200
    assert login("auditor").get("/cases/999999/print/file").status_code == 404


def test_print_css_sets_a4_pages():
    from pathlib import Path
    css = (Path(__file__).resolve().parents[2] / "static" / "print.css").read_text(encoding="utf-8")
    assert "size: A4" in css and "@media print" in css
