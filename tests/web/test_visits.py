"""Routine visits: plans create visit tasks on the right days, missed visits reach the leader,
recording a visit writes the resident diary and may raise a case."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import select

from tests.conftest import building_id, user_id
from tracker import jobs
from tracker.models import Case, DiaryNote, Household, Notification, Timer, Visit, VisitPlan

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def _household_with_plan(login, db, weekdays=("1", "4"), on_holiday="keep", at=local(2026, 9, 28, 9, 0)) -> Household:
    """As leader_a: register a household in grid A and plan member_a's visits.

    Logins happen inside the time travel: a session cookie signed "in the future" is refused.
    """
    with time_machine.travel(at, tick=False):
        leader = login("leader_a")
        response = leader.submit("/households", {
            "building_id": str(building_id(db)), "address_detail": "3单元502", "head_name": "王奶奶",
            "phone": "13900001111", "care_group": "elderly_alone", "note": "94岁，独居"})
        assert response.status_code == 302, response.get_data(as_text=True)[:400]
        household = db.scalars(select(Household).order_by(Household.id.desc())).first()
        response = leader.submit(f"/households/{household.id}", {
            "member_id": str(user_id(db, "member_a")), "weekdays": list(weekdays), "time_of_day": "09:30",
            "on_holiday": on_holiday})
        assert response.status_code == 302, response.get_data(as_text=True)[:400]
    return household


def _visits(db) -> list[Visit]:
    db.expire_all()
    return db.scalars(select(Visit).order_by(Visit.scheduled_for)).all()


def test_plan_creates_visits_on_its_weekdays_only_once_across_the_national_day_holiday(app, login, db):
    _household_with_plan(login, db)  # Monday and Thursday, visits kept on holidays
    # Mon 28 Sep .. Sun 11 Oct 2026: 1-7 Oct are holidays (Thu 1 Oct, Mon 5 Oct among them).
    for offset in range(14):
        jobs.start_visits(app, dt.date(2026, 9, 28) + dt.timedelta(days=offset))
    jobs.start_visits(app, dt.date(2026, 10, 1))  # a second run (restart, second scheduler) adds nothing
    assert [v.scheduled_for.isoformat() for v in _visits(db)] == [
        "2026-09-28", "2026-10-01", "2026-10-05", "2026-10-08"]
    first = _visits(db)[0]
    assert first.planned_at == local(2026, 9, 28, 9, 30)
    assert first.member_id == user_id(db, "member_a")


def test_plan_that_skips_holidays_has_no_visit_on_them(app, login, db):
    _household_with_plan(login, db, on_holiday="skip")
    for offset in range(14):
        jobs.start_visits(app, dt.date(2026, 9, 28) + dt.timedelta(days=offset))
    assert [v.scheduled_for.isoformat() for v in _visits(db)] == ["2026-09-28", "2026-10-08"]


def test_visit_task_is_in_the_members_inbox_and_recording_it_writes_the_diary(app, login, db):
    household = _household_with_plan(login, db)
    jobs.start_visits(app, dt.date(2026, 10, 5))
    (visit,) = _visits(db)
    with time_machine.travel(local(2026, 10, 5, 10, 0), tick=False):
        member = login("member_a")
        assert f"/visits/{visit.id}" in member.get("/").get_data(as_text=True)
        assert member.submit(f"/visits/{visit.id}", {"note": ""}).status_code == 422  # nothing saved
        assert db.scalar(select(DiaryNote.id)) is None
        response = member.submit(f"/visits/{visit.id}", {
            "note": "精神好，血压偏高，已提醒按时服药。", "raise_case": "y", "category": "civil_affairs",
            "description": "申请高龄津贴"})
        assert response.status_code == 302
    (note,) = db.scalars(select(DiaryNote)).all()
    assert (note.written_on, note.visit_id, note.author_id) == (dt.date(2026, 10, 5), visit.id, user_id(db, "member_a"))
    case = db.get(Case, note.case_id)
    assert (case.channel, case.resident_name, case.description) == ("visit", "王奶奶", "申请高龄津贴")
    assert _visits(db)[0].status == "done"
    assert db.scalar(select(Timer).where(Timer.visit_id == visit.id)) is None
    with time_machine.travel(local(2026, 10, 5, 11, 0), tick=False):
        page = login("leader_a").get(f"/households/{household.id}").get_data(as_text=True)
    assert "血压偏高" in page and case.number in page


def test_a_visit_not_recorded_by_the_end_of_its_day_is_missed_and_the_leader_is_told(app, login, db):
    _household_with_plan(login, db)
    with time_machine.travel(local(2026, 10, 8, 6, 0), tick=False):
        assert jobs.start_visits(app) == 1  # the day's job, at visit_hour
    (visit,) = _visits(db)
    with time_machine.travel(local(2026, 10, 8, 23, 0), tick=False):
        assert jobs.tick(app).fired == 0
    with time_machine.travel(local(2026, 10, 9, 0, 1), tick=False):
        assert jobs.tick(app).fired == 1
        assert jobs.tick(app).fired == 0
        leader_inbox = login("leader_a").get("/").get_data(as_text=True)
    (notice,) = db.scalars(select(Notification).where(Notification.user_id == user_id(db, "leader_a"))).all()
    assert notice.kind == "visit_missed" and json.loads(notice.params)["household"] == "王奶奶"
    assert f"/visits/{visit.id}" in leader_inbox
    # It can still be recorded late.
    with time_machine.travel(local(2026, 10, 9, 9, 0), tick=False):
        member = login("member_a")
        assert member.submit(f"/visits/{visit.id}", {"note": "补访：一切正常"}).status_code == 302
    assert _visits(db)[0].status == "done" and _visits(db)[0].missed_at is not None


def test_only_the_grid_records_visits_and_only_leaders_plan_them(app, login, db):
    household = _household_with_plan(login, db, at=dt.datetime.now(SH))
    jobs.start_visits(app, dt.date(2026, 10, 8))
    (visit,) = _visits(db)
    other = login("member_b")
    assert other.get(f"/households/{household.id}").status_code == 403
    assert other.get(f"/visits/{visit.id}").status_code == 403
    member = login("member_a")
    assert member.submit(f"/households/{household.id}", {
        "member_id": str(user_id(db, "member_a")), "weekdays": ["2"], "time_of_day": "10:00",
        "on_holiday": "keep"}).status_code == 403
    assert db.scalar(select(VisitPlan.id).where(VisitPlan.weekdays == "2")) is None
    leader = login("leader_a")
    response = leader.submit(f"/households/{household.id}", {
        "member_id": str(user_id(db, "member_a")), "weekdays": ["2"], "time_of_day": "25:00", "on_holiday": "keep"})
    assert response.status_code == 422 and "HH:MM" in response.get_data(as_text=True)
    auditor = login("auditor")
    assert auditor.get(f"/households/{household.id}").status_code == 200
    assert auditor.submit(f"/visits/{visit.id}", {"note": "x"}).status_code == 403


def test_a_diary_note_outside_a_visit(login, db):
    household = _household_with_plan(login, db, at=dt.datetime.now(SH))
    member = login("member_a")
    assert member.submit(f"/households/{household.id}", {"note-text": "女儿下周回来探望。"}).status_code == 302
    (note,) = db.scalars(select(DiaryNote)).all()
    assert note.visit_id is None and note.text == "女儿下周回来探望。"
