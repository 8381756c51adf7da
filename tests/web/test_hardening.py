"""Hardening: sessions end server-side, rights follow roles, admin-only tools, headers, cheap refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from tests.conftest import PASSWORD, Browser, configured_app, intake, latest_case
from tracker.models import Membership, User
from tracker.services import accounts


def _user(db, username: str) -> User:
    """Return a seed user, fresh from the database."""
    db.expire_all()
    return db.scalar(select(User).where(User.username == username))


def _saved_cookie(browser: Browser) -> str:
    """Return the session cookie a browser holds now (what someone could copy and keep)."""
    return browser.client.get_cookie("session").value


def _replay(app: Flask, cookie: str) -> int:
    """Send a saved session cookie from another client; return the status of a page that needs a login."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/cases/").status_code


# -- sessions ----------------------------------------------------------------------------------------

def test_a_saved_cookie_stops_working_after_logout(app, login):
    member = login("member_a")
    cookie = _saved_cookie(member)
    assert _replay(app, cookie) == 200
    assert member.submit("/logout", {}, page="/").status_code == 302
    assert _replay(app, cookie) == 302  # to the login page


@pytest.mark.parametrize("change", ["password", "disable", "role"])
def test_a_new_password_disabling_or_a_role_taken_away_ends_every_session(app, login, db, change):
    cookie = _saved_cookie(login("member_a"))
    user = _user(db, "member_a")
    if change == "password":
        user.password_hash = generate_password_hash("a-brand-new-password")
    elif change == "disable":
        user.active = False
    else:
        db.delete(user.memberships[0])
    db.flush()
    assert _replay(app, cookie) == 302


def test_an_unrelated_change_to_the_account_keeps_the_session(app, login, db):
    cookie = _saved_cookie(login("member_a"))
    user = _user(db, "member_a")
    user.phone = "13912345678"
    db.flush()
    assert _replay(app, cookie) == 200


def test_a_session_ends_after_its_lifetime_without_requests(app, login):
    cookie = _saved_cookie(login("member_a"))
    hours = app.config["GRIDLOOP"]["app"]["session_lifetime_hours"]
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours, minutes=5)):
        assert _replay(app, cookie) == 302


def test_a_session_id_without_generation_is_refused(app, db):
    """Cookies signed before generations existed (or a forged id) carry the bare user id."""
    assert accounts.user_for_session(db, str(_user(db, "member_a").id)) is None


@pytest.fixture
def secure_app(database_url) -> Iterator[Flask]:
    """An app configured as behind TLS: secure cookie and HSTS."""
    with configured_app(database_url, app={"session_cookie_secure": True, "hsts_seconds": 600}) as app:
        yield app


def test_secure_cookie_and_hsts_when_configured(secure_app):
    client = secure_app.test_client()
    response = client.get("/login", base_url="https://gridloop.example")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/login").headers  # not over plain HTTP


def test_csrf_tokens_expire_with_the_session(app):
    assert app.config["WTF_CSRF_TIME_LIMIT"] == app.config["GRIDLOOP"]["app"]["session_lifetime_hours"] * 3600


# -- login ------------------------------------------------------------------------------------------

def test_an_unknown_name_costs_a_password_check_like_a_known_one(app, monkeypatch):
    checked = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    browser = Browser(app.test_client())
    assert browser.submit("/login", {"username": "nobody-here", "password": "guess"}).status_code == 401
    assert browser.submit("/login", {"username": "member_a", "password": "guess"}).status_code == 401
    assert len(checked) == 2 and checked[0].split("$")[0] == checked[1].split("$")[0]  # same hash method


# -- rights follow roles ------------------------------------------------------------------------------

def test_a_recorder_who_lost_every_role_reads_nothing(app, login, db):
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    user = _user(db, "member_a")
    for membership in list(user.memberships):
        db.delete(membership)
    db.flush()
    former = login("member_a")  # may still log in; sees no case
    assert former.get(f"/cases/{case.id}").status_code == 403
    assert former.get(f"/cases/{case.id}/history").status_code == 403
    assert former.get(f"/cases/{case.id}/bundle.zip").status_code in (403, 404)
    assert case.number not in former.get("/cases/").get_data(as_text=True)


# -- the demo clock -----------------------------------------------------------------------------------

@pytest.fixture
def demo_app(database_url, db) -> Iterator[Flask]:
    """An app with the demo clock hook on, and an administrator."""
    db.add(User(username="admin", display_name="管理员", password_hash=generate_password_hash(PASSWORD),
                is_admin=True))
    db.flush()
    with configured_app(database_url, demo={"clock_hook": True}) as app:
        yield app
    from tracker import clock
    clock.set_offset(dt.timedelta(0))  # the demo clock is the process's: later tests run on the wall clock


def _login_to(app: Flask, username: str) -> Browser:
    """Log a user in on a fresh client of ``app``."""
    browser = Browser(app.test_client())
    assert browser.submit("/login", {"username": username, "password": PASSWORD}).status_code == 302
    return browser


