"""App start-up: bad BPMN files are reported but do not stop the rest; config errors name the key."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tracker import create_app
from tracker.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_app_starts_with_the_good_definitions_when_one_file_is_malformed(tmp_path, caplog):
    bpmn = tmp_path / "bpmn"
    bpmn.mkdir()
    shutil.copy(ROOT / "bpmn" / "case_closed_loop.bpmn", bpmn)
    (bpmn / "broken.bpmn").write_text("<bpmn:definitions xmlns:bpmn='x'><oops>", encoding="utf-8")
    evil = (ROOT / "bpmn" / "case_closed_loop.bpmn").read_text(encoding="utf-8").replace(
        'handle_action == "done"', "().__class__.__subclasses__()").replace(
        'id="case_closed_loop"', 'id="evil"')
    (bpmn / "evil.bpmn").write_text(evil, encoding="utf-8")
    # A parameter entity used to raise an uncaught XMLSyntaxError and stop the whole app.
    (bpmn / "entity.bpmn").write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                                      '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
                                      encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        app = create_app({"app": {"bpmn_dir": str(bpmn), "database_url": f"sqlite:///{tmp_path}/x.db"},
                          "scheduler": {"in_web": False}})
    assert set(app.extensions["gridloop.definitions"]) == {"case_closed_loop"}
    errors = {str(e) for e in app.extensions["gridloop.bpmn_errors"]}
    assert any(e.startswith("broken.bpmn: -: malformed XML") for e in errors)
    assert any(e.startswith("evil.bpmn: f_done: unsafe expression:") and "__subclasses__" in e for e in errors)
    assert any(e.startswith("entity.bpmn:") and "DOCTYPE" in e for e in errors), errors
    assert "broken.bpmn" in caplog.text and "evil.bpmn" in caplog.text
    assert app.test_client().get("/login").status_code == 200


def test_config_missing_required_key_fails_naming_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[app]\nsecret_key = "x"\ndatabase_url = "sqlite://"\n[lanes]\n"a" = "grid_member"\n')
    with pytest.raises(ConfigError, match="app.case_process"):
        load_config(path, environ={})


def test_config_bad_type_fails_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="loop.max_callback_attempts must be int"):
        load_config(ROOT / "config.toml", {"loop": {"max_callback_attempts": "many"}}, environ={})


def test_config_unknown_key_is_warned_about():
    with pytest.warns(UserWarning, match="unknown key app.colour"):
        load_config(ROOT / "config.toml", {"app": {"colour": "red"}}, environ={})


def test_environment_overrides_the_file():
    config = load_config(ROOT / "config.toml", environ={"GRIDLOOP_APP_PAGE_SIZE": "7",
                                                       "GRIDLOOP_LOOP_MAX_CALLBACK_ATTEMPTS": "5"})
    assert (config["app"]["page_size"], config["loop"]["max_callback_attempts"]) == (7, 5)


def test_ui_speaks_chinese_by_default_and_english_on_request(app):
    client = app.test_client()
    assert "登录" in client.get("/login").get_data(as_text=True)
    client.get("/lang/en?next=/login")
    page = client.get("/login").get_data(as_text=True)
    assert "Log in" in page and "登录" not in page


def test_language_switch_does_not_redirect_off_site(app):
    response = app.test_client().get("/lang/en?next=//evil.example/")
    assert response.location == "/"


def test_static_assets_are_local(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert "http://" not in page and "https://" not in page
    with client.get("/static/gridloop.css") as css:
        assert css.status_code == 200 and b"--brand" in css.data


def test_health_reports_database_and_definitions(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "definitions": ["case_closed_loop", "routine_visit"],
                             "rejected_bpmn_files": 0, "timers": {"pending": 0, "late": 0}}


def test_page_views_do_not_wait_for_a_writer(app, login):
    """A GET reads a snapshot instead of queueing behind a transaction that holds the write lock.

    SQLite: another connection holds the database write lock (BEGIN IMMEDIATE). PostgreSQL: another
    transaction holds an EXCLUSIVE lock on the case and task tables, which blocks writers only.
    """
    import time
    member = login("member_a")
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        import sqlite3
        writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        release = lambda: (writer.execute("ROLLBACK"), writer.close())  # noqa: E731
    else:
        from sqlalchemy import create_engine
        engine = create_engine(url)
        connection = engine.connect()
        transaction = connection.begin()
        connection.exec_driver_sql('LOCK TABLE "case", task IN EXCLUSIVE MODE')
        release = lambda: (transaction.rollback(), connection.close(), engine.dispose())  # noqa: E731
    try:
        start = time.monotonic()
        assert member.get("/cases/").status_code == 200
        assert member.get("/").status_code == 200
        assert time.monotonic() - start < 5
    finally:
        release()


def test_database_outage_gives_a_503_page_even_for_a_logged_in_user(app, login):
    member = login("member_a")
    app.extensions["gridloop.db"].dispose()
    url = app.extensions["gridloop.db"].url
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker
    # Point the app at a database that refuses connections, as during a restart.
    dead = create_engine(url.set(drivername="postgresql+psycopg", host="127.0.0.1", port=1, database="x")
                         if url.get_backend_name() == "postgresql"
                         else "sqlite:////nonexistent-dir/refused.sqlite3")
    app.extensions["gridloop.sessionmaker"] = sessionmaker(dead)
    response = member.get("/")
    assert response.status_code == 503
    assert "数据库暂时不可用" in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["grid=%C2%B2", "grid=99999999999999999999", "date_to=9999-12-31",
                                   "date_from=20260105", "q=a%00b", "status=nonsense&deadline=x"])
def test_odd_case_list_filters_are_ignored_not_errors(login, query):
    response = login("leader_a").get(f"/cases/?{query}")
    assert response.status_code == 200
    assert login("auditor").get("/audit?actor=a%00b&date_to=9999-12-31").status_code == 200


def test_damaged_forms_and_huge_ids_are_refused_not_errors(login, db):
    from tests.conftest import dispatch, intake, latest_case, open_task
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    task = open_task(db, case.id)
    leader = login("leader_a")
    page = f"/tasks/{task.id}"
    assert leader.submit(f"/tasks/{task.id}/reassign", {"version": "abc", "assignee_id": "2", "reason": "x"},
                         page=page).status_code == 422
    assert leader.submit(f"/tasks/{task.id}/reassign", {"assignee_id": "99999999999999999999", "reason": "x"},
                         page=page).status_code == 422
    assert leader.submit(f"/tasks/{task.id}/release", {"version": "abc"}, page=page).status_code == 400
    assert leader.submit(f"/grids/{case.grid_id}/handover", {"member_id": "99999999999999999999", "to_ids": ["1"],
                                                             "mode": "even", "reason": "x"}).status_code == 422
    assert leader.get("/cases/?page=99999999999999999999").status_code == 200
    assert login("auditor").get("/audit?before=99999999999999999999").status_code == 200
    assert open_task(db, case.id).assignee_id == task.assignee_id


def test_open311_odd_dates_and_nul_are_400(app):
    client = app.test_client()
    assert client.get("/open311/v2/requests.json?start_date=0001-01-01T00:00:00Z").status_code == 400
    assert client.get("/open311/v2/requests.json?service_request_id=a%00b").status_code == 200
    assert client.get("/open311/v2/requests/a%00b.json").status_code == 404
    assert client.post("/open311/v2/requests.json", data={"api_key": "glt_x", "description": "a\x00b"}).status_code in (400, 401)


@pytest.mark.parametrize(("key", "problem"), [
    ("dev-only-change-me", "example key shipped in config.toml"),
    ("", "is empty"),
    ("short-but-not-empty", "only 19 characters long"),
    ("a" * 64, "not random"),
    ("   dev-only-change-me   " + " " * 20, "example key"),
])
def test_the_app_refuses_to_start_with_a_known_empty_or_short_secret_key(tmp_path, key, problem):
    with pytest.raises(ConfigError, match=problem) as refused:
        create_app({"app": {"secret_key": key, "database_url": f"sqlite:///{tmp_path}/x.db"}})
    assert "GRIDLOOP_APP_SECRET_KEY" in str(refused.value) and "secrets.token_hex(32)" in str(refused.value)


def test_a_production_start_without_a_secret_key_fails_with_the_fix(tmp_path):
    """As gunicorn 'tracker:create_app()' starts it: the shipped config.toml alone does not run."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "GRIDLOOP_APP_SECRET_KEY"}
    env["GRIDLOOP_APP_DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    started = subprocess.run([sys.executable, "-c", "from tracker import create_app; create_app()"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "app.secret_key is the example key shipped in config.toml" in started.stderr
    assert "GRIDLOOP_APP_SECRET_KEY" in started.stderr
    env["GRIDLOOP_APP_SECRET_KEY"] = "0123456789abcdef" * 4
    assert subprocess.run([sys.executable, "-c", "from tracker import create_app; create_app()"], cwd=ROOT,
                          env=env, capture_output=True, timeout=60).returncode == 0
