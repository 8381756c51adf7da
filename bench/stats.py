"""The numbers at scale: a street office of 400 grids over 1M cases, on SQLite and on PostgreSQL.

Builds the office directly in the database (COPY on PostgreSQL, executemany on SQLite; the cases carry
their numbers' facts as services.facts would have set them, no workflow is run), then prints:

* the p95 of the street office's dashboard (/numbers/area, this month, 400 grids ranked), of a grid
  leader's dashboard and of /api/v1/stats?by=grid, each served by the app over its test client;
* the time to produce last month's reports of every grid, department and community (reports.produce).

    .venv/bin/python -m bench.stats --cases 1000000 --backends sqlite,postgresql

Use ``--cases`` to run smaller on a busy machine; the figures printed name the size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, insert, select, text, update
from werkzeug.security import generate_password_hash

from tracker import create_app
from tracker.db import get_session, init_db
from tracker.models import (
    Building,
    Case,
    Community,
    Department,
    Grid,
    Membership,
    ProcessDefinition,
    ReportPeriod,
    Role,
    User,
)

from .cluster import Cluster

PASSWORD = "bench-pass-1"
CATEGORIES = ("civil_affairs", "legal", "employment", "medical_insurance", "pension", "property_repair", "security",
              "city_management", "certificates", "dispute_mediation", "other")
CHANNELS = ("phone", "walk_in", "wechat", "app", "mobile_desk", "visit", "hotline_12345")
OUTCOMES = ("satisfied", "satisfied", "satisfied", "satisfied", "basic", "basic", "dissatisfied")


#: The office's time zone: a case's local day keys the numbers' day totals.
LOCAL = ZoneInfo("Asia/Shanghai")


def percentile(samples: list[float], pct: float) -> float:
    """Return the pct-th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


