"""Administration: people, roles, passwords, places, categories, calendar, and the admin trail."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, text

from tests.conftest import PASSWORD, PASSWORD_HASH, Browser, csrf_token, dispatch, intake, latest_case, user_id
from tests.factories import assert_day_totals_current
from tracker.models import AdminEvent, Building, Case, Grid, Membership, Role, Task, TaskStatus, User
from tracker.services.audit import verify_chain

NEW_PASSWORD = "a-new-secret-42"


@pytest.fixture
def admin_login(db, login):
    """Log in an administrator (made for the test)."""
    db.add(User(username="admin", display_name="管理员", password_hash=PASSWORD_HASH, is_admin=True))
    db.flush()
    return lambda: login("admin")


def post(browser: Browser, url: str, data: dict, page: str):
    """Submit a form of ``page`` to ``url``."""
    return browser.submit(url, data, page=page)


def flashed_password(html: str) -> str:
    """Return the temporary password a page shows once."""
    return re.search(r"[:：]\s*([A-Za-z0-9_-]{12})\b", html).group(1)


def test_only_administrators_reach_the_admin_screens(app, login, admin_login):
    assert app.test_client().get("/admin/people").status_code == 302
    assert login("leader_a").get("/admin/people").status_code == 403
    assert login("leader_a").get("/admin/import").status_code == 403
    assert admin_login().get("/admin/people").status_code == 200
    assert "/admin/" in admin_login().get("/").get_data(as_text=True)
    assert "/admin/" not in login("leader_a").get("/").get_data(as_text=True)


def test_a_new_person_gets_a_temporary_password_and_must_change_it_at_the_first_login(app, db, admin_login):
    admin = admin_login()
    response = admin.submit("/admin/people", {"username": "wangfang", "display_name": "王芳",
                                              "phone": "13800001111", "public_phone": "y"})
    assert response.status_code == 302
    temporary = flashed_password(admin.get(response.headers["Location"]).get_data(as_text=True))
    user = db.scalar(select(User).where(User.username == "wangfang"))
    assert user.must_change_password and user.public_phone and user.phone == "+8613800001111"
    person = Browser(app.test_client())
    assert person.submit("/login", {"username": "wangfang", "password": temporary}).status_code == 302
    assert person.get("/").headers["Location"].endswith("/password")  # every page leads there first
    wrong = person.submit("/password", {"current_password": "nope", "new_password": NEW_PASSWORD,
                                        "confirm_password": NEW_PASSWORD})
    assert wrong.status_code == 422 and "当前密码不正确" in wrong.get_data(as_text=True)
    weak = person.submit("/password", {"current_password": temporary, "new_password": "aaaaaaaaaaaa",
                                       "confirm_password": "aaaaaaaaaaaa"})
    assert weak.status_code == 422 and "至少" in weak.get_data(as_text=True)
    differ = person.submit("/password", {"current_password": temporary, "new_password": NEW_PASSWORD,
                                         "confirm_password": NEW_PASSWORD + "x"})
    assert differ.status_code == 422
    done = person.submit("/password", {"current_password": temporary, "new_password": NEW_PASSWORD,
                                       "confirm_password": NEW_PASSWORD})
    assert done.status_code == 302
    assert person.get("/").status_code == 200  # this session goes on
    db.expire_all()
    assert not db.get(User, user.id).must_change_password


def test_a_duplicate_username_or_phone_is_named_and_nothing_is_created(db, admin_login):
    admin = admin_login()
    taken = admin.submit("/admin/people", {"username": "member_a", "display_name": "重名"})
    assert taken.status_code == 422 and "member_a" in taken.get_data(as_text=True)
    db.execute(text("UPDATE user_account SET phone = '+8613800002222' WHERE username = 'member_b'"))
    phone = admin.submit("/admin/people", {"username": "newbie", "display_name": "新人", "phone": "13800002222"})
    assert phone.status_code == 422 and "member_b" in phone.get_data(as_text=True)
    bad = admin.submit("/admin/people", {"username": "x y", "display_name": ""})
    assert bad.status_code == 422
    assert db.scalar(select(User).where(User.username == "newbie")) is None


def test_everyone_changes_their_own_password_and_their_other_sessions_end(login):
    here, elsewhere = login("member_a"), login("member_a")
    assert here.submit("/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                     "confirm_password": NEW_PASSWORD}).status_code == 302
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302  # back to the login page


def test_a_reset_ends_the_sessions_and_forces_a_change_at_the_next_login(app, db, login, admin_login):
    member = login("member_a")
    admin = admin_login()
    uid = user_id(db, "member_a")
    response = admin.submit(f"/admin/people/{uid}/password", {}, page=f"/admin/people/{uid}")
    temporary = flashed_password(admin.get(response.headers["Location"]).get_data(as_text=True))
    assert member.get("/").status_code == 302
    fresh = Browser(app.test_client())
    assert fresh.submit("/login", {"username": "member_a", "password": PASSWORD}).status_code == 401
    fresh.submit("/login", {"username": "member_a", "password": temporary})
    assert fresh.get("/cases").headers["Location"].endswith("/password")
    event = db.scalars(select(AdminEvent).order_by(AdminEvent.seq.desc())).first()
    assert (event.action, event.target) == ("user.password_reset", f"user:{uid}")
    assert temporary not in event.changes


def test_taking_a_role_away_ends_the_sessions_and_granting_one_is_on_the_trail(db, login, admin_login):
    admin = admin_login()
    uid = user_id(db, "member_b")
    grid_a = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    granted = admin.submit(f"/admin/people/{uid}/roles", {"role-role": "grid_leader", "role-grid_id": str(grid_a)},
                           page=f"/admin/people/{uid}")
    assert granted.status_code == 302
    again = admin.submit(f"/admin/people/{uid}/roles", {"role-role": "grid_leader", "role-grid_id": str(grid_a)},
                         page=f"/admin/people/{uid}")
    assert again.status_code == 422
    no_scope = admin.submit(f"/admin/people/{uid}/roles", {"role-role": "grid_member"}, page=f"/admin/people/{uid}")
    assert no_scope.status_code == 422 and "网格" in no_scope.get_data(as_text=True)
    member = login("member_b")
    membership = db.scalar(select(Membership.id).where(Membership.user_id == uid, Membership.role == Role.GRID_LEADER))
    assert admin.submit(f"/admin/people/{uid}/roles/{membership}/remove", {},
                        page=f"/admin/people/{uid}").status_code == 302
    assert member.get("/").status_code == 302
    actions = db.scalars(select(AdminEvent.action).order_by(AdminEvent.seq)).all()
    assert actions == ["user.role_granted", "user.role_revoked"]


def test_disabling_a_member_with_open_work_asks_for_the_handover_first(db, login, admin_login):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id, handler="member_a")
    admin = admin_login()
    uid = user_id(db, "member_a")
    member = login("member_a")
    refused = admin.submit(f"/admin/people/{uid}/disable", {}, page=f"/admin/people/{uid}")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 409 and f"/grids/{case.grid_id}/handover?member={uid}" in html
    db.expire_all()
    assert db.get(User, uid).active and member.get("/").status_code == 200
    # The existing handover, then disabling goes through.
    page = admin.get(f"/grids/{case.grid_id}/handover?member={uid}").get_data(as_text=True)
    data = {"member_id": str(uid), "to_ids": str(user_id(db, "member_a2")), "mode": "even", "reason": "离职"}
    preview = admin.client.post(f"/grids/{case.grid_id}/handover", data={**data, "csrf_token": csrf_token(page)})
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([^"]+)"',
                            preview.get_data(as_text=True)).group(1)
    assert admin.client.post(f"/grids/{case.grid_id}/handover", data={
        **data, "fingerprint": fingerprint, "confirm": "1", "csrf_token": csrf_token(page)}).status_code == 302
    assert admin.submit(f"/admin/people/{uid}/disable", {}, page=f"/admin/people/{uid}").status_code == 302
    db.expire_all()
    assert not db.get(User, uid).active
    assert member.get("/").status_code == 302


def test_disabling_a_leader_puts_their_claimed_task_back_in_the_pool_on_the_case_chain(db, login, admin_login):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    task = db.scalar(select(Task).where(Task.case_id == case.id, Task.status == TaskStatus.OPEN))
    db.execute(text("UPDATE task SET assignee_id = :u WHERE id = :t"), {"u": user_id(db, "leader_a2"), "t": task.id})
    admin = admin_login()
    uid = user_id(db, "leader_a2")
    assert admin.submit(f"/admin/people/{uid}/disable", {}, page=f"/admin/people/{uid}").status_code == 302
    db.expire_all()
    assert db.get(Task, task.id).assignee_id is None
    assert verify_chain(db, case.id).ok


def _building_form(db, building: Building, **changes) -> dict:
    """Return the edit form's data for a building, with ``changes``."""
    return {"grid_id": str(building.grid_id), "name": building.name, "address": building.address or "",
            "latitude": "", "longitude": "", **changes}


