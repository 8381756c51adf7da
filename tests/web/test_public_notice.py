"""The public grid notice (网格公示), its poster, the resident form its QR code opens and the status page:
no login, no one's personal data, the same intake as every door, rate-limited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import building_id, configured_app, latest_case
from tracker.codes import Channel, Door
from tracker.db import get_session
from tracker.models import Building, Case, Community, Grid, TaskStatus, User
from tracker.permissions import PermissionDenied
from tracker.services import for_app
from tracker.services.audit import verify_chain
from tracker.services.cases import open_case
from tracker.services.commands import RecordCase

QUESTION = re.compile(r"(\d) \+ (\d) = \?")
CHALLENGE = re.compile(r'id="challenge" name="challenge" type="hidden" value="([^"]+)"')


def _publish(db) -> None:
    """Give grid A's leader a public duty phone, its buildings coordinates, hours and services."""
    leader = db.scalar(select(User).where(User.username == "leader_a"))
    leader.phone, leader.duty_phone, leader.public_phone = "+8613800000001", "010-66668888", True
    member = db.scalar(select(User).where(User.username == "member_a"))
    member.phone, member.public_phone = "+8613900000002", False
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    grid.office_hours, grid.service_items = "周一至周五 9:00-17:00", "代办证明\n政策咨询"
    for n, b in enumerate(db.scalars(select(Building)).all()):
        b.latitude, b.longitude = 39.90 + n * 0.001, 116.40 + n * 0.002
    db.flush()


def _community_id(db) -> int:
    return db.scalar(select(Community.id))


def _grid_id(db, code: str = "GA") -> int:
    return db.scalar(select(Grid.id).where(Grid.code == code))


def _form(client, grid_id: int) -> dict:
    """Load the resident form; return its CSRF token, signed challenge and the right answer."""
    html = client.get(f"/public/grids/{grid_id}/request").get_data(as_text=True)
    from tests.conftest import csrf_token
    a, b = QUESTION.search(html).groups()
    return {"csrf_token": csrf_token(html), "challenge": CHALLENGE.search(html).group(1), "answer": str(int(a) + int(b))}


def _file(client, db, grid_id: int, **data):
    """File a request through the public form as a resident would."""
    fields = {**_form(client, grid_id), "resident_name": "赵大爷", "resident_phone": "13912345678",
              "building_id": str(building_id(db)), "address_detail": "3单元201", "category": "property_repair",
              "description": "楼道灯坏了"}
    fields.update(data)
    return client.post(f"/public/grids/{grid_id}/request", data=fields)


def _cases(db) -> int:
    return db.scalar(select(func.count(Case.id)))


