"""Tap to call: every resident, household and staff phone on a page is a tel: link (the phone-first screens)."""

from __future__ import annotations

from sqlalchemy import update

from tests.conftest import dispatch, intake, latest_case, open_task
from tests.web.test_offline_records import _households, _visit_of
from tracker import jobs
from tracker.models import User

RESIDENT = 'href="tel:+8613812345678"'
HOUSEHOLD = 'href="tel:+8613900001111"'


def test_every_phone_shown_is_a_tel_link(app, db, login):
    db.execute(update(User).where(User.username == "member_a").values(phone="+8613700001234"))
    member, leader = login("member_a"), login("leader_a")
    assert member.submit("/cases/new", intake(db)).status_code == 302
    case = latest_case(db)
    dispatch(leader, db, case.id)
    [household_id] = _households(login, db, ["王奶奶"])
    jobs.start_visits(app)
    visit = _visit_of(db, "王奶奶")
    pages = {
        f"/cases/{case.id}": RESIDENT, f"/tasks/{open_task(db, case.id).id}": RESIDENT,
        "/residents?phone=13812345678": RESIDENT, f"/households/{household_id}": HOUSEHOLD,
        f"/visits/{visit.id}": HOUSEHOLD, "/board": 'href="tel:+8613700001234"',
    }
    for path, link in pages.items():
        page = leader.get(path, follow_redirects=True).get_data(as_text=True)
        assert link in page, path
        assert 'class="tel"' in page, path