def test_moving_a_building_asks_about_its_open_cases_and_moves_them_on_their_chains(app, db, login, admin_login):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    building = db.get(Building, case.building_id)
    grid_b = db.scalar(select(Grid.id).where(Grid.code == "GB"))
    admin = admin_login()
    url = f"/admin/buildings/{building.id}"
    asked = admin.submit(url, _building_form(db, building, grid_id=str(grid_b)))
    assert asked.status_code == 422 and 'name="open_cases"' in asked.get_data(as_text=True)
    db.expire_all()
    assert db.get(Building, building.id).grid_id != grid_b
    moved = admin.submit(url, _building_form(db, building, grid_id=str(grid_b), open_cases="move"))
    assert moved.status_code == 302
    db.expire_all()
    case = db.get(Case, case.id)
    assert case.grid_id == grid_b
    assert db.scalar(select(Task.grid_id).where(Task.case_id == case.id, Task.status == TaskStatus.OPEN)) == grid_b
    assert verify_chain(db, case.id).ok
    assert login("member_b").get(f"/cases/{case.id}").status_code == 200  # grid B's staff see it now
    assert_day_totals_current(app)  # the numbers count the case for grid B, no longer for grid A


def test_a_building_moved_with_its_cases_staying_leaves_them_with_the_old_grid(db, login, admin_login):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    building = db.get(Building, case.building_id)
    grid_b = db.scalar(select(Grid.id).where(Grid.code == "GB"))
    admin = admin_login()
    bad = admin.submit(f"/admin/buildings/{building.id}",
                       _building_form(db, building, grid_id=str(grid_b), open_cases="stay", latitude="95"))
    assert bad.status_code == 422 and "-90" in bad.get_data(as_text=True)
    assert admin.submit(f"/admin/buildings/{building.id}", _building_form(
        db, building, grid_id=str(grid_b), open_cases="stay", latitude="36.07", longitude="115.2")).status_code == 302
    db.expire_all()
    assert db.get(Case, case.id).grid_id != grid_b and db.get(Building, building.id).grid_id == grid_b
    assert db.get(Building, building.id).latitude == pytest.approx(36.07)