def test_only_an_administrator_may_move_the_demo_clock(demo_app):
    member = _login_to(demo_app, "leader_a")
    assert "/demo/clock" not in member.get("/cases/").get_data(as_text=True)
    assert member.get("/demo/clock").status_code == 403
    assert member.submit("/demo/clock", {"step": "7d"}, page="/").status_code == 403
    admin = _login_to(demo_app, "admin")
    assert "/demo/clock" in admin.get("/cases/").get_data(as_text=True)
    assert admin.submit("/demo/clock", {"step": "1h"}).status_code == 302


# -- headers ------------------------------------------------------------------------------------------

def test_pages_forbid_framing_sniffing_caching_and_foreign_content(login):
    member = login("member_a")
    for url in ("/", "/cases/", "/cases/export.csv", "/login"):
        headers = member.get(url).headers
        assert headers["X-Frame-Options"] == "DENY", url
        assert headers["X-Content-Type-Options"] == "nosniff", url
        assert headers["Cache-Control"] == "no-store", url
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp
    with member.get("/static/gridloop.css") as static:
        assert static.headers.get("Cache-Control") != "no-store"


# -- cheap 500s and expensive requests ----------------------------------------------------------------

def test_unknown_query_arguments_are_not_passed_into_links(login, db):
    member = login("member_a")
    response = member.get("/cases/?_method=POST&status=recording&anchor=x")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'href="/cases/export.csv?status=recording"' in page and "export.csv?_method" not in page


@pytest.fixture
def limited_app(database_url) -> Iterator[Flask]:
    """An app with tiny limits on heavy requests and searches."""
    with configured_app(database_url, api={"ratelimit_enabled": True, "heavy_rate_limit": "2 per minute",
                                           "search_rate_limit": "2 per minute"}) as app:
        yield app


@pytest.mark.parametrize("url", ["/audit/verify", "/cases/export.xlsx", "/cases/?q=灯", "/audit?actor=网格"])
def test_heavy_requests_and_text_searches_are_limited_per_person(limited_app, url):
    auditor = _login_to(limited_app, "auditor")
    assert [auditor.get(url).status_code for _ in range(2)] == [200, 200]
    refused = auditor.get(url)
    assert refused.status_code == 429 and "请稍等一分钟再试" in refused.get_data(as_text=True)
    assert _login_to(limited_app, "leader_a").get(url).status_code in (200, 403)  # another person's budget
    assert auditor.get("/cases/").status_code == 200  # a list without text search is not counted


# -- health --------------------------------------------------------------------------------------------

def test_health_shows_rejected_file_details_to_administrators_only(app, db):
    app.extensions["gridloop.bpmn_errors"].append("evil.bpmn: f_done: unsafe expression: ().__class__")
    public = app.test_client().get("/healthz").get_json()
    assert public["rejected_bpmn_files"] == 1 and "rejected_bpmn_errors" not in public
    assert "evil" not in str(public)
    db.add(User(username="admin", display_name="管理员", password_hash=generate_password_hash(PASSWORD),
                is_admin=True, memberships=[]))
    db.flush()
    admin = _login_to(app, "admin")
    assert admin.get("/healthz").get_json()["rejected_bpmn_errors"] == [
        "evil.bpmn: f_done: unsafe expression: ().__class__"]


def test_membership_model_is_unchanged_by_the_listener(db):
    """Adding a role does not end sessions (only taking one away does)."""
    user = _user(db, "member_a")
    before = user.session_generation
    user.memberships.append(Membership(role=user.memberships[0].role, grid_id=user.memberships[0].grid_id))
    db.flush()
    assert _user(db, "member_a").session_generation == before


# -- the door a case came in through ------------------------------------------------------------------

def test_the_web_form_offers_no_channel_that_names_a_door_and_refuses_one(login, db):
    member = login("member_a")
    page = member.get("/cases/new").get_data(as_text=True)
    assert 'value="open311"' not in page and 'value="api"' not in page
    response = member.submit("/cases/new", intake(db, channel="open311", description="私事：家中老人独居"))
    assert response.status_code == 422
    assert latest_case(db) is None


def test_the_api_may_not_claim_open311_and_nothing_it_files_is_public(app, db, login):
    from tests.web.test_api import Api, make_token, new_case
    program = Api(app.test_client(), make_token(app, "member_a")[1])
    refused = program.post("/cases", new_case(db, channel="open311"))
    assert refused.status_code == 422 and "channel" in refused.get_data(as_text=True)
    assert latest_case(db) is None
    assert program.post("/cases", new_case(db, channel="api", description="独居老人需要帮助")).status_code == 201
    login("member_a").submit("/cases/new", intake(db, description="家庭纠纷，需调解"))
    assert {c.intake for c in db.scalars(select(latest_case(db).__class__))} == {"web", "api"}
    public = app.test_client().get("/open311/v2/requests.json")
    assert public.status_code == 200 and public.get_json() == []


