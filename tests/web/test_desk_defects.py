"""Defects found walking the desk as a new user (issue 14, item 6): each test failed on the code before."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from babel.messages.pofile import read_po
from sqlalchemy import func, select, update

from tests.conftest import (
    PASSWORD,
    PASSWORD_HASH,
    building_id,
    csrf_token,
    dispatch,
    intake,
    latest_case,
    open_task,
    user_id,
)
from tracker import jobs, labels
from tracker.models import (
    ApiToken,
    AuditEvent,
    Case,
    Cover,
    Grid,
    Household,
    Membership,
    Notification,
    Role,
    User,
    VisitPlan,
)

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


# -- program accounts are not people --------------------------------------------------------------

def _program_account(db) -> int:
    """Add a program's account (like the demo's hotline): a grid member of grid A that is no person."""
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    user = User(username="hotline", display_name="热线程序账号", is_program=True, password_hash=PASSWORD_HASH,
                memberships=[Membership(role=Role.GRID_MEMBER, grid_id=grid)])
    db.add(user)
    db.flush()
    return user.id


def test_a_program_account_is_offered_nowhere_a_person_is(app, login, db):
    program = _program_account(db)
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    leader = login("leader_a")
    pages = [f"/tasks/{open_task(db, case.id).id}", f"/grids/{grid}/board", f"/grids/{grid}/handover"]
    leader.submit("/households", {"building_id": str(building_id(db)), "address_detail": "3单元502",
                                  "head_name": "王奶奶", "phone": "13900001111", "care_group": "elderly_alone",
                                  "note": "独居"})
    household = db.scalar(select(Household.id))
    pages.append(f"/households/{household}")
    for page in pages:
        html = leader.get(page).get_data(as_text=True)
        assert "网格员甲" in html and "热线程序账号" not in html and f'value="{program}"' not in html, page
    community = db.scalar(select(Grid.community_id).where(Grid.id == grid))
    notice = app.test_client().get(f"/public/communities/{community}").get_data(as_text=True)
    assert "网格员甲" in notice and "热线程序账号" not in notice  # the published grid staff are people

    # Refused by the commands, whichever door: dispatching, reassigning, cover, handover, visit plans.
    refused = dispatch(leader, db, case.id, handler="hotline")
    assert refused.status_code == 422 and latest_case(db).status == "dispatching"
    dispatch(leader, db, case.id, handler="member_a")
    task = open_task(db, case.id)
    assert leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": str(program), "reason": "试试"},
                         page=f"/tasks/{task.id}").status_code == 422
    assert open_task(db, case.id).assignee_id == user_id(db, "member_a")
    today = dt.date.today().isoformat()
    assert leader.submit(f"/grids/{grid}/covers", {
        "member_id": str(user_id(db, "member_a")), "stand_in_id": str(program), "starts_on": today,
        "ends_on": today, "reason": "年假"}, page=f"/grids/{grid}/board").status_code == 422
    assert leader.submit(f"/grids/{grid}/handover", {
        "member_id": str(user_id(db, "member_a")), "to_ids": [str(program)], "mode": "even",
        "reason": "调离"}).status_code == 422
    assert leader.submit(f"/households/{household}", {
        "member_id": str(program), "weekdays": ["1"], "time_of_day": "09:30", "on_holiday": "keep"}
    ).status_code == 422
    assert db.scalar(select(func.count()).select_from(VisitPlan)) == 0


def test_a_program_account_never_logs_in_with_a_password_and_takes_no_task(app, db):
    _program_account(db)
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": "hotline", "password": PASSWORD,
                                           "csrf_token": csrf_token(html)})
    assert response.status_code != 302


def test_create_program_account_makes_a_token_only_account(app, db):
    result = app.test_cli_runner().invoke(args=["create-program-account", "bridge", "--name", "12345热线对接",
                                                "--grid", "GA"])
    assert result.exit_code == 0, result.output
    secret = re.search(r"glt_\S+", result.output).group(0)
    user = db.scalar(select(User).where(User.username == "bridge"))
    assert user.is_program and [m.grid_id for m in user.memberships] == [
        db.scalar(select(Grid.id).where(Grid.code == "GA"))]
    # Its token is for filing through Open311, as a program's should be.
    (token,) = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    assert token.scope == "open311" and secret.startswith(token.prefix)
    again = app.test_cli_runner().invoke(args=["create-program-account", "bridge", "--name", "x"])
    assert again.exit_code != 0 and "already exists" in again.output


# -- the demo ------------------------------------------------------------------------------------

def test_the_demo_refers_to_fitting_departments_names_people_variously_and_says_how_to_log_in(tmp_path):
    from tests.conftest import configured_app
    from tracker.db import get_session
    from tracker.demo import DEMO_DEPARTMENTS
    from tracker.models import Department, Setting
    from tracker.views.demo import KEY
    with configured_app(f"sqlite:///{tmp_path / 'demo.sqlite3'}") as app:
        first = app.test_cli_runner().invoke(args=["demo"])
        assert first.exit_code == 0, first.output
        with app.app_context():
            db = get_session()
            proposals = {**DEMO_DEPARTMENTS, **app.config["GRIDLOOP"]["dispatch"]["departments"]}
            referred = db.execute(select(Case.category, Department.code).join(Department)).all()
            assert referred and all(code == proposals[category] for category, code in referred), referred
            people = db.scalars(select(User).where(User.is_program.is_(False))).all()
            surnames = [u.display_name[0] for u in people]
            assert max(map(surnames.count, surnames)) <= 2, sorted(surnames)
            assert db.scalar(select(User.is_program).where(User.username == "hotline"))
            db.add(Setting(key=KEY, value=str(3 * 86400)))  # someone moved the demo clock three days ahead
            db.commit()
        again = app.test_cli_runner().invoke(args=["demo"])
        assert again.exit_code == 0, again.output
        assert "already present" in again.output and "member1a" in again.output and "gridloop2026" in again.output
        assert re.search(r"Open311 token of `hotline`.*glt_\S+", again.output)
        assert "Demo clock reset" in again.output
        with app.app_context():
            assert get_session().get(Setting, KEY) is None


def test_the_demo_clock_page_resets_the_clock(tmp_path):
    from tests.conftest import configured_app
    from tracker import clock
    from tracker.db import get_session
    from tracker.models import Setting
    from tracker.views.demo import KEY
    with configured_app(f"sqlite:///{tmp_path / 'demo.sqlite3'}", demo={"clock_hook": True}) as app:
        assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
        client = app.test_client()
        html = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"username": "admin", "password": "gridloop2026", "csrf_token": csrf_token(html)})
        page = client.get("/demo/clock").get_data(as_text=True)
        client.post("/demo/clock", data={"step": "3d", "csrf_token": csrf_token(page)})
        page = client.get("/demo/clock").get_data(as_text=True)
        assert "3天0小时" in page and "days" not in page
        response = client.post("/demo/clock/reset", data={"csrf_token": csrf_token(page)})
        assert response.status_code == 302
        assert "恢复为真实时间" in client.get("/demo/clock").get_data(as_text=True)
        with app.app_context():
            assert get_session().get(Setting, KEY) is None
        assert clock.offset() == dt.timedelta(0)


# -- stand-ins -----------------------------------------------------------------------------------

def _cover(leader, db, grid: int, member: str, stand_in: str, days: int = 3):
    """Ask for a stand-in cover from today for ``days`` days."""
    today = dt.date.today()
    return leader.submit(f"/grids/{grid}/covers", {
        "member_id": str(user_id(db, member)), "stand_in_id": str(user_id(db, stand_in)),
        "starts_on": today.isoformat(), "ends_on": (today + dt.timedelta(days=days)).isoformat(),
        "reason": "年假"}, page=f"/grids/{grid}/board")


def test_a_circle_of_stand_ins_is_refused(login, db):
    leader = login("leader_a")
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    assert _cover(leader, db, grid, "member_a", "member_a2").status_code == 302
    circle = _cover(leader, db, grid, "member_a2", "member_a")
    assert circle.status_code == 422 and "网格员甲在这段时间也不在岗" in circle.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Cover)) == 1


def test_reassigning_to_a_member_on_leave_warns(login, db):
    leader = login("leader_a")
    grid = db.scalar(select(Grid.id).where(Grid.code == "GA"))
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(leader, db, case.id, handler="member_a")
    assert _cover(leader, db, grid, "member_a2", "member_a").status_code == 302
    task = open_task(db, case.id)
    page = leader.get(f"/tasks/{task.id}").get_data(as_text=True)
    assert "网格员乙（不在岗，至" in page
    response = leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": str(user_id(db, "member_a2")),
                                                            "reason": "甲太忙"}, page=f"/tasks/{task.id}")
    assert response.status_code == 302
    html = leader.get(response.headers["Location"]).get_data(as_text=True)
    assert "注意：网格员乙不在岗" in html and "代班：网格员甲" in html


# -- markers stand out; notifications seen are read -------------------------------------------------

def _css_rules() -> dict[str, str]:
    """Return the stylesheet's rules, selector -> declarations (each selector of a group on its own)."""
    css = re.sub(r"/\*.*?\*/", "", (Path(__file__).resolve().parents[2] / "static/gridloop.css").read_text(), flags=re.S)
    rules: dict[str, str] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        for selector in selectors.split(","):
            rules[" ".join(selector.split())] = rules.get(" ".join(selector.split()), "") + body
    return rules


