"""Mobile desk sessions (流动办公桌): a leader plans them on a route, staff open one on the day, record
requests into it through the one intake, answer on the spot or send on, and close it with a summary."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tests.conftest import building_id, dispatch, intake, latest_case, open_task, user_id
from tracker.models import Building, Case, DeskEntry, DeskRoute, DeskSession, Grid, utcnow

SH = ZoneInfo("Asia/Shanghai")


def _today() -> dt.date:
    return utcnow().astimezone(SH).date()


def _more_buildings(db) -> list[int]:
    """Give grid A three compounds in all (1, 2, 3号楼院); return their ids in the grid's order."""
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    db.add_all([Building(grid_id=grid.id, name="2号楼院"), Building(grid_id=grid.id, name="3号楼院")])
    db.flush()
    return list(db.scalars(select(Building.id).where(Building.grid_id == grid.id).order_by(Building.name)))


def _grid_a(db) -> int:
    return db.scalar(select(Grid.id).where(Grid.code == "GA"))


def _plan(leader, db, **data):
    fields = {"building_ids": [str(building_id(db))], "address": "", "first_day": _today().isoformat(),
              "starts_at": "09:00", "ends_at": "11:30", "staff_ids": [str(user_id(db, "member_a"))], "weeks": "1"}
    fields.update(data)
    return leader.submit(f"/desk/grids/{_grid_a(db)}/plan", fields)


def _sessions(db) -> list[DeskSession]:
    db.expire_all()
    return list(db.scalars(select(DeskSession).order_by(DeskSession.held_on, DeskSession.id)))


def test_a_weekly_route_visits_the_compounds_in_turn(app, db, login):
    ids = _more_buildings(db)
    response = _plan(login("leader_a"), db, building_ids=[str(i) for i in reversed(ids)], weeks="5")
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    sessions = _sessions(db)
    assert [s.held_on for s in sessions] == [_today() + dt.timedelta(weeks=k) for k in range(5)]
    assert [s.building_id for s in sessions] == [ids[0], ids[1], ids[2], ids[0], ids[1]]  # the grid's order
    route = db.scalar(select(DeskRoute))
    assert route.weekday == _today().isoweekday() and route.building_ids == ",".join(map(str, ids))
    assert {s.route_id for s in sessions} == {route.id} and all(s.status == "planned" for s in sessions)
    assert [u.username for u in sessions[0].staff] == ["member_a"]
    listed = login("member_a").get("/desk/").get_data(as_text=True)
    assert listed.count("/desk/" + str(sessions[0].id)) >= 1 and "A网格" in listed


def test_planning_refuses_what_cannot_be_held_and_saves_nothing(app, db, login):
    leader = login("leader_a")
    cases = [
        ({"building_ids": [], "address": ""}, "address"),
        ({"ends_at": "08:00"}, "ends_at"),
        ({"starts_at": "9点"}, "starts_at"),
        ({"staff_ids": []}, "staff_ids"),
        ({"staff_ids": [str(user_id(db, "member_b"))]}, "staff_ids"),  # grid B's member
        ({"building_ids": [str(building_id(db, "GB"))]}, "building_ids"),
        ({"first_day": (_today() - dt.timedelta(days=1)).isoformat()}, "first_day"),
        ({"weeks": "99"}, "weeks"),
    ]
    for data, _field in cases:
        response = _plan(leader, db, **data)
        assert response.status_code == 422, data
        assert 'class="error' in response.get_data(as_text=True), data
    assert _sessions(db) == []
    assert _plan(login("member_a"), db).status_code == 403  # only the grid's leaders plan
    assert _plan(login("leader_b"), db).status_code == 403
    assert _plan(leader, db, building_ids=[], address="幸福广场东门").status_code == 302
    [free] = _sessions(db)
    assert (free.building_id, free.address) == (None, "幸福广场东门")


def _record(browser, session_id: int, db, **data):
    fields = {k: v for k, v in intake(db).items() if k != "channel"}
    fields.update(data)
    return browser.submit(f"/desk/{session_id}/record", fields, page=f"/desk/{session_id}")