def test_only_cases_filed_through_open311_are_public(app, db):
    from tests.web.test_open311 import BASE, file, form  # noqa: F401
    from tracker.services import tokens
    keys = {"member_a": tokens.create(db, _user(db, "member_a"), "app")[1]}
    db.commit()
    filed = app.test_client().post("/open311/v2/requests.json", data={
        "api_key": keys["member_a"], "service_code": "property_repair", "description": "3单元楼道灯不亮",
        "address_id": str(intake(db)["building_id"])})
    assert filed.status_code == 201, filed.get_data(as_text=True)
    case = latest_case(db)
    assert (case.channel, case.intake) == ("open311", "open311")
    public = app.test_client().get("/open311/v2/requests.json").get_json()
    assert [r["service_request_id"] for r in public] == [case.number]


# -- the commands that change accounts ----------------------------------------------------------------

def test_set_password_and_disable_user_commands_end_sessions(app, login):
    runner = app.test_cli_runner()
    cookie = _saved_cookie(login("member_a"))
    weak = runner.invoke(args=["set-password", "member_a", "--password", "short"])
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    assert _replay(app, cookie) == 200  # nothing changed
    assert runner.invoke(args=["set-password", "member_a", "--password", "a-long-new-pass"]).exit_code == 0
    assert _replay(app, cookie) == 302
    fresh = Browser(app.test_client())
    assert fresh.submit("/login", {"username": "member_a", "password": "a-long-new-pass"}).status_code == 302
    cookie = _saved_cookie(fresh)
    assert runner.invoke(args=["disable-user", "member_a"]).exit_code == 0
    assert _replay(app, cookie) == 302
    assert fresh.submit("/login", {"username": "member_a", "password": "a-long-new-pass"}).status_code == 401
    assert runner.invoke(args=["enable-user", "member_a"]).exit_code == 0
    assert fresh.submit("/login", {"username": "member_a", "password": "a-long-new-pass"}).status_code == 302


# -- found in review ----------------------------------------------------------------------------------

def test_a_new_password_revokes_the_users_api_tokens(app, db):
    from tests.web.test_api import Api, make_token
    program = Api(app.test_client(), make_token(app, "member_a")[1])
    assert program.get("/me").status_code == 200
    result = app.test_cli_runner().invoke(args=["set-password", "member_a", "--password", "a-long-new-pass"])
    assert "1 API token(s) were revoked" in result.output
    assert program.get("/me").status_code == 401


def test_a_session_ends_at_its_maximum_age_however_often_it_is_used(app, login):
    member = login("member_a")
    start = dt.datetime.now(dt.UTC)
    app.config["GRIDLOOP"]["app"]["session_max_days"] = 2
    for hours in (11, 22, 33, 44):  # a request every 11 hours keeps it within the idle lifetime
        with time_machine.travel(start + dt.timedelta(hours=hours)):
            assert member.get("/cases/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=49)):
        assert member.get("/cases/").status_code == 302


def test_a_nul_character_in_a_form_is_a_clear_400_not_a_500(app, login, db):
    browser = Browser(app.test_client())
    response = browser.submit("/login", {"username": "member_a\x00", "password": PASSWORD})
    assert response.status_code == 400
    assert login("member_a").submit("/cases/new", intake(db, resident_name="张\x00")).status_code == 400
    assert latest_case(db) is None


def test_error_answers_carry_the_security_headers_too(login, db, monkeypatch):
    from sqlalchemy.orm import Session as OrmSession
    from sqlalchemy.orm.exc import StaleDataError
    member = login("member_a")

    def lose_the_race(self):
        raise StaleDataError("someone else won")
    monkeypatch.setattr(OrmSession, "commit", lose_the_race)
    response = member.get("/cases/")
    assert response.status_code == 409
    assert response.headers["Cache-Control"] == "no-store" and "Content-Security-Policy" in response.headers


def test_every_audit_search_is_counted(limited_app):
    auditor = _login_to(limited_app, "auditor")
    codes = [auditor.get("/audit?action=case.opened").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_member_who_lost_the_role_no_longer_sees_the_work_assigned_in_it(app, login, db):
    from tests.conftest import dispatch, open_task
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    task = open_task(db, case.id)
    assert case.number in login("member_a").get("/").get_data(as_text=True)
    user = _user(db, "member_a")
    for membership in list(user.memberships):
        db.delete(membership)
    db.flush()
    former = login("member_a")
    assert case.number not in former.get("/").get_data(as_text=True)
    assert task.id not in former.get("/").get_data(as_text=True)


def test_the_door_is_on_the_chain_so_publishing_a_case_behind_it_is_named(app, login, db):
    from sqlalchemy import text

    from tracker.services.audit import verify_chain
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    db.execute(text('UPDATE "case" SET intake = \'open311\' WHERE id = :i'), {"i": case.id})
    report = verify_chain(db, case.id)
    assert not report.ok and "intake" in report.problem


def test_create_user_applies_the_same_password_rule(app):
    weak = app.test_cli_runner().invoke(args=["create-user", "newbie", "--name", "新人", "--password", "123"])
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    made = app.test_cli_runner().invoke(args=["create-user", "newbie", "--name", "新人", "--password", "a-long-new-pass"])
    assert made.exit_code == 0, made.output
