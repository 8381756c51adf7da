"""Shared fixtures: an app on a fresh SQLite file with a small community, clients, factories."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from bench.cluster import Cluster
from tracker import create_app
from tracker.db import get_session, init_db
from tracker.models import Building, Case, Community, Department, Grid, Membership, Role, Task, TaskStatus, User
from tracker.services import accounts

PASSWORD = "secret-pass-1"
#: The seed users' hash: one PBKDF2 round instead of werkzeug's scrypt (~0.1 s a check), since the suite
#: logs people in over a thousand times. The app verifies whatever method a stored hash names; that it
#: hashes new passwords strongly is proved in tests/test_boundaries.py.
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
# An unknown name is checked against a hash of the seed users' method, as in production (where both are
# scrypt): a login with a wrong name costs the same as with a wrong password, and both stay cheap here.
accounts._DUMMY_HASH = generate_password_hash("not-a-password-of-anyone", method="pbkdf2:sha256:1")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


# The app refuses to start without a real secret key; the suite (and the servers it starts) get a random one.
os.environ.setdefault("GRIDLOOP_APP_SECRET_KEY", secrets.token_hex(32))
# No app built in this process starts the in-web scheduler, testing mode or not: one left ticking would run
# jobs on a database a later test has deleted, and parse BPMN expressions (ast) beside the next test's app,
# which Python 3.11 does not survive from two threads. The scheduler processes tests start run it themselves.
os.environ["GRIDLOOP_SCHEDULER_IN_WEB"] = "false"

#: Which database the suite runs on: sqlite (default) or postgresql (a throwaway cluster).
BACKEND = os.environ.get("GRIDLOOP_TEST_DATABASE", "sqlite")
_numbers = itertools.count(1)


#: Tests that never touch a database, by place: the engine layer, pure unit tests, source checks. They are
#: marked ``nodb`` so the PostgreSQL pass (make test) deselects them: they would run exactly as on SQLite.
#: Place decides, not fixtures: a test may reach the database through ``request.getfixturevalue``.
NODB_PLACES = (
    "tests/workflows/", "tests/unit/", "tests/test_boundaries.py", "tests/test_catalog.py", "tests/test_layers.py")
#: Fixtures that reach the database; a test under NODB_PLACES using one is a mistake, stopped at collection.
DB_FIXTURES = {"app", "db", "database_url", "template_url", "pg_cluster", "server", "login"}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark the tests under NODB_PLACES ``nodb``, refusing any that use a database fixture."""
    for item in items:
        place = item.path.relative_to(config.rootpath).as_posix()
        if not place.startswith(NODB_PLACES):
            continue
        if used := DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            raise pytest.UsageError(f"{item.nodeid} uses {', '.join(sorted(used))}: a test in {place} must not "
                                    f"touch a database (the PostgreSQL pass skips it); move it under tests/web/")
        item.add_marker(pytest.mark.nodb)


def _build_template(url: str) -> None:
    """Create the schema and the seed data once; each test starts from a copy."""
    app = create_app({"app": {"database_url": url}})
    with app.app_context():
        init_db()
        seed(get_session())
        get_session().commit()
    app.extensions["gridloop.db"].dispose()


def _scratch_dir() -> str | None:
    """Return /dev/shm when it has room for the throwaway cluster, else None (the usual temporary directory).

    Each test's database is a fresh copy of the template (~8 MB of files); in memory, making and removing
    them costs no disk writes. The cluster runs with fsync off and is deleted at the end anyway.
    """
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if shm.f_bavail * shm.f_frsize >= 2 * 1024**3 and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """Start one throwaway PostgreSQL cluster for the session."""
    cluster = Cluster(tempfile.mkdtemp(prefix="gridloop-pg-", dir=_scratch_dir())).start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def template_url(request, tmp_path_factory) -> str:
    """Return the URL of the seeded template database for the selected backend."""
    if BACKEND == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        cluster.execute("CREATE DATABASE gridloop_template")
        _build_template(cluster.url("gridloop_template"))
        return cluster.url("gridloop_template")
    if BACKEND != "sqlite":
        raise pytest.UsageError(f"GRIDLOOP_TEST_DATABASE must be sqlite or postgresql, not {BACKEND!r}")
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    _build_template(f"sqlite:///{path}")
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def pg_template(request) -> str:
    """Return the name of the seeded template database on the PostgreSQL cluster, whichever backend the
    suite runs on (for the few tests only PostgreSQL can run)."""
    if BACKEND == "postgresql":
        request.getfixturevalue("template_url")
    else:
        cluster = request.getfixturevalue("pg_cluster")
        cluster.execute("CREATE DATABASE gridloop_template")
        _build_template(cluster.url("gridloop_template"))
    return "gridloop_template"


