"""Defects found walking the desk as a new user (issue 14, item 6): each test failed on the code before."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from babel.messages.pofile import read_po
from sqlalchemy import func, select, update

from tests.conftest import dispatch, intake, latest_case, open_task
from tracker import jobs, labels
from tracker.models import AuditEvent, Case, Grid

ZONE = ZoneInfo("Asia/Shanghai")


# -- date filters mean the local days the screens show --------------------------------------------

def _recorded_at(db, local: dt.datetime) -> Case:
    """Record a case and move its creation (and its events) to the local moment ``local``."""
    case = latest_case(db)
    at = local.replace(tzinfo=ZONE).astimezone(dt.UTC)
    db.execute(update(Case).where(Case.id == case.id).values(created_at=at))
    db.execute(update(AuditEvent).where(AuditEvent.case_id == case.id).values(at=at))
    return case


def test_date_filters_are_local_days(login, db):
    member = login("member_a")
    member.submit("/cases/new", intake(db, description="清晨的诉求"))
    # 07:30 in Beijing on 20 November is 23:30 UTC on the 19th: the screens show the 20th.
    early = _recorded_at(db, dt.datetime(2026, 11, 20, 7, 30))
    member.submit("/cases/new", intake(db, description="深夜的诉求"))
    # 23:30 in Beijing on 20 November is 15:30 UTC on the 20th.
    late = _recorded_at(db, dt.datetime(2026, 11, 20, 23, 30))
    day = "date_from=2026-11-20&date_to=2026-11-20"

    listed = member.get(f"/cases/?{day}").get_data(as_text=True)
    assert early.number in listed and late.number in listed
    assert early.number not in member.get("/cases/?date_to=2026-11-19").get_data(as_text=True)
    assert late.number not in member.get("/cases/?date_from=2026-11-21").get_data(as_text=True)

    exported = member.get(f"/cases/export.csv?{day}").get_data(as_text=True)
    assert early.number in exported and late.number in exported
    assert early.number not in member.get("/cases/export.csv?date_to=2026-11-19").get_data(as_text=True)

    auditor = login("auditor")
    found = auditor.get(f"/audit?{day}").get_data(as_text=True)
    assert early.number in found and late.number in found
    assert early.number not in auditor.get("/audit?date_to=2026-11-19").get_data(as_text=True)
    assert late.number not in auditor.get("/audit?date_from=2026-11-21").get_data(as_text=True)


# -- Chinese pages speak Chinese ----------------------------------------------------------------

#: A Chinese character (or closing bracket/quote) followed by an English full stop.
ENGLISH_STOP = re.compile(r"[\u4e00-\u9fff）」”]\.(?:\s|<|$)")
CATALOG = Path(__file__).resolve().parents[2] / "tracker/translations/zh_Hans_CN/LC_MESSAGES/messages.po"


def test_no_chinese_message_ends_with_an_english_full_stop():
    with CATALOG.open("rb") as po:
        catalog = read_po(po)
    offenders = [m.id for m in catalog if m.id for text in ([m.string] if isinstance(m.string, str) else m.string)
                 if text and re.search(r"[\u4e00-\u9fff]", text) and (text.endswith(".") or ENGLISH_STOP.search(text))]
    assert offenders == []


def test_the_login_page_asks_in_chinese(app):
    client = app.test_client()
    html = client.get("/cases/", follow_redirects=True).get_data(as_text=True)
    assert "请先登录。" in html and "Please log in" not in html


def test_the_handover_form_hands_over_to_people_not_to_an_end_date(login, db):
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    html = login("leader_a").get(f"/grids/{grid}/handover").get_data(as_text=True)
    assert "移交给" in html and "结束日期" not in html


def test_a_task_waiting_for_someone_else_says_so_in_chinese(login, db):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id, handler="member_a")
    html = login("leader_a").get(f"/tasks/{open_task(db, case.id).id}").get_data(as_text=True)
    assert "等待网格员甲办理。" in html and not ENGLISH_STOP.search(html)


def test_the_timeline_shows_task_names_once_each_never_internal_codes(login, db):
    member = login("member_a")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id, handler="member_a")
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "已更换灯泡"})
    member.submit(f"/tasks/{open_task(db, case.id).id}", {"satisfaction": "dissatisfied", "note": "灯又坏了"})
    for page in (f"/cases/{case.id}", f"/cases/{case.id}/history"):
        html = login("auditor").get(page).get_data(as_text=True)
        for code in ("record_reply", "handle_member", "(dispatch)", "(callback)"):
            assert code not in html, (page, code)
        assert "（登记答复）" in html or "(登记答复)" in html
        assert "(网格员办理)" in html
        # The handling text is the case's result: shown once, not as the form's text and the result both.
        assert html.count("→ 已更换灯泡") == 1, page
        assert not ENGLISH_STOP.search(html)


def test_timer_events_name_the_timer_and_why_no_notice_went_out(app):
    with app.test_request_context():
        rows = labels.change_rows({"timer": [None, "t_sign_for"], "skipped": [None, "already signed for"],
                                   "due_at": ["2026-11-20T02:00:00+00:00", "2026-11-20T02:00:00.000001+00:00"]},
                                  {})
    assert rows == [("定时器", "", "签收时限"), ("未发送", "", "已签收，不再通知")]


# -- a visit raises a case only with its request written down -------------------------------------

def test_a_visit_opens_no_case_with_an_invisible_description(app, login, db):
    from tests.web.test_visits import _household_with_plan, _visits, local
    _household_with_plan(login, db)
    jobs.start_visits(app, dt.date(2026, 10, 5))
    (visit,) = _visits(db)
    with time_machine.travel(local(2026, 10, 5, 10, 0), tick=False):
        member = login("member_a")
        for blank in ("", "\u200b", "\ufeff\u3000", " \u200b\u200d "):
            response = member.submit(f"/visits/{visit.id}", {
                "note": "精神好。", "raise_case": "y", "category": "civil_affairs", "description": blank})
            assert response.status_code == 422 and "请填写该案件的诉求内容" in response.get_data(as_text=True), repr(blank)
        assert db.scalar(select(func.count()).select_from(Case)) == 0
        assert member.submit("/cases/new", intake(db, description="\u200b\u200b")).status_code == 422
        assert db.scalar(select(func.count()).select_from(Case)) == 0