def test_a_session_walked_end_to_end(app, db, login):
    assert _plan(login("leader_a"), db, weeks="2").status_code == 302
    today, next_week = _sessions(db)
    member = login("member_a")
    page = member.get(f"/desk/{today.id}").get_data(as_text=True)
    assert 'id="open-session"' in page
    # Next week's session cannot be opened yet; nothing is recorded into a session not open.
    refused = member.submit(f"/desk/{next_week.id}/open", {}, page=f"/desk/{today.id}")
    assert refused.status_code == 302 and _sessions(db)[1].status == "planned"
    assert _record(member, today.id, db).status_code == 422
    assert member.submit(f"/desk/{today.id}/open", {}).status_code == 302
    assert _sessions(db)[0].status == "open"
    page = member.get(f"/desk/{today.id}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{building_id(db)}">', page)  # the place is prefilled
    assert 'name="channel"' not in page  # the channel is the desk's own
    # One answered on the spot, one sent on, one refused (bad phone): nothing lost, the input kept.
    assert _record(member, today.id, db, disposition="on_spot", reply="已当场解答",
                   description="咨询养老认证").status_code == 302
    spot = latest_case(db)
    assert _record(member, today.id, db, description="楼道灯不亮").status_code == 302
    sent = latest_case(db)
    bad = _record(member, today.id, db, resident_phone="123", description="水压低")
    assert bad.status_code == 422 and "水压低" in bad.get_data(as_text=True)
    assert {c.channel for c in (spot, sent)} == {"mobile_desk"} and spot.status == "callback"
    entries = db.scalars(select(DeskEntry).order_by(DeskEntry.id)).all()
    assert [(e.case_id, e.answered_on_spot) for e in entries] == [(spot.id, True), (sent.id, False)]
    # Another grid's member sees nothing of the session, and cannot record into it.
    assert login("member_b").get(f"/desk/{today.id}").status_code == 403
    assert login("member_a2").get(f"/desk/{today.id}").status_code == 200  # same grid: reads it
    assert _record(login("member_a2"), today.id, db).status_code == 403  # not its staff
    # Close with a note: the summary counts what was taken.
    closed = member.submit(f"/desk/{today.id}/close", {"note": "天气晴，来访12人"}, page=f"/desk/{today.id}")
    assert closed.status_code == 302 and closed.headers["Location"].endswith(f"/desk/{today.id}/summary")
    summary = member.get(f"/desk/{today.id}/summary").get_data(as_text=True)

    def count(html: str, what: str) -> int:
        return int(re.search(rf'id="count-{what}">(\d+)<', html).group(1))

    assert [count(summary, w) for w in ("taken", "on-spot", "sent-on", "resolved")] == [2, 1, 1, 0]
    assert "天气晴，来访12人" in summary and "data-print" in summary
    assert _record(member, today.id, db).status_code == 422  # closed: takes no more
    # Later the sent-on case is handled: the summary counts it resolved.
    assert dispatch(login("leader_a"), db, sent.id).status_code == 302
    task = open_task(db, sent.id)
    assert member.submit(f"/tasks/{task.id}", {"handle_action": "done", "text": "已更换灯泡"}).status_code == 302
    summary = member.get(f"/desk/{today.id}/summary").get_data(as_text=True)
    assert [count(summary, w) for w in ("taken", "on-spot", "sent-on", "resolved")] == [2, 1, 1, 1]
    listed = login("leader_a").get("/desk/").get_data(as_text=True)
    assert f"/desk/{today.id}/summary" in listed
    assert db.scalar(select(func.count(Case.id))) == 2


def test_the_demo_publishes_its_grids_and_plans_a_desk_route(app, db):
    result = app.test_cli_runner().invoke(args=["demo", "--reset"])
    assert result.exit_code == 0, result.output
    db.expire_all()
    route = db.scalar(select(DeskRoute))
    sessions = db.scalars(select(DeskSession).where(DeskSession.route_id == route.id)
                          .order_by(DeskSession.held_on)).all()
    assert route.weekday == 2 and len(sessions) == 7 and len({s.building_id for s in sessions}) == 7
    grid = db.scalar(select(Grid).where(Grid.code == "G1"))
    html = app.test_client().get(f"/public/communities/{grid.community_id}").get_data(as_text=True)
    assert "010-66660001" in html and "政策咨询" in html and html.count('class="building"') == 28
