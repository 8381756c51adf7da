"""The staff grid map: open and overdue cases per building within what the person may read, filtered by
category; a building's cases; the nearest building for the intake form; the drawing itself."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from tests.conftest import building_id, dispatch, intake, latest_case
from tracker import maps
from tracker.models import Building, Case, Community, Grid, utcnow


def _place(db) -> None:
    """Give the seed buildings coordinates (grid A's at 39.9000/116.4000, grid B's 300 m east)."""
    for b in db.scalars(select(Building)).all():
        b.latitude, b.longitude = (39.9, 116.4) if b.grid.code == "GA" else (39.9, 116.4035)
    db.flush()


def _counts(html: str, building: int) -> tuple[int, int]:
    """Read a building's open and overdue counts off the map."""
    found = re.search(rf'data-building="{building}" data-open="(\d+)" data-overdue="(\d+)"', html)
    assert found, html[:300]
    return int(found.group(1)), int(found.group(2))


def _community(db) -> int:
    return db.scalar(select(Community.id))


def _two_cases_one_overdue(login, db) -> tuple[Case, Case]:
    member = login("member_a")
    member.submit("/cases/new", intake(db, category="property_repair"))
    first = latest_case(db)
    member.submit("/cases/new", intake(db, category="legal", description="劳动合同纠纷"))
    second = latest_case(db)
    assert dispatch(login("leader_a"), db, first.id).status_code == 302
    db.get(Case, first.id).due_at = utcnow() - dt.timedelta(days=1)  # past its limit
    db.flush()
    return first, second


def test_map_counts_open_and_overdue_cases_per_building_and_filters_by_category(app, db, login):
    _place(db)
    first, second = _two_cases_one_overdue(login, db)
    leader = login("leader_a")
    page = leader.get(f"/map/communities/{_community(db)}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert _counts(html, building_id(db)) == (2, 1) and _counts(html, building_id(db, "GB")) == (0, 0)
    assert f'href="/map/buildings/{building_id(db)}"' in html
    assert _counts(leader.get(f"/map/communities/{_community(db)}?category=legal").get_data(as_text=True),
                   building_id(db)) == (1, 0)
    # An unknown category is no filter (never an error).
    assert _counts(leader.get(f"/map/communities/{_community(db)}?category=x'--").get_data(as_text=True),
                   building_id(db)) == (2, 1)


def test_counts_and_building_lists_hold_only_cases_the_person_may_read(app, db, login):
    _place(db)
    first, second = _two_cases_one_overdue(login, db)
    other_grid = login("member_b")  # grid B: reads none of grid A's cases
    assert _counts(other_grid.get(f"/map/communities/{_community(db)}").get_data(as_text=True),
                   building_id(db)) == (0, 0)
    listed = other_grid.get(f"/map/buildings/{building_id(db)}").get_data(as_text=True)
    assert first.number not in listed and second.number not in listed
    own = login("member_a").get(f"/map/buildings/{building_id(db)}").get_data(as_text=True)
    assert first.number in own and second.number in own and f'href="/cases/{first.id}"' in own
    legal = login("member_a").get(f"/map/buildings/{building_id(db)}?category=legal").get_data(as_text=True)
    assert second.number in legal and first.number not in legal
    auditor = login("auditor").get(f"/map/communities/{_community(db)}").get_data(as_text=True)
    assert _counts(auditor, building_id(db)) == (2, 1)


def test_a_community_where_the_person_holds_no_role_is_refused(app, db, login):
    other = Community(name="别的社区")
    grid = Grid(community=other, code="X1", name="X网格")
    grid.buildings.append(Building(name="外区楼院"))
    db.add(other)
    db.flush()
    member = login("member_a")
    assert member.get(f"/map/communities/{other.id}").status_code == 403
    assert member.get(f"/map/buildings/{grid.buildings[0].id}").status_code == 403
    assert member.get("/map/communities/99999").status_code == 404
    assert member.get("/map/").status_code == 302  # one community: straight to its map
    assert login("auditor").get(f"/map/communities/{other.id}").status_code == 403
    assert app.test_client().get(f"/map/communities/{_community(db)}").status_code == 302  # to the login


def test_nearest_building_is_proposed_among_the_persons_own_grids(app, db, login):
    _place(db)
    member_a, member_b = login("member_a"), login("member_b")
    near = member_a.get("/map/nearest?lat=39.9003&lon=116.4001").get_json()
    assert near["building_id"] == building_id(db) and near["distance_m"] < 50
    # Standing at grid B's building, member_a (grid A only) is offered grid A's, 300 m away.
    assert member_a.get("/map/nearest?lat=39.9&lon=116.4035").get_json()["building_id"] == building_id(db)
    assert member_b.get("/map/nearest?lat=39.9&lon=116.4001").get_json()["building_id"] == building_id(db, "GB")
    far = member_a.get("/map/nearest?lat=40.5&lon=117.0")
    assert far.status_code == 200 and far.get_json()["building_id"] is None and far.get_json()["message"]
    assert member_a.get("/map/nearest?lat=abc&lon=1").status_code == 400
    assert member_a.get("/map/nearest?lat=91&lon=1").status_code == 400
    assert member_a.get("/map/nearest?lat=nan&lon=1").status_code == 400


def test_intake_form_offers_the_location_button(app, login):
    html = login("member_a").get("/cases/new").get_data(as_text=True)
    assert "data-locate" in html and 'data-url="/map/nearest"' in html and 'data-select="building_id"' in html
    assert "/static/map.js" in html


def test_drawing_keeps_north_up_and_proportions_and_skips_unplaced_buildings():
    grids = [maps.MapGrid(1, "G1", "第1网格"), maps.MapGrid(2, "G2", "<第2>")]
    buildings = [maps.MapBuilding(1, 1, "南", 39.90, 116.40), maps.MapBuilding(2, 1, "北", 39.91, 116.40),
                 maps.MapBuilding(3, 2, "东", 39.90, 116.41, href="/x?a=1&b=2", open_cases=3, overdue_cases=1),
                 maps.MapBuilding(4, 2, "无坐标", None, None)]
    points = maps.project(buildings)
    assert set(points) == {1, 2, 3}
    assert points[2][1] < points[1][1]  # north is up
    assert points[3][0] > points[1][0]  # east is right
    # 0.01° of latitude is ~1.3 times 0.01° of longitude at 39.9°N: drawn so.
    ratio = (points[1][1] - points[2][1]) / (points[3][0] - points[1][0])
    assert 1.25 < ratio < 1.35
    svg = str(maps.draw(grids, buildings, title="图", counts=True, labels={"open": "件待办", "overdue": "件超期"}))
    assert svg.count('class="grid-area"') == 2 and svg.count('class="building"') == 3
    assert "&lt;第2&gt;" in svg and "<第2>" not in svg  # names are escaped
    assert 'href="/x?a=1&amp;b=2"' in svg and "东: 3 件待办, 1 件超期" in svg
    assert "无坐标" not in svg and "style=" not in svg  # no inline style: the CSP refuses them
    assert maps.project([]) == {} and "<svg" in str(maps.draw([], [], title="空"))