def build(url: str, cases: int, grids: int, blob: int, seed: int = 16) -> dict[str, float]:
    """Create the schema and the office, and bulk-load ``cases`` cases; return the seconds each part took."""
    took: dict[str, float] = {}
    start = time.perf_counter()
    app = create_app({"app": {"database_url": url}})
    with app.app_context():
        init_db()
        db = get_session()
        hashed = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
        communities = [Community(name=f"第{n}社区") for n in range(1, grids // 10 + 1)]
        db.add_all(communities)
        db.flush()
        for n in range(grids):
            grid = Grid(community_id=communities[n // 10].id, code=f"G{n + 1:03d}", name=f"第{n + 1}网格")
            grid.buildings = [Building(name=f"{n + 1}-{b}号楼院") for b in range(1, 6)]
            db.add(grid)
        db.add_all([Department(code=f"d{n}", name=f"部门{n}") for n in range(1, 10)])
        db.add(ProcessDefinition(process_id="case_closed_loop", name="bench", file_name="bench.bpmn",
                                 content_hash="0" * 64, source=""))
        db.flush()
        street = User(username="street", display_name="街道", password_hash=hashed)
        street.memberships = [Membership(role=Role.STREET_OFFICE, community_id=c.id) for c in communities]
        first_grid = db.scalar(select(Grid.id).order_by(Grid.id).limit(1))
        leader = User(username="leader", display_name="网格长", password_hash=hashed,
                      memberships=[Membership(role=Role.GRID_LEADER, grid_id=first_grid)])
        members = [User(username=f"m{n}", display_name=f"网格员{n}", password_hash=hashed,
                        memberships=[Membership(role=Role.GRID_MEMBER, grid_id=first_grid)]) for n in range(3)]
        db.add_all([street, leader, *members])
        db.commit()
    app.extensions["gridloop.db"].dispose()
    took["schema and office"] = time.perf_counter() - start
    start = time.perf_counter()
    _load_cases(url, cases, blob, seed)
    took[f"{cases:,} cases loaded"] = time.perf_counter() - start
    start = time.perf_counter()
    rows = _count_day_totals(url)
    took[f"day totals counted ({rows:,} days of grids, as `flask count-day-totals` does)"] = \
        time.perf_counter() - start
    return took


def _count_day_totals(url: str) -> int:
    """Count the day totals of the cases loaded around the app (services.facts.count_all_days)."""
    from tracker.services.facts import count_all_days
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows = count_all_days(conn, LOCAL)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE stats_day")
        else:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        return rows
    finally:
        engine.dispose()


def _write_cost(url: str, writes: int = 300) -> tuple[float, float]:
    """Return the milliseconds of a write of one case's facts (answered on the spot, set and unset), each in its
    own transaction as a request's, with the day totals' triggers and without them."""
    from tracker.services.facts import install_day_totals
    engine = create_engine(url)
    rng = random.Random(7)
    table = Case.__table__
    try:
        with engine.connect() as conn:
            last = conn.execute(select(func.max(table.c.id))).scalar_one()
        ids = [rng.randrange(1, last + 1) for _ in range(writes)]

        def run() -> float:
            started = time.perf_counter()
            for n, case_id in enumerate(ids):
                with engine.begin() as conn:
                    conn.execute(update(table).where(table.c.id == case_id).values(answered_on_spot=n % 2 == 0))
            return 1000 * (time.perf_counter() - started) / writes
        with_triggers = run()
        with engine.begin() as conn:
            for name, on in (("stats_day_case_insert", "case"), ("stats_day_case_delete", "case"),
                             ("stats_day_case_update", "case"), ("stats_day_link_insert", "duplicate_link"),
                             ("stats_day_link_delete", "duplicate_link")):
                conn.exec_driver_sql(f'DROP TRIGGER {name} ON "{on}"' if engine.dialect.name == "postgresql"
                                     else f"DROP TRIGGER {name}")
        without = run()
        with engine.begin() as conn:
            install_day_totals(conn)
        return with_triggers, without
    finally:
        engine.dispose()


def _load_cases(url: str, total: int, blob: int, seed: int, chunk: int = 20_000) -> None:
    """Insert generated cases over the last two years, with their facts, in chunks."""
    engine = create_engine(url)
    with engine.begin() as conn:
        buildings = [tuple(r) for r in conn.execute(select(Building.id, Building.grid_id))]
        departments = list(conn.scalars(select(Department.id)))
        users = list(conn.scalars(select(User.id)))
        definition = conn.scalar(select(ProcessDefinition.id)) or 0
        first_grid = min(g for _, g in buildings)
        members = list(conn.scalars(select(Membership.user_id).where(Membership.role == Role.GRID_MEMBER)))
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    state = os.urandom(blob)
    made = 0
    while made < total:
        rows = [_case(rng, made + i + 1, now, buildings, departments, users, members, first_grid, definition, state)
                for i in range(min(chunk, total - made))]
        _insert(engine, rows)
        made += len(rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('\"case\"', 'id'), "
                                 "(SELECT max(id) FROM \"case\"))")
        # VACUUM sets the visibility map (index-only scans); it cannot run inside a transaction.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql('VACUUM ANALYZE "case"')
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _case(rng: random.Random, n: int, now: dt.datetime, buildings, departments, users, members, first_grid: int,
          definition: int, state: bytes) -> dict:
    """Return one generated case row with plausible facts (most closed, the recent ones still open)."""
    building_id, grid_id = buildings[rng.randrange(len(buildings))]
    created = now - dt.timedelta(seconds=rng.randrange(730 * 86400))
    age = (now - created).days
    row = {"id": n, "number": f"S{n:08d}", "grid_id": grid_id, "building_id": building_id,
           "resident_name": "张阿姨", "resident_phone": "+8613812345678", "address_detail": "2单元301",
           "resident_email": "", "latitude": None, "longitude": None, "media_url": "",
           "category": rng.choice(CATEGORIES), "description": "楼道灯不亮，已经三天了", "channel": rng.choice(CHANNELS),
           "intake": "web", "urgency": "normal", "green_channel": "", "reply": "", "result": "",
           "dispatch_to": None, "handler_id": None, "department_id": None, "deadline_class": None,
           "dispatched_at": None, "sign_for_at": None, "remind_at": None, "due_at": None, "escalate_at": None,
           "signed_at": None, "reminded_for": None, "outcome": None, "reopen_count": 0, "callback_attempts": 0,
           "extension_days": 0, "created_by_id": users[0], "created_at": created, "updated_at": created,
           "local_day": created.astimezone(LOCAL).date(),
           "archived_at": None, "definition_id": definition, "workflow_state": state, "audit_seq": 0,
           "audit_head": None, "version": 1, "row_version": 1,
           "first_dispatched_at": None, "respond_by": None, "first_due_at": None, "responded_at": None,
           "handled_at": None, "handled_due_at": None, "handling_minutes": None, "answered_on_spot": False,
           "first_outcome": None, "status": "archived"}
    if rng.random() < 0.2:  # answered on the spot
        row.update(answered_on_spot=True, status="callback" if age < 1 else "archived")
        if age >= 1:
            row.update(first_outcome=rng.choice(OUTCOMES), outcome="satisfied", archived_at=created)
        return row
    dispatched = created + dt.timedelta(minutes=rng.randrange(5, 240))
    due = dispatched + dt.timedelta(days=rng.choice((1, 7, 7, 7, 15)))
    to_department = rng.random() < 0.3
    row.update(dispatch_to="department" if to_department else "member", deadline_class="general",
               department_id=rng.choice(departments) if to_department else None,
               handler_id=None if to_department else (rng.choice(members) if grid_id == first_grid else None),
               dispatched_at=dispatched, sign_for_at=dispatched + dt.timedelta(days=1), due_at=due,
               escalate_at=due + dt.timedelta(days=2), first_dispatched_at=dispatched,
               respond_by=dispatched + dt.timedelta(days=1), first_due_at=due)
    signed = dispatched + dt.timedelta(hours=rng.expovariate(1 / 10))
    if signed < now:
        row.update(signed_at=signed, responded_at=signed)
    handled = dispatched + (due - dispatched) * rng.uniform(0.2, 1.3)
    if handled >= now:
        row["status"] = "handling"
        return row
    row.update(handled_at=handled, handled_due_at=due, result="已办结",
               handling_minutes=int((handled - dispatched).total_seconds() / 60 * 8 / 24))
    if handled + dt.timedelta(days=1) >= now:
        row["status"] = "callback"
        return row
    answer = rng.choice(OUTCOMES)
    row.update(first_outcome=answer, outcome=answer if answer != "dissatisfied" else "basic",
               reopen_count=1 if answer == "dissatisfied" else 0, archived_at=handled + dt.timedelta(days=2))
    return row


def _insert(engine, rows: list[dict]) -> None:
    """Insert one chunk: COPY on PostgreSQL, executemany on SQLite."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(insert(Case), rows)
        return
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f'COPY "case" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
        raw.commit()
    finally:
        raw.close()


def _login(client, username: str) -> None:
    """Log a user in on a test client."""
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    assert found, "no CSRF token on the login page"
    token = found.group(1)
    answer = client.post("/login", data={"csrf_token": token, "username": username, "password": PASSWORD})
    assert answer.status_code == 302, answer.status_code


def measure(url: str, repeats: int) -> dict[str, float]:
    """Return the p95 (ms) of the dashboards and the API, and the seconds of last month's reports."""
    app = create_app({"app": {"database_url": url}, "api": {"ratelimit_enabled": False},
                      "scheduler": {"in_web": False}})
    app.config.update(TESTING=True)
    figures: dict[str, float] = {}
    try:
        street, leader = app.test_client(), app.test_client()
        _login(street, "street")
        _login(leader, "leader")
        with app.app_context():
            from tracker.services import tokens
            db = get_session()
            street_user = db.scalar(select(User).where(User.username == "street"))
            assert street_user is not None
            secret = tokens.create(db, street_user, "bench")[1]
            db.commit()
        first_grid = _scalar(url, "SELECT min(id) FROM grid")
        pages = {"street office dashboard (400 grids, this month)": (street, "/numbers/area?period=month", {}),
                 "street office dashboard (this quarter)": (street, "/numbers/area?period=quarter", {}),
                 "grid leader dashboard": (leader, f"/numbers/grids/{first_grid}?period=month", {}),
                 "/api/v1/stats?by=grid": (street, "/api/v1/stats?by=grid",
                                           {"Authorization": f"Bearer {secret}"})}
        for name, (client, path, headers) in pages.items():
            assert client.get(path, headers=headers).status_code == 200, path  # warm
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                answer = client.get(path, headers=headers)
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200
            figures[f"{name} p95 ms"] = 1000 * percentile(samples, 95)
            figures[f"{name} median ms"] = 1000 * statistics.median(samples)
        figures["monthly reports, every grid, department, community (s)"] = _reports(app)
        kept, bare = _write_cost(url)
        figures["one case's facts written, day totals kept by the triggers (ms)"] = kept
        figures["the same write without the triggers (ms)"] = bare
    finally:
        app.extensions["gridloop.db"].dispose()
    return figures


def _reports(app) -> float:
    """Produce last month's report of every grid, department and community (as the scheduler does on the
    first working day); return the seconds."""
    from tracker import clock
    from tracker.queries import stats
    from tracker.services import reports
    with app.app_context():
        db = get_session()
        zone = app.extensions["gridloop.calendar"].zone
        now = clock.now()
        day = now.astimezone(zone).date().replace(day=1) - dt.timedelta(days=1)
        defs = stats.Definitions.from_config(app.config["GRIDLOOP"])
        started = time.perf_counter()
        count = reports.produce_all(db, ReportPeriod.MONTH, day, zone, now, defs)
        db.commit()
        seconds = time.perf_counter() - started
        print(f"    ({count} monthly reports)")
        return seconds


def _scalar(url: str, sql: str):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def main() -> None:
    """Build the office on each backend and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=400)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--blob", type=int, default=600, help="bytes of workflow state per case (row width)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    os.environ.setdefault("GRIDLOOP_APP_SECRET_KEY", os.urandom(32).hex())
    work = Path(tempfile.mkdtemp(prefix="gridloop-stats-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK)
                                 else None))
    work.chmod(0o755)  # the cluster's server runs as the postgres user when we are root
    try:
        for backend in args.backends.split(","):
            cluster = None
            if backend == "postgresql":
                cluster = Cluster(work / "pg").start()
                cluster.execute("CREATE DATABASE bench")
                url = cluster.url("bench")
            else:
                url = f"sqlite:///{work / 'bench.sqlite3'}"
            try:
                print(f"\n== {backend}: {args.grids} grids, {args.cases:,} cases ==")
                for part, seconds in build(url, args.cases, args.grids, args.blob).items():
                    print(f"  built: {part}: {seconds:.1f} s")
                for name, value in measure(url, args.repeats).items():
                    print(f"  {name}: {value:.1f}")
            finally:
                if cluster is not None:
                    cluster.destroy()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