def test_notice_shows_grids_buildings_services_and_only_public_phones_without_login(app, db):
    _publish(db)
    html = app.test_client().get(f"/public/communities/{_community_id(db)}").get_data(as_text=True)
    assert "A网格" in html and "B网格" in html and "1号楼院" in html and "9号楼院" in html
    assert "010-66668888" in html and 'href="tel:010-66668888"' in html  # the duty phone, not the personal one
    assert "13800000001" not in html and "13900000002" not in html  # personal and non-public phones stay private
    assert "网格员甲" in html and "网格长甲" in html  # names are published (网格公示)
    assert "周一至周五 9:00-17:00" in html and "代办证明" in html and "政策咨询" in html
    # The schematic map: one area per grid, one dot per building, drawn on the server (no outside tiles).
    assert html.count('class="grid-area"') == 2 and html.count('class="building"') == 2
    assert "http" not in html.split('<svg class="gridmap"')[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", "")


def test_poster_carries_a_qr_code_of_the_resident_form(app, db):
    _publish(db)
    response = app.test_client().get(f"/public/grids/{_grid_id(db)}/poster")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="segno"' in html and "<path" in html  # the QR code, inline SVG
    assert f"/public/grids/{_grid_id(db)}/request" in html and "public.css" in html
    assert "010-66668888" in html and "代办证明" in html


def test_unknown_community_or_grid_is_404(app):
    client = app.test_client()
    assert client.get("/public/communities/999").status_code == 404
    assert client.get("/public/grids/999/poster").status_code == 404
    assert client.get("/public/grids/999/request").status_code == 404


def test_a_resident_files_through_the_public_form_into_the_one_intake(app, db):
    client = app.test_client()
    response = _file(client, db, _grid_id(db))
    assert response.status_code == 302 and response.headers["Location"].endswith("/public/filed")
    case = latest_case(db)
    assert (case.intake, case.channel, case.resident_phone) == (Door.PUBLIC, Channel.QR_CODE, "+8613912345678")
    assert case.created_by.username == "public_form" and case.status == "recording"
    # The record-and-reply step waits in the grid's pool for a member to contact the resident.
    [task] = [t for t in case.tasks if t.status == TaskStatus.OPEN]
    assert (task.form_key, task.assignee_id, task.grid_id) == ("record_reply", None, case.grid_id)
    assert verify_chain(db, case.id).ok
    page = client.get("/public/filed").get_data(as_text=True)
    assert case.number in page
    assert client.get("/public/filed").status_code == 302  # shown once
    # The system account cannot log in.
    assert app.test_client().post("/login", data={"username": "public_form", "password": ""}).status_code != 302


def test_wrong_answer_bad_phone_or_another_grids_building_saves_nothing_and_keeps_the_input(app, db):
    client = app.test_client()
    before = _cases(db)
    response = _file(client, db, _grid_id(db), answer="99")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "楼道灯坏了" in html and "赵大爷" in html
    assert QUESTION.search(html)  # a new question to answer
    response = _file(client, db, _grid_id(db), resident_phone="12345")
    assert response.status_code == 422 and "楼道灯坏了" in response.get_data(as_text=True)
    response = _file(client, db, _grid_id(db), building_id=str(building_id(db, "GB")))
    assert response.status_code == 422
    response = _file(client, db, _grid_id(db), description="")
    assert response.status_code == 422
    assert _cases(db) == before


def test_a_challenge_from_another_app_key_or_a_made_up_one_is_refused(app, db):
    client = app.test_client()
    response = _file(client, db, _grid_id(db), challenge="eyJuIjoiMSJ9.forged.sig")
    assert response.status_code == 422
    assert _cases(db) == 0 or latest_case(db).intake != Door.PUBLIC


def test_the_form_needs_its_csrf_token(app, db):
    before = _cases(db)
    response = _file(app.test_client(), db, _grid_id(db), csrf_token="nope")
    assert response.status_code == 400 and _cases(db) == before  # refused before the view (CSRFProtect)


def test_status_page_shows_stage_and_reply_only_with_the_right_digits(app, db, login):
    client = app.test_client()
    _file(client, db, _grid_id(db))
    case = latest_case(db)
    # A member calls back and answers on the spot: the reply is what the resident reads.
    member = login("member_a")
    [task] = [t for t in case.tasks if t.status == TaskStatus.OPEN]
    response = member.submit(f"/tasks/{task.id}", {"disposition": "on_spot", "reply": "已通知物业今晚更换灯泡"})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]

    def look(number: str, digits: str):
        from tests.conftest import csrf_token
        token = csrf_token(client.get("/public/status").get_data(as_text=True))
        return client.post("/public/status", data={"csrf_token": token, "number": number, "last_four": digits})

    found = look(case.number, "5678")
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and "已通知物业今晚更换灯泡" in html and case.number in html
    for private in ("赵大爷", "13912345678", "5678", "3单元201", "楼道灯坏了", "网格员甲"):
        assert private not in html.split('id="case-status"')[1], private
    wrong, unknown = look(case.number, "1234"), look("20990101-999999", "5678")
    assert wrong.status_code == unknown.status_code == 422
    message = "No case matches"
    with app.test_request_context():
        from flask_babel import gettext
        message = gettext("No case matches this number and phone; check both and try again.")
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert "已通知物业" not in wrong.get_data(as_text=True)
    assert look(case.number, "56a8").status_code == 422


def test_filing_and_looking_up_are_rate_limited_per_address(database_url, db):
    with configured_app(database_url, api={"ratelimit_enabled": True},
                        public={"rate_limit": "2 per hour", "status_rate_limit": "3 per hour"}) as limited:
        client = limited.test_client()
        assert _file(client, db, _grid_id(db)).status_code == 302
        assert _file(client, db, _grid_id(db), answer="0").status_code == 422  # a failed try counts too
        assert _file(client, db, _grid_id(db)).status_code == 429
        assert client.get(f"/public/grids/{_grid_id(db)}/request").status_code == 200  # reading is not limited
        from tests.conftest import csrf_token
        codes = []
        for _ in range(4):
            token = csrf_token(client.get("/public/status").get_data(as_text=True))
            codes.append(client.post("/public/status", data={"csrf_token": token, "number": "x",
                                                             "last_four": "0000"}).status_code)
        assert codes == [422, 422, 422, 429]


def test_only_the_public_door_records_as_the_system_account_and_only_as_it(app, db):
    with app.app_context():
        session = get_session()
        svc = for_app(app, session)
        from tracker.services import public
        system = public.recorder(svc)
        assert public.recorder(svc).id == system.id and not system.memberships
        intake = RecordCase(resident_name="甲", resident_phone="13912345678", building_id=building_id(db),
                            category="other", description="x", channel=Channel.QR_CODE, answered_on_spot=None)
        staff = session.scalar(select(User).where(User.username == "member_a"))
        with pytest.raises(PermissionDenied):
            open_case(svc, staff, intake, door=Door.PUBLIC)
        with pytest.raises(PermissionDenied):
            open_case(svc, system, intake.model_copy(update={"channel": Channel.PHONE}), door=Door.WEB)
        session.rollback()