def test_overdue_due_soon_missed_and_unread_look_unlike_a_plain_label():
    rules = _css_rules()
    plain = re.search(r"background:([^;]+)", rules[".badge"]).group(1)
    for marker in (".badge.overdue", ".badge.due-soon", ".badge.missed", ".count.unread", "ul.notices li.unread"):
        assert marker in rules, marker
        background = re.search(r"background:([^;]+)", rules[marker])
        assert background and background.group(1) != plain, marker
    assert re.search(r"background:([^;]+)", rules[".badge.overdue"]).group(1) != \
        re.search(r"background:([^;]+)", rules[".badge.due-soon"]).group(1)


def test_opening_the_notifications_marks_them_read_and_shows_which_were_new(app, login, db):
    member = user_id(db, "member_a")
    db.add_all([Notification(user_id=member, kind="reminder", params=json.dumps(
        {"number": f"2026112{i}-000001", "due_at": "2026-11-25T02:00:00+00:00"})) for i in range(2)])
    db.flush()
    browser = login("member_a")
    assert '<span class="count unread">2</span>' in browser.get("/cases/").get_data(as_text=True)
    first = browser.get("/notifications/").get_data(as_text=True)
    assert first.count('class="unread k-reminder"') == 2 and "自上次查看后新到2条" in first
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Notification).where(Notification.read_at.is_(None))) == 0
    second = browser.get("/notifications/").get_data(as_text=True)
    assert 'class="unread' not in second and "20261120-000001" in second
    assert "count unread" not in second