def test_communities_grids_and_departments_are_created_and_codes_stay_unique(db, admin_login):
    admin = admin_login()
    assert admin.submit("/admin/places", {"what": "community", "community-name": "新社区"}).status_code == 302
    community = db.scalar(text("SELECT id FROM community WHERE name = '新社区'"))
    grid = {"what": "grid", "grid-community_id": str(community), "grid-code": "N1", "grid-name": "一网格"}
    assert admin.submit("/admin/places", grid).status_code == 302
    assert admin.submit("/admin/places", grid).status_code == 422
    assert admin.submit("/admin/departments", {"code": "legal", "name": "法律援助站"}).status_code == 302
    assert admin.submit("/admin/departments", {"code": "legal", "name": "又一个"}).status_code == 422
    assert "新社区" in admin.get("/admin/places").get_data(as_text=True)


def test_a_category_takes_effect_without_a_restart_with_its_defaults(app, db, login, admin_login):
    admin = admin_login()
    department = db.scalar(text("SELECT id FROM department WHERE code = 'property'"))
    assert admin.submit("/admin/categories", {"code": "heating", "name_zh": "供暖", "name_en": "Heating",
                                              "department_id": str(department), "deadline_class": "utilities",
                                              "active": "y"}).status_code == 302
    member = login("member_a")
    assert "供暖" in member.get("/cases/new").get_data(as_text=True)
    assert member.submit("/cases/new", intake(db, category="heating")).status_code == 302
    assert latest_case(db).category == "heating"
    assert app.extensions["gridloop.category_defaults"]["heating"] == (department, "utilities")
    # A seed category from config.toml is switched off: no longer offered, old cases keep its name.
    assert admin.submit("/admin/categories/heating", {"name_zh": "供暖", "name_en": "Heating"}).status_code == 302
    refused = member.submit("/cases/new", intake(db, category="heating"))
    assert refused.status_code == 422
    assert "供暖" in member.get(f"/cases/{latest_case(db).id}").get_data(as_text=True)


