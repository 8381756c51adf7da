"""Hotspots (未诉先办): N requests about one building compound and category within M days."""

from __future__ import annotations

import time_machine
from sqlalchemy import select

from tests.conftest import user_id
from tests.web.test_stats import NOW, local, record, user_grid
from tracker import jobs
from tracker.models import AuditEvent, Case, DuplicateLink, Hotspot, Notification


def _hotspot_notices(db, username: str) -> list[Notification]:
    db.expire_all()
    return db.scalars(select(Notification).where(Notification.user_id == user_id(db, username),
                                                 Notification.kind == "hotspot")).all()


def test_three_requests_about_one_place_make_a_hotspot_the_leader_hears_of_once(app, db, login):
    first = record(app, db, local(2026, 10, 20, 9, 0))
    second = record(app, db, local(2026, 10, 23, 9, 0))
    record(app, db, local(2026, 10, 23, 10, 0), category="legal")  # another category: not counted
    duplicate = record(app, db, local(2026, 10, 24, 9, 0))
    db.add(DuplicateLink(case_id=duplicate, main_case_id=second, linked_by_id=user_id(db, "leader_a"),
                         linked_at=local(2026, 10, 24, 9, 5)))
    db.commit()
    assert jobs.find_hotspots(app, local(2026, 10, 25, 9, 0)) == 0  # two, and a linked duplicate
    record(app, db, local(2026, 10, 13, 9, 0))  # 12 days before: outside the 7-day window
    third = record(app, db, local(2026, 10, 26, 9, 0))
    assert jobs.find_hotspots(app, local(2026, 10, 26, 9, 30)) == 1
    spot = db.scalars(select(Hotspot)).one()
    assert {c.id for c in spot.cases} == {first, second, third}
    [notice] = _hotspot_notices(db, "leader_a")
    assert '"count": 3' in notice.params and "1号楼院" in notice.params
    assert _hotspot_notices(db, "member_a") == []
    # Again: nothing new; a later request about the place joins the same hotspot, with no second notice.
    fourth = record(app, db, local(2026, 10, 27, 9, 0))
    assert jobs.find_hotspots(app, local(2026, 10, 27, 9, 30)) == 0
    db.expire_all()
    assert {c.id for c in db.get(Hotspot, spot.id).cases} == {first, second, third, fourth}
    assert len(_hotspot_notices(db, "leader_a")) == 1


def test_the_leader_opens_one_proactive_case_linking_the_hotspot(app, db, login):
    ids = [record(app, db, local(2026, 10, 26, 9, n)) for n in range(3)]
    jobs.find_hotspots(app, local(2026, 10, 26, 10, 0))
    spot = db.scalars(select(Hotspot)).one()
    with time_machine.travel(NOW, tick=False):
        leader = login("leader_a")
        board = leader.get(f"/numbers/grids/{user_grid(app, 'GA')}").get_data(as_text=True)
        assert f'data-hotspot="{spot.id}"' in board
        member = login("member_a")
        assert member.submit(f"/numbers/hotspots/{spot.id}", {"resident_name": "网格员甲",
                                                              "resident_phone": "13812345678",
                                                              "description": "统一维修"}).status_code == 403
        # A bad phone is named and nothing is opened.
        bad = leader.submit(f"/numbers/hotspots/{spot.id}", {"resident_name": "网格长甲", "resident_phone": "12",
                                                             "description": "统一维修楼道灯"})
        assert bad.status_code == 422 and db.scalar(select(Case).where(Case.channel == "proactive")) is None
        opened = leader.submit(f"/numbers/hotspots/{spot.id}", {"resident_name": "网格长甲",
                                                                "resident_phone": "13812345678",
                                                                "description": "统一维修楼道灯"})
        assert opened.status_code == 302
        case = db.scalar(select(Case).where(Case.channel == "proactive"))
        assert case is not None and case.building_id == spot.building_id and case.category == spot.category
        db.expire_all()
        assert db.get(Hotspot, spot.id).proactive_case_id == case.id
        event = db.scalar(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                   AuditEvent.action == "case.hotspot_linked"))
        numbers = [db.get(Case, i).number for i in ids]
        assert all(n in event.changes for n in numbers)
        detail = leader.get(opened.location).get_data(as_text=True)
        assert "case.hotspot_linked" not in detail  # the trail speaks Chinese, not codes
        # Only one proactive case per hotspot.
        again = leader.submit(f"/numbers/hotspots/{spot.id}", {"resident_name": "网格长甲",
                                                               "resident_phone": "13812345678",
                                                               "description": "再开一件"})
        assert again.status_code == 422 and "该热点已主动立案" in again.get_data(as_text=True)
        assert db.scalar(select(Case).where(Case.channel == "proactive", Case.id != case.id)) is None
        # The proactive case itself never counts toward a hotspot.
        assert jobs.find_hotspots(app, NOW) == 0
