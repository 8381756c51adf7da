"""API tokens: scopes, expiry and last use; keys kept out of URLs and access logs; the discovery's base URL;
JSON nested too deep for the parser."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, inspect, select, text

from tests.conftest import building_id, intake, latest_case
from tests.webclient import Gunicorn
from tracker import clock
from tracker.db import get_session
from tracker.errors import InvalidInput
from tracker.migrate import downgrade, upgrade
from tracker.models import ApiToken, Case, TokenScope, User, utcnow
from tracker.services import tokens

PROBLEM = "application/problem+json"
SECRET_RE = re.compile(r'<code class="secret">([^<]+)</code>')


def make_token(app: Flask, username: str, scope: str, expires_days: int | None = None) -> tuple[int, str]:
    """Create a token of ``scope`` for a seed user through the service; return its id and secret."""
    with app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.username == username))
        row, secret = tokens.create(session, user, "tests", TokenScope(scope), expires_days)
        session.commit()
        return row.id, secret


def bearer(secret: str) -> dict[str, str]:
    """The header a program sends its token in."""
    return {"Authorization": f"Bearer {secret}"}


def problem(response, status: int) -> dict:
    """Assert an RFC 9457 answer with ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json(force=True)


def new_case(db) -> dict:
    """A valid NewCase body for grid A."""
    return {"resident_name": "张阿姨", "resident_phone": "13812345678", "building_id": building_id(db),
            "category": "property_repair", "description": "楼道灯不亮", "channel": "phone"}


def filing(db, api_key: str | None = None) -> dict[str, str]:
    """A valid Open311 filing in grid A's building."""
    data = {"service_code": "property_repair", "description": "3单元楼道灯不亮", "address_id": str(building_id(db))}
    return data | ({"api_key": api_key} if api_key else {})


def case_count(db) -> int:
    """Count the cases (a refused call records none)."""
    return db.scalar(select(func.count()).select_from(Case))


# -- scopes ------------------------------------------------------------------------------------------------

def test_a_read_token_reads_as_its_user_may_and_changes_nothing(app, db):
    _id, secret = make_token(app, "member_a", "read")
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(secret)).get_json()["username"] == "member_a"
    assert client.get("/api/v1/cases", headers=bearer(secret)).status_code == 200
    body = problem(client.post("/api/v1/cases", json=new_case(db), headers=bearer(secret)), 403)
    assert body["type"] == "urn:gridloop:problem:token-scope"
    assert "scope is read" in body["detail"] and "POST /api/v1/cases needs a token of scope full" in body["detail"]
    assert "profile page" in body["detail"]
    # Nor may it file through Open311.
    response = client.post("/open311/v2/requests.json", data=filing(db, secret))
    assert response.status_code == 403
    assert "scope open311 or full" in response.get_json()[0]["description"]
    assert case_count(db) == 0


def test_an_open311_token_files_through_open311_and_reads_nothing_else(app, db, login):
    login("member_a").submit("/cases/new", intake(db, description="独居老人申请低保，腰椎不好"))
    counter = latest_case(db).number
    _id, secret = make_token(app, "member_a", "open311")
    client = app.test_client()
    for path in ("/api/v1/me", "/api/v1/cases", f"/api/v1/cases/{latest_case(db).id}"):
        body = problem(client.get(path, headers=bearer(secret)), 403)
        assert "scope is open311" in body["detail"] and "needs a token of scope read or full" in body["detail"]
    problem(client.post("/api/v1/cases", json=new_case(db), headers=bearer(secret)), 403)
    assert case_count(db) == 1

    response = client.post("/open311/v2/requests.json", data=filing(db, secret))
    assert response.status_code == 201, response.get_data(as_text=True)
    filed = response.get_json()[0]["service_request_id"]
    # It follows requests as the public does: not the case recorded at the counter in its user's grid.
    listed = client.get("/open311/v2/requests.json", headers=bearer(secret)).get_json()
    assert [r["service_request_id"] for r in listed] == [filed]
    assert client.get(f"/open311/v2/requests/{counter}.json", headers=bearer(secret)).status_code == 404


