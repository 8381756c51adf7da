"""Finding the resident: a phone in any written form, partial numbers, the resident view, the intake look-up."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import building_id, intake, latest_case
from tracker.models import Building
from tracker.services.residents import local_phone, phone_query


@pytest.mark.parametrize("written", ["13912345678", "139 1234 5678", "+86 139-1234-5678", "0086 13912345678",
                                     "(139) 1234 5678"])
def test_a_mobile_in_any_written_form_is_one_number(written):
    assert phone_query(written).exact == "+8613912345678"


@pytest.mark.parametrize(("written", "stored"), [("010-12345678", "+861012345678"),
                                                 ("0571 8765 4321", "+8657187654321"),
                                                 ("+86 10 1234 5678", "+861012345678")])
def test_a_landline_with_its_area_code_is_one_number(written, stored):
    assert phone_query(written).exact == stored


def test_a_few_digits_search_inside_numbers_and_too_few_or_letters_are_no_phone():
    assert phone_query("5678").exact is None and phone_query("5678").digits == "5678"
    assert phone_query("010-1234").digits == "101234"  # the trunk 0 dropped: E.164 has none
    assert phone_query("123") is None
    assert phone_query("张阿姨") is None
    assert phone_query("") is None


def test_numbers_are_shown_in_local_form():
    assert local_phone("+8613912345678") == "139 1234 5678"
    assert local_phone("+861012345678") == "010 1234 5678"
    assert local_phone("") == ""


def _record(member, db, **overrides):
    response = member.submit("/cases/new", intake(db, **overrides))
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    member.get(response.location)  # the case page takes the flashed message
    return latest_case(db)


def test_the_resident_view_finds_every_case_of_a_phone_however_written_newest_first(login, db):
    member = login("member_a")
    first = _record(member, db, resident_phone="139 1234 5678", description="楼道灯不亮")
    second = _record(member, db, resident_phone="+8613912345678", description="水压低")
    other = _record(member, db, resident_phone="010-12345678", description="噪音扰民")
    assert first.resident_phone == second.resident_phone == "+8613912345678"
    for written in ("13912345678", "139-1234-5678", "+86 139 1234 5678", "139 1234"):
        page = member.get(f"/residents?phone={written}").get_data(as_text=True)
        assert page.index(second.number) < page.index(first.number), written
        assert other.number not in page
    page = member.get("/residents?phone=010 1234 5678").get_data(as_text=True)
    assert other.number in page and first.number not in page
    assert "010 1234 5678" in page  # shown in local form
    assert "这不是电话号码" in member.get("/residents?phone=ab").get_data(as_text=True)


def test_the_resident_view_shows_only_cases_the_person_may_read(login, db):
    _record(login("member_a"), db, resident_phone="13912345678")
    mine = latest_case(db)
    member_b = login("member_b")
    theirs = _record(member_b, db, resident_phone="13912345678", building_id=str(building_id(db, "GB")))
    page = member_b.get("/residents?phone=13912345678").get_data(as_text=True)
    assert theirs.number in page and mine.number not in page


def test_every_case_page_links_to_the_resident_view(login, db):
    member = login("member_a")
    case = _record(member, db, resident_phone="13912345678")
    page = member.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'id="resident-cases"' in page and "139 1234 5678" in page
    assert "/residents?phone=%2B8613912345678" in page


def test_the_intake_lookup_lists_open_and_recent_cases_of_the_phone_as_json(login, db):
    member = login("member_a")
    case = _record(member, db, resident_phone="13912345678")
    data = member.get("/residents/lookup?phone=139 1234 5678").get_json()
    assert [c["number"] for c in data["cases"]] == [case.number]
    assert data["phone"] == "139 1234 5678" and data["cases"][0]["open"] is True
    assert member.get("/residents/lookup?phone=13800000000").get_json()["cases"] == []
    assert member.get("/residents/lookup?phone=x").get_json()["cases"] == []
    # Scoped: a member of another grid sees nothing of grid A's resident; an auditor may not ask.
    assert login("member_b").get("/residents/lookup?phone=13912345678").get_json()["cases"] == []
    assert login("auditor").get("/residents/lookup?phone=13912345678").status_code == 403


def test_the_case_list_and_api_find_a_phone_and_part_of_a_number(login, db, app):
    member = login("member_a")
    case = _record(member, db, resident_phone="13912345678")
    other = _record(member, db, resident_phone="13700000000")
    page = member.get("/cases/?q=139 1234 5678").get_data(as_text=True)
    assert case.number in page and other.number not in page
    tail = case.number[-6:]
    page = member.get(f"/cases/?q={tail}").get_data(as_text=True)
    assert case.number in page and other.number not in page


def test_the_api_list_finds_a_phone_in_any_written_form(app, db, login):
    from tests.web.test_api import make_token
    member = login("member_a")
    case = _record(member, db, resident_phone="010-12345678")
    _record(member, db, resident_phone="13700000000")
    secret = make_token(app, "member_a")[1]
    for written in ("010 1234 5678", "+86 10 1234 5678", "1234 567"):
        items = app.test_client().get("/api/v1/cases", query_string={"q": written},
                                      headers={"Authorization": f"Bearer {secret}"}).get_json()["items"]
        assert [i["number"] for i in items] == [case.number], written


def test_the_audit_search_takes_part_of_a_number_and_people_by_username_or_name(login, db):
    member = login("member_a")
    case = _record(member, db)
    other = _record(member, db, resident_phone="13700000000")
    auditor = login("auditor")
    page = auditor.get(f"/audit?number={case.number[-3:]}").get_data(as_text=True)
    assert case.number in page and other.number not in page
    for who in ("member_a", "网格员甲", "ember_"):
        page = auditor.get(f"/audit?actor={who}").get_data(as_text=True)
        assert case.number in page and other.number in page, who
    assert case.number not in auditor.get("/audit?actor=leader_b").get_data(as_text=True)


def test_a_household_lists_its_cases_by_phone_or_by_its_room(login, db):
    from tracker.models import Household
    home = Household(grid_id=db.scalar(select(Building.grid_id).where(Building.id == building_id(db))),
                     building_id=building_id(db), address_detail="2单元301", head_name="张阿姨",
                     phone="+8613912345678")
    db.add(home)
    db.flush()
    member = login("member_a")
    by_phone = _record(member, db, resident_phone="13912345678", address_detail="")
    by_room = _record(member, db, resident_phone="13700000000", address_detail="2单元301")
    elsewhere = _record(member, db, resident_phone="13600000000", address_detail="5单元101")
    page = member.get(f"/residents/household/{home.id}").get_data(as_text=True)
    assert by_phone.number in page and by_room.number in page and elsewhere.number not in page
    assert login("member_b").get(f"/residents/household/{home.id}").status_code == 403


def test_the_case_list_finds_staff_by_username_or_name(login, db):
    from tests.conftest import dispatch, open_task
    member = login("member_a")
    handled = _record(member, db, resident_phone="13912345678")
    dispatch(login("leader_a"), db, handled.id, handler="member_a2")
    assert open_task(db, handled.id).name == "handle_member"
    other = _record(login("member_b"), db, resident_phone="13700000000", building_id=str(building_id(db, "GB")))
    auditor = login("auditor")
    for who in ("member_a2", "网格员乙"):  # the handler, by username or by name
        page = auditor.get(f"/cases/?q={who}").get_data(as_text=True)
        assert handled.number in page and other.number not in page, who
    for who in ("member_b", "网格员丁"):  # the recorder
        page = auditor.get(f"/cases/?q={who}").get_data(as_text=True)
        assert other.number in page and handled.number not in page, who


def test_phone_searches_are_counted_as_searches(database_url):
    from tests.conftest import PASSWORD, Browser, configured_app
    with configured_app(database_url, api={"ratelimit_enabled": True, "search_rate_limit": "2 per minute"}) as app:
        member = Browser(app.test_client())
        assert member.submit("/login", {"username": "member_a", "password": PASSWORD}).status_code == 302
        for url in ("/residents?phone=1391234", "/residents/lookup?phone=13912345678"):
            assert [member.get(url).status_code for _ in range(3)] == [200, 200, 429], url