def test_a_calendar_day_takes_effect_without_a_restart_and_can_be_removed(app, db, admin_login):
    admin = admin_login()
    day = dt.date(2031, 3, 5)  # a Wednesday
    assert admin.submit("/admin/calendar", {"day": day.isoformat(), "working": "0", "note": "停电"}).status_code == 302
    admin.get("/admin/calendar")
    assert not app.extensions["gridloop.calendar"].is_working_day(day)
    bad = admin.submit("/admin/calendar", {"day": "2031-02-30", "working": "1"})
    assert bad.status_code == 422
    assert admin.submit(f"/admin/calendar/{day.isoformat()}/remove", {}, page="/admin/calendar").status_code == 302
    admin.get("/admin/calendar")
    assert app.extensions["gridloop.calendar"].is_working_day(day)


def test_the_admin_trail_verifies_and_names_the_first_broken_event(app, db, admin_login):
    admin = admin_login()
    for code in ("d1", "d2", "d3"):
        admin.submit("/admin/departments", {"code": code, "name": f"部门{code}"})
    page = admin.get("/admin/trail").get_data(as_text=True)
    assert 'id="trail-state"' in page and "3" in page
    assert "部门已保存" in page and "部门d2" in page and "department.saved" not in page  # labels, never codes
    runner = app.test_cli_runner()
    result = runner.invoke(args=["verify-admin-trail"])
    assert result.exit_code == 0 and "3 events" in result.output
    db.execute(text("UPDATE admin_event SET changes = '{}' WHERE seq = 2"))
    broken = admin.get("/admin/trail").get_data(as_text=True)
    assert "2" in re.search(r'id="trail-state">([^<]+)', broken).group(1)
    result = runner.invoke(args=["verify-admin-trail"])
    assert result.exit_code == 1 and "event 2" in result.output
    db.execute(text("DELETE FROM admin_event WHERE seq >= 2"))
    result = runner.invoke(args=["verify-admin-trail"])
    assert result.exit_code == 1


def test_the_dispatch_form_proposes_the_category_defaults_an_admin_set(db, login, admin_login):
    login("member_a").submit("/cases/new", intake(db, category="civil_affairs"))
    case = latest_case(db)
    task = db.scalar(select(Task.id).where(Task.case_id == case.id, Task.status == TaskStatus.OPEN))
    leader = login("leader_a")
    before = leader.get(f"/tasks/{task}").get_data(as_text=True)
    assert re.search(r'<option selected value="general">', before)
    admin = admin_login()
    page = admin.get("/admin/categories/civil_affairs").get_data(as_text=True)
    assert "民政" in page  # a seed category from config.toml, shown to be changed
    department = db.scalar(text("SELECT id FROM department WHERE code = 'property'"))
    assert admin.submit("/admin/categories/civil_affairs", {
        "name_zh": "民政", "name_en": "Civil affairs", "department_id": str(department),
        "deadline_class": "complex", "active": "y"}).status_code == 302
    after = leader.get(f"/tasks/{task}").get_data(as_text=True)
    assert re.search(r'<option selected value="complex">', after)
    assert re.search(rf'<option selected value="{department}">[^<]*（该类别建议转办）', after)


def test_a_new_category_may_not_take_a_code_in_use(db, admin_login):
    admin = admin_login()
    seed = admin.submit("/admin/categories", {"code": "legal", "name_zh": "冒名", "name_en": "Taken"})
    assert seed.status_code == 422 and "已有此编码的类别" in seed.get_data(as_text=True)
    assert db.scalar(text("SELECT count(*) FROM category")) == 0


def test_account_changes_from_the_shell_are_on_the_admin_trail_too(app, db):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["set-password", "member_a", "--password", NEW_PASSWORD]).exit_code == 0
    assert runner.invoke(args=["disable-user", "member_b"]).exit_code == 0
    assert runner.invoke(args=["create-user", "clerk", "--name", "文员", "--password", NEW_PASSWORD]).exit_code == 0
    events = db.scalars(select(AdminEvent).order_by(AdminEvent.seq)).all()
    assert [(e.action, e.actor_name) for e in events] == [
        ("user.password_set", "system"), ("user.disabled", "system"), ("user.saved", "system")]
    assert runner.invoke(args=["verify-admin-trail"]).exit_code == 0