def test_a_read_or_full_token_reads_through_open311_what_its_user_may(app, db, login):
    login("member_a").submit("/cases/new", intake(db))
    counter = latest_case(db).number
    for scope in ("read", "full"):
        _id, secret = make_token(app, "member_a", scope)
        listed = app.test_client().get("/open311/v2/requests.json", headers=bearer(secret)).get_json()
        assert [r["service_request_id"] for r in listed] == [counter]


def test_a_full_token_does_everything_its_user_may(app, db):
    _id, secret = make_token(app, "member_a", "full")
    client = app.test_client()
    assert client.post("/api/v1/cases", json=new_case(db), headers=bearer(secret)).status_code == 201
    assert client.post("/open311/v2/requests.json", data=filing(db, secret)).status_code == 201


def test_every_operation_documents_the_scope_refusal(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert "`read` tokens may only GET" in document["info"]["description"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if operation.get("security") != []:
                assert "403" in operation["responses"], (method, path)


# -- expiry and last use ---------------------------------------------------------------------------------

def test_an_expired_token_is_refused_saying_so_and_how_to_get_a_new_one(app, db):
    _id, secret = make_token(app, "member_a", "full", expires_days=1)
    client = app.test_client()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    with clock.shifted(dt.timedelta(days=1, seconds=1)):
        response = client.get("/api/v1/me", headers=bearer(secret))
        body = problem(response, 401)
        assert "expired" in body["detail"] and "profile page" in body["detail"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = client.post("/open311/v2/requests.json", data=filing(db, secret))
        assert response.status_code == 401
        assert "expired" in response.get_json()[0]["description"]
        assert client.get("/open311/v2/requests.json", headers=bearer(secret)).status_code == 401
    assert case_count(db) == 0


def test_the_expiry_is_a_whole_number_of_days_up_to_ten_years(app):
    with app.app_context():
        session = get_session()
        user = session.scalar(select(User).where(User.username == "member_a"))
        for days in (0, -1, 3651):
            with pytest.raises(InvalidInput) as refused:
                tokens.create(session, user, "x", TokenScope.READ, days)
            assert refused.value.field == "expires_days"
        row, _secret = tokens.create(session, user, "x", TokenScope.READ, 3650)
        assert row.expires_at - utcnow() > dt.timedelta(days=3649)
        assert tokens.create(session, user, "y", TokenScope.READ)[0].expires_at is None


def test_the_profile_page_creates_a_scoped_expiring_token_and_lists_scope_expiry_and_use(app, login, db):
    browser = login("member_a")
    response = browser.submit("/profile", {"name": "统计脚本", "scope": "read", "expires_days": "30"})
    assert response.status_code == 200, response.get_data(as_text=True)
    secret = SECRET_RE.search(response.get_data(as_text=True)).group(1)
    row = db.scalars(select(ApiToken)).one()
    assert row.scope == TokenScope.READ
    assert dt.timedelta(days=29, hours=23) < row.expires_at - utcnow() <= dt.timedelta(days=30)
    page = browser.get("/profile").get_data(as_text=True)
    assert "只读" in page and "从未使用" in page and "到期" in page
    assert app.test_client().get("/api/v1/me", headers=bearer(secret)).status_code == 200
    page = browser.get("/profile").get_data(as_text=True)
    assert "从未使用" not in page

    # What the token may do must be chosen; the expiry is a number of days from 1 to 3650, or nothing.
    response = browser.submit("/profile", {"name": "x"})
    assert response.status_code == 422 and "请选择令牌的权限" in response.get_data(as_text=True)
    for days in ("0", "3651"):
        response = browser.submit("/profile", {"name": "x", "scope": "full", "expires_days": days})
        assert response.status_code == 422 and "1 到 3650" in response.get_data(as_text=True)
    assert browser.submit("/profile", {"name": "x", "scope": "root"}).status_code == 422
    assert db.scalar(select(func.count()).select_from(ApiToken)) == 1
    # The form offers the three scopes; an English page names them in English.
    browser.get("/lang/en")
    page = browser.get("/profile").get_data(as_text=True)
    assert "Read only" in page and "Open311 filing only" in page and "Expires" in page


def test_an_expired_token_shows_as_expired_on_the_profile_page(app, login, db):
    make_token(app, "member_a", "read", expires_days=1)
    browser = login("member_a")
    with clock.shifted(dt.timedelta(days=2)):
        page = browser.get("/profile").get_data(as_text=True)
    assert "已过期" in page


def test_the_cli_creates_a_token_with_a_scope_and_an_expiry(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-token", "member_a", "--name", "微信小程序", "--scope", "open311",
                                 "--expires-days", "7"])
    assert result.exit_code == 0, result.output
    assert "scope open311" in result.output and "expires" in result.output
    row = db.scalars(select(ApiToken)).one()
    assert row.scope == TokenScope.OPEN311 and row.expires_at is not None
    secret = result.output.strip().splitlines()[-1]
    assert app.test_client().get("/api/v1/me", headers=bearer(secret)).status_code == 403

    missing = runner.invoke(args=["create-token", "member_a", "--name", "x"])
    assert missing.exit_code != 0 and "--scope" in missing.output
    wrong = runner.invoke(args=["create-token", "member_a", "--name", "x", "--scope", "admin"])
    assert wrong.exit_code != 0 and "open311" in wrong.output
    zero = runner.invoke(args=["create-token", "member_a", "--name", "x", "--scope", "read", "--expires-days", "0"])
    assert zero.exit_code != 0 and "3650" in zero.output
    assert db.scalar(select(func.count()).select_from(ApiToken)) == 1


def test_the_demo_hotline_token_may_only_file_through_open311(app, db):
    result = app.test_cli_runner().invoke(args=["demo", "--reset"])
    assert result.exit_code == 0, result.output
    secret = re.search(r"(glt_\S+)", result.output).group(1)
    db.expire_all()
    assert db.scalars(select(ApiToken.scope)).all() == [TokenScope.OPEN311]
    client = app.test_client()
    problem(client.get("/api/v1/cases", headers=bearer(secret)), 403)
    problem(client.get("/api/v1/buildings", headers=bearer(secret)), 403)


# -- keys in URLs and access logs ------------------------------------------------------------------------------

def test_a_key_in_the_url_is_refused_and_never_used(app, db):
    _id, secret = make_token(app, "member_a", "full")
    client = app.test_client()
    response = client.get(f"/open311/v2/requests.json?api_key={secret}")
    assert response.status_code == 400
    assert "Authorization: Bearer" in response.get_json()[0]["description"]
    response = client.post(f"/open311/v2/requests.json?api_key={secret}", data=filing(db))
    assert response.status_code == 400 and case_count(db) == 0
    body = problem(client.get(f"/api/v1/me?api_key={secret}"), 401)
    assert "in the URL is not accepted" in body["detail"]
    db.expire_all()
    assert db.scalars(select(ApiToken.last_used_at)).one() is None  # the key was not even looked at


def test_the_access_log_never_shows_a_key_put_in_the_url(app, server, caplog):
    _id, secret = make_token(app, "member_a", "read")
    caplog.set_level(logging.INFO, logger="werkzeug")
    for query in (f"service_code=x&api_key={secret}&status=open", f"API%5FKEY={secret}"):
        with pytest.raises(HTTPError) as refused:
            urlopen(f"{server}/open311/v2/requests.json?{query}", timeout=10)
        refused.value.close()
        assert refused.value.code == 400
    logged = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("api_key=[hidden]&status=open" in line for line in logged), logged
    assert sum("KEY=[HIDDEN]" in line.upper() for line in logged) == 2, logged
    assert not any(secret in line for line in logged)


def test_gunicorns_access_log_never_shows_a_key_put_in_the_url(app, database_url, tmp_path):
    _id, secret = make_token(app, "member_a", "read")
    log = tmp_path / "gunicorn.log"
    gunicorn = Gunicorn(database_url, workers=1, log=log)
    gunicorn.args[-1:-1] = ["--access-logfile", "-"]
    gunicorn.start()
    try:
        with pytest.raises(HTTPError) as refused:
            urlopen(f"{gunicorn.base}/open311/v2/requests.json?api_key={secret}", timeout=10)
        refused.value.close()
    finally:
        gunicorn.stop()
    written = log.read_text()
    assert "/open311/v2/requests.json?api_key=[hidden]" in written and secret not in written


# -- Open311 discovery: the configured address, never the Host header ---------------------------------------

@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_discovery_names_the_configured_address_whatever_host_is_sent(app, fmt):
    client = app.test_client()
    response = client.get(f"/open311/v2/discovery.{fmt}", headers={"Host": "evil.example"})
    assert response.status_code == 200
    assert b"evil.example" not in response.data
    assert b"http://127.0.0.1:5000/open311/v2" in response.data  # not configured: the demo's own address
    app.config["GRIDLOOP"]["app"]["public_base_url"] = "https://12345.example.gov.cn/gridloop/"
    response = client.get(f"/open311/v2/discovery.{fmt}", headers={"Host": "evil.example",
                                                                   "X-Forwarded-Host": "evil.example"})
    assert b"evil.example" not in response.data
    assert b"https://12345.example.gov.cn/gridloop/open311/v2" in response.data


# -- JSON nested too deep ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  json.dumps({"version": 1, "data": {"text": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
                                      "x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}).encode()],
                         ids=["arrays", "unclosed", "objects", "in-data"])
def test_json_nested_too_deep_is_a_clear_400(app, db, body):
    member, leader = (bearer(make_token(app, name, "full")[1]) for name in ("member_a", "leader_a"))
    client = app.test_client()
    # Brackets inside strings are text, not nesting.
    response = client.post("/api/v1/cases", json=new_case(db) | {"description": "[{" * 500}, headers=member)
    assert response.status_code == 201, response.get_data(as_text=True)
    task = response.get_json()["tasks"][0]["id"]
    for path, headers in (("/api/v1/cases", member), (f"/api/v1/tasks/{task}/complete", leader)):
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        detail = problem(response, 400)
        assert detail["type"] == "urn:gridloop:problem:too-deep" and "32 levels" in detail["detail"]
    assert case_count(db) == 1


def test_a_deeply_nested_cursor_is_not_a_cursor(app):
    _id, secret = make_token(app, "member_a", "read")
    cursor = base64.urlsafe_b64encode(b"[" * 30_000).decode()
    body = problem(app.test_client().get(f"/api/v1/cases?cursor={cursor}", headers=bearer(secret)), 400)
    assert body["errors"][0]["field"] == "cursor"


# -- the migration --------------------------------------------------------------------------------------------

def test_0008_keeps_existing_tokens_working_in_full_without_expiry(request, tmp_path):
    from tests.conftest import BACKEND, _numbers
    if BACKEND == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = f"tokens_{next(_numbers)}"
        cluster.execute(f"CREATE DATABASE {name}")
        url = cluster.url(name)
    else:
        url = f"sqlite:///{tmp_path / 'tokens.sqlite3'}"
    engine = create_engine(url)
    upgrade(engine, "0007")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO user_account (id, username, display_name, phone, password_hash, "
                                "is_admin, active) VALUES (1, 'hotline', '热线', '', 'x', false, true)"))
        connection.execute(text("INSERT INTO api_token (id, user_id, name, token_hash, prefix, created_at) "
                                "VALUES (1, 1, 'bridge', :hash, 'glt_abcdef', :now)"),
                           {"hash": tokens.digest("glt_abcdef"), "now": utcnow()})
    upgrade(engine, "0008")
    with engine.connect() as connection:
        row = connection.execute(text("SELECT scope, expires_at FROM api_token WHERE id = 1")).one()
    assert tuple(row) == ("full", None)
    # New rows name their scope: the backfill's default is gone.
    assert {c["name"]: c["default"] for c in inspect(engine).get_columns("api_token")}["scope"] is None
    downgrade(engine, "0007")
    assert {"scope", "expires_at"}.isdisjoint(c["name"] for c in inspect(engine).get_columns("api_token"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM api_token")).scalar() == "bridge"
    engine.dispose()
