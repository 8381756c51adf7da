"""Offline records sent again (a phone replaying its outbox): the same one-time key makes one case and
one visit record; a different record of a recorded visit is refused. The browser side is in
tests/browser/test_offline_in_chromium.py."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import building_id, user_id
from tracker import jobs
from tracker.models import Case, DiaryNote, Household, Visit


def _households(login, db, names: list[str]) -> list[int]:
    """As leader_a: register households in grid A, each visited by member_a every day; start today's visits."""
    leader = login("leader_a")
    for name in names:
        assert leader.submit("/households", {
            "building_id": str(building_id(db)), "address_detail": "3单元502", "head_name": name,
            "phone": "13900001111", "care_group": "elderly_alone", "note": ""}).status_code == 302
        household = db.scalars(select(Household).order_by(Household.id.desc())).first()
        assert leader.submit(f"/households/{household.id}", {
            "member_id": str(user_id(db, "member_a")), "weekdays": [str(d) for d in range(1, 8)],
            "time_of_day": "09:30", "on_holiday": "keep"}).status_code == 302
    return [household.id for household in db.scalars(select(Household).order_by(Household.id))]


def _visit_of(db, name: str) -> Visit:
    db.expire_all()
    return db.scalars(select(Visit).join(Household).where(Household.head_name == name)).one()


def test_a_replayed_case_or_visit_record_is_made_once(app, login, db):
    """The server's side of the replay: the same one-time key sent twice makes one case and one visit record."""
    _households(login, db, ["王奶奶"])
    jobs.start_visits(app)
    visit = _visit_of(db, "王奶奶")
    member = login("member_a")
    data = {"resident_name": "赵大爷", "resident_phone": "13912345678", "building_id": str(building_id(db)),
            "category": "property_repair", "description": "重放测试", "channel": "phone", "urgency": "normal",
            "green_channel": "", "disposition": "dispatch", "reply": "", "intake_key": "phone-key-0001",
            "duplicates": "confirmed"}
    first, again = member.submit("/cases/new", data), member.submit("/cases/new", data)
    assert first.status_code == again.status_code == 302 and first.location == again.location
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    record = {"version": str(visit.version), "note": "走访一次", "record_key": "phone-key-0002"}
    assert member.submit(f"/visits/{visit.id}", record).status_code == 302
    assert member.submit(f"/visits/{visit.id}", record).status_code == 302  # the replay: done already, fine
    assert db.scalars(select(DiaryNote.text)).all() == ["走访一次"]
    other = member.submit(f"/visits/{visit.id}", {**record, "record_key": "another-record-1"})
    assert other.status_code == 409 and "已" in other.get_data(as_text=True)  # a different record: refused
    assert db.scalars(select(DiaryNote.text)).all() == ["走访一次"]