def test_another_process_sees_a_new_category_at_its_next_refresh(app, db, login, admin_login):
    from tests.conftest import configured_app
    from tracker.views.admin import refresh_round
    with configured_app(app.config["DATABASE_URL"]) as other:  # a second worker
        other_member = Browser(other.test_client())
        other_member.submit("/login", {"username": "member_a", "password": PASSWORD})
        assert "供暖" not in other_member.get("/cases/new").get_data(as_text=True)
        admin_login().submit("/admin/categories", {"code": "heating", "name_zh": "供暖", "name_en": "Heating",
                                                   "active": "y"})
        assert "供暖" not in other_member.get("/cases/new").get_data(as_text=True)  # no request reads them again
        refresh_round(other)  # what its refresh thread does every few seconds
        assert "供暖" in other_member.get("/cases/new").get_data(as_text=True)


def test_a_scheduler_process_reads_the_calendar_days_too(app, db):
    from tracker.models import CalendarDay
    day = dt.date(2031, 3, 5)
    db.add(CalendarDay(day=day, working=False, note="停电"))
    db.flush()
    assert app.extensions["gridloop.calendar"].is_working_day(day)  # this process served no request yet
    result = app.test_cli_runner().invoke(args=["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert not app.extensions["gridloop.calendar"].is_working_day(day)


def test_every_admin_page_renders_and_unknown_objects_are_404(db, admin_login):
    admin = admin_login()
    ids = {name: db.scalar(text(f"SELECT min(id) FROM {table}")) for name, table in (
        ("grid", "grid"), ("community", "community"), ("building", "building"), ("department", "department"),
        ("user", "user_account"))}
    pages = ["/admin/", "/admin/people", "/admin/places", "/admin/buildings", "/admin/departments",
             "/admin/categories", "/admin/calendar", "/admin/import", "/admin/trail",
             f"/admin/grids/{ids['grid']}", f"/admin/communities/{ids['community']}",
             f"/admin/buildings/{ids['building']}", f"/admin/departments/{ids['department']}",
             f"/admin/people/{ids['user']}", "/admin/categories/legal", "/password"]
    for page in pages:
        assert admin.get(page).status_code == 200, page
    for page in ("/admin/grids/999999", "/admin/people/999999", "/admin/categories/nope", "/admin/buildings/999999"):
        assert admin.get(page).status_code == 404, page


def test_an_admin_edits_a_grids_office_hours_and_services_for_the_public_notice_on_the_trail(app, db, admin_login):
    grid = db.scalar(select(Grid).where(Grid.code == "GA"))
    form = {"community_id": str(grid.community_id), "code": grid.code, "name": grid.name,
            "office_hours": "周二、周四 9:00-11:30", "service_items": "低保申请\n\n  老年证代办  \n"}
    admin = admin_login()
    page = admin.get(f"/admin/grids/{grid.id}").get_data(as_text=True)
    assert 'name="office_hours"' in page and "<textarea" in page
    too_long = admin.submit(f"/admin/grids/{grid.id}", {**form, "office_hours": "时" * 201})
    assert too_long.status_code == 422
    db.expire_all()
    assert db.get(Grid, grid.id).office_hours != "时" * 201  # refused, nothing written
    assert admin.submit(f"/admin/grids/{grid.id}", form).status_code == 302
    db.expire_all()
    assert db.get(Grid, grid.id).office_hours == "周二、周四 9:00-11:30"
    notice = app.test_client().get(f"/public/communities/{grid.community_id}").get_data(as_text=True)
    assert "周二、周四 9:00-11:30" in notice and "<li>低保申请</li>" in notice and "<li>老年证代办</li>" in notice
    event = db.scalars(select(AdminEvent).where(AdminEvent.target == f"grid:{grid.id}")
                       .order_by(AdminEvent.seq.desc())).first()
    assert event is not None and "周二、周四" in event.changes and "service_items" in event.changes
    trail = admin.get("/admin/trail").get_data(as_text=True)
    assert "办公时间" in trail and "服务事项（每行一项）" in trail and "周二、周四 9:00-11:30" in trail
    assert "office_hours" not in trail and 'class="flash success" id="trail-state"' in trail