# -- auditors and administrators start where their work is ---------------------------------------

def test_an_auditor_starts_at_the_audit_search_and_is_not_offered_intake(login, db):
    auditor = login("auditor")
    start = auditor.get("/")
    assert start.status_code == 302 and start.headers["Location"].endswith("/audit")
    menu = re.search(r'<nav id="menu">(.*?)</nav>', auditor.get("/audit").get_data(as_text=True), re.S).group(1)
    assert "/cases/new" not in menu and "登记诉求" not in menu and 'href="/cases/"' in menu and "待办" not in menu
    refused = auditor.get("/cases/new")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "网格员和网格长" in html and "属于其他网格或部门" not in html
    # A grid member's start page is still the inbox, with intake offered.
    member = login("member_a")
    assert member.get("/").status_code == 200
    assert "/cases/new" in re.search(r'<nav id="menu">(.*?)</nav>', member.get("/").get_data(as_text=True), re.S).group(1)


def test_an_administrator_starts_at_the_administration_or_the_case_list(app, db):
    db.add(User(username="root", display_name="管理员", is_admin=True, password_hash=PASSWORD_HASH))
    db.flush()
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "root", "password": PASSWORD, "csrf_token": csrf_token(html)})
    start = client.get("/")
    expected = "/admin" if "admin.index" in app.view_functions else "/cases/"
    assert start.status_code == 302 and start.headers["Location"].startswith(expected)
    assert client.get(start.headers["Location"], follow_redirects=True).status_code == 200