def pg_copy(cluster: Cluster) -> Iterator[str]:
    """Yield the URL of a fresh copy of the PostgreSQL template database, dropped afterwards."""
    name = f"test_{next(_numbers)}"
    cluster.execute(f"CREATE DATABASE {name} TEMPLATE gridloop_template")
    yield cluster.url(name)
    try:  # keep the cluster small; a database some process still holds is left to the cluster's end
        cluster.execute(f"DROP DATABASE {name}")
    except psycopg.Error:
        pass


@pytest.fixture
def database_url(request, template_url, tmp_path) -> Iterator[str]:
    """Return a fresh copy of the seeded database for one test."""
    if BACKEND == "postgresql":
        yield from pg_copy(request.getfixturevalue("pg_cluster"))
        return
    path = tmp_path / "test.sqlite3"
    shutil.copy(template_url.removeprefix("sqlite:///"), path)
    yield f"sqlite:///{path}"


@contextmanager
def configured_app(database_url: str, **sections: dict) -> Iterator[Flask]:
    """Create an app on ``database_url`` with the tests' settings, ``sections`` merged over them."""
    # Rate limits are off here (tests log the same people in many times a minute); some tests turn them on.
    # Sessions last long: many tests travel days ahead in time with the same people logged in.
    settings: dict[str, dict] = {"app": {"database_url": database_url, "session_lifetime_hours": 24 * 400,
                                         "session_max_days": 400}, "api": {"ratelimit_enabled": False},
                                # The loop tests have one member record, handle and call back a case; the
                                # callback going to another member is tested on its own (test_dispatch_review).
                                "loop": {"callback_by_other_member": False}}
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    app = create_app(settings)
    app.config.update(TESTING=True)
    try:
        yield app
    finally:
        app.extensions["gridloop.db"].dispose()


@pytest.fixture
def app(database_url) -> Iterator[Flask]:
    """Create the app on a fresh copy of the seeded database."""
    with configured_app(database_url) as app:
        yield app


def seed(db) -> None:
    """Two grids (A, B) with staff, one department with a handler, an auditor."""
    community = Community(name="测试社区")
    grid_a = Grid(community=community, code="GA", name="A网格")
    grid_b = Grid(community=community, code="GB", name="B网格")
    grid_a.buildings.append(Building(name="1号楼院"))
    grid_b.buildings.append(Building(name="9号楼院"))
    dept = Department(code="property", name="物业维修中心")
    db.add_all([community, grid_a, grid_b, dept])
    db.flush()

    def user(username, name, *memberships):
        db.add(User(username=username, display_name=name, password_hash=PASSWORD_HASH,
                    memberships=list(memberships)))

    user("member_a", "网格员甲", Membership(role=Role.GRID_MEMBER, grid_id=grid_a.id))
    user("member_a2", "网格员乙", Membership(role=Role.GRID_MEMBER, grid_id=grid_a.id))
    user("leader_a", "网格长甲", Membership(role=Role.GRID_LEADER, grid_id=grid_a.id))
    user("leader_a2", "网格长丙", Membership(role=Role.GRID_LEADER, grid_id=grid_a.id))
    user("member_b", "网格员丁", Membership(role=Role.GRID_MEMBER, grid_id=grid_b.id))
    user("leader_b", "网格长戊", Membership(role=Role.GRID_LEADER, grid_id=grid_b.id))
    user("dept", "维修员", Membership(role=Role.DEPARTMENT_HANDLER, department_id=dept.id))
    user("auditor", "督查员", Membership(role=Role.AUDITOR, community_id=community.id))
    user("street", "街道督办员", Membership(role=Role.STREET_OFFICE, community_id=community.id))
    # Member in grid B and leader in grid A at once.
    user("mixed", "两岗人员", Membership(role=Role.GRID_MEMBER, grid_id=grid_b.id),
         Membership(role=Role.GRID_LEADER, grid_id=grid_a.id))