# -- exports -------------------------------------------------------------------------------------

def test_csv_phone_cells_carry_no_apostrophe_but_formulas_still_do(login, db):
    member = login("member_a")
    member.submit("/cases/new", intake(db, resident_phone="+86 138 1234 5678", resident_name="=HYPERLINK(1)"))
    member.submit("/cases/new", intake(db, resident_phone="010-6512 3456", description="+SUM(A1)"))
    text = member.get("/cases/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    phone, name, description = (rows[0].index(h) for h in ("居民电话", "居民姓名", "诉求内容"))
    assert [r[phone] for r in rows[1:]] == ["010 6512 3456", "138 1234 5678"]
    assert not any(r[phone].startswith("'") for r in rows[1:])
    assert rows[2][name] == "'=HYPERLINK(1)" and rows[1][description] == "'+SUM(A1)"


# -- the diagram and the icon --------------------------------------------------------------------

def test_the_diagram_refuses_an_event_number_it_cannot_show(login, db):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    auditor = login("auditor")
    for bad in ("abc", "0", "-1", "1.5", "999", "²"):
        response = auditor.get(f"/cases/{case.id}/diagram", query_string={"at": bad})
        html = response.get_data(as_text=True)
        assert response.status_code == 400 and f"1至{case.audit_seq}" in html, bad
    assert auditor.get(f"/cases/{case.id}/diagram?at=1").status_code == 200
    assert auditor.get(f"/cases/{case.id}/diagram").status_code == 200


def test_the_favicon_is_served_locally(app):
    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    assert response.get_data()[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


def test_migration_0020_marks_the_accounts_that_only_hold_open311_tokens(request, tmp_path):
    from sqlalchemy import create_engine, text

    from tests.web.test_migrations import _fresh_url
    from tracker.migrate import upgrade
    engine = create_engine(_fresh_url(request, tmp_path))
    upgrade(engine, "0019")
    with engine.begin() as connection:
        for n, name in enumerate(("bridge", "person", "both"), 1):
            connection.execute(text("INSERT INTO user_account (id, username, display_name, phone, password_hash, "
                                    "is_admin, active) VALUES (:id, :name, :name, '', 'x', false, true)"),
                               {"id": n, "name": name})
        for n, (user, scope) in enumerate(((1, "open311"), (1, "open311"), (3, "open311"), (3, "full")), 1):
            connection.execute(text("INSERT INTO api_token (id, user_id, name, token_hash, prefix, created_at, scope) "
                                    "VALUES (:id, :user, 't', :hash, 'glt_', CURRENT_TIMESTAMP, :scope)"),
                               {"id": n, "user": user, "hash": f"h{n}", "scope": scope})
    upgrade(engine, "0020")
    with engine.connect() as connection:
        marked = dict(connection.execute(text("SELECT username, is_program FROM user_account")).all())
    engine.dispose()
    assert {name: bool(flag) for name, flag in marked.items()} == {"bridge": True, "person": False, "both": False}


def test_every_action_the_services_record_has_a_label():
    from tracker.codes import FormKey
    recorded = {m.group(2) for path in (Path(__file__).resolve().parents[2] / "tracker").rglob("*.py")
                for m in re.finditer(r'record_event\(([^()]|\([^()]*\))*?"([a-z_]+\.[a-z_]+)"', path.read_text())}
    recorded |= {f"task.{key.value}" for key in FormKey if key != FormKey.VISIT}  # task.{form_key}: visits have no chain
    assert len(recorded) > 15
    assert sorted(recorded - set(labels.ACTIONS)) == []