@dataclass
class Browser:
    """A logged-in test client that fills forms the way a person does, CSRF token included."""

    client: FlaskClient

    def get(self, url: str, **kw):
        """GET a page."""
        return self.client.get(url, **kw)

    def submit(self, url: str, data: dict, page: str | None = None):
        """Load ``page`` (default ``url``), take its CSRF token and version, and POST ``data``."""
        html = self.client.get(page or url).get_data(as_text=True)
        fields = {"csrf_token": csrf_token(html)}
        version = re.search(r'id="version" name="version" type="hidden" value="(\d+)"', html)
        if version:
            fields["version"] = version.group(1)
        fields.update(data)
        return self.client.post(url, data=fields)


def csrf_token(html: str) -> str:
    """Extract the CSRF token from a rendered page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


@pytest.fixture
def server(app) -> Iterator[str]:
    """Serve the app over real HTTP on a free loopback port (browsers, third-party clients)."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


@pytest.fixture
def login(app):
    """Return a function that logs a username in on a fresh client."""
    def _login(username: str) -> Browser:
        browser = Browser(app.test_client())
        response = browser.submit("/login", {"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return browser
    return _login


@pytest.fixture
def db(app):
    """A session for assertions and direct setup, outside any request.

    It autocommits each statement so it never holds SQLite's write lock or an old snapshot
    while the app's requests run; helpers call ``expire_all`` to reread objects.
    """
    engine = create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")
    session = Session(engine, expire_on_commit=False)
    yield session
    session.close()
    engine.dispose()


def building_id(db, grid_code: str = "GA") -> int:
    """Return the id of the seed building in a grid."""
    return db.scalar(select(Building.id).join(Grid).where(Grid.code == grid_code))


def user_id(db, username: str) -> int:
    """Return a seed user's id."""
    return db.scalar(select(User.id).where(User.username == username))


def open_task(db, case_id: int) -> Task:
    """Return the one open task of a case."""
    db.expire_all()
    tasks = db.scalars(select(Task).where(Task.case_id == case_id, Task.status == TaskStatus.OPEN)).all()
    assert len(tasks) == 1, [t.name for t in tasks]
    return tasks[0]


def intake(db, **overrides) -> dict:
    """Return valid intake form data for grid A."""
    data = {"resident_name": "张阿姨", "resident_phone": "13812345678", "building_id": str(building_id(db)),
            "address_detail": "2单元301", "category": "property_repair",
            "description": "楼道灯不亮", "channel": "phone", "urgency": "normal", "green_channel": "",
            "disposition": "dispatch", "reply": ""}
    data.update(overrides)
    return data


def latest_case(db) -> Case:
    """Return the newest case."""
    db.expire_all()
    return db.scalars(select(Case).order_by(Case.id.desc())).first()


def dispatch(leader: Browser, db, case_id: int, handler: str = "member_a", deadline_class: str = "general"):
    """Dispatch a case's open dispatch task to a grid member as ``leader``."""
    return leader.submit(f"/tasks/{open_task(db, case_id).id}", {
        "dispatch_to": "member", "handler_id": str(user_id(db, handler)), "department_id": "0",
        "deadline_class": deadline_class})


def refuse_audit(db, case_id: int, action: str = "task.handed_over") -> None:
    """Install a database trigger that aborts inserting one case's audit event of ``action`` (a fault)."""
    if db.bind.dialect.name == "postgresql":
        db.execute(text("CREATE FUNCTION refuse_event() RETURNS trigger AS $$ BEGIN "
                        "RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"))
        db.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON audit_event FOR EACH ROW WHEN "
                        f"(NEW.case_id = {case_id} AND NEW.action = '{action}') EXECUTE FUNCTION refuse_event()"))
    else:
        db.execute(text(f"CREATE TRIGGER refuse BEFORE INSERT ON audit_event WHEN NEW.case_id = {case_id} "
                        f"AND NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"))


def allow_audit(db) -> None:
    """Remove the trigger of ``refuse_audit``."""
    if db.bind.dialect.name == "postgresql":
        db.execute(text("DROP TRIGGER refuse ON audit_event"))
        db.execute(text("DROP FUNCTION refuse_event()"))
    else:
        db.execute(text("DROP TRIGGER refuse"))
