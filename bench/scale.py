"""Make large databases quickly, and time the inbox and case list on them."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, insert, select

from tracker.models import Building, Case, CaseStatus, Grid, Role, Task, TaskStatus, User

from .loop import PASSWORD, percentile
from .webclient import WebUser

#: Share of generated cases per status; the rest are archived (a year of cases is mostly closed).
OPEN_SHARE = {CaseStatus.DISPATCHING: 0.005, CaseStatus.HANDLING: 0.02, CaseStatus.CALLBACK: 0.005}
#: About a year of requests for one grid (DOMAIN.md: ~30 a day per community of several grids).
CASES_PER_GRID = 2500
TASK_FOR = {CaseStatus.DISPATCHING: ("dispatch", "派单/转办", "dispatch", "网格长", Role.GRID_LEADER),
            CaseStatus.HANDLING: ("handle_member", "网格员办理", "handle", "网格员", Role.GRID_MEMBER),
            CaseStatus.CALLBACK: ("callback", "回访", "callback", "网格员", Role.GRID_MEMBER)}


#: The office's time zone (the demo's): a case's local day, which keys the numbers' day totals.
LOCAL = ZoneInfo("Asia/Shanghai")


def grow(url: str, target: int, chunk: int = 5000) -> float:
    """Add generated cases until the database holds ``target``; return seconds taken.

    Rows copy a real archived case's columns (including its compressed workflow state) so that row
    widths are realistic; generated cases carry no audit events (their audit_seq is 0). A city with
    this many cases has many grids: extra grids (one building each) are added to the community so
    that each grid holds about CASES_PER_GRID cases, the demo grids included.
    """
    engine = create_engine(url)
    start = time.perf_counter()
    _add_grids(engine, max(4, target // CASES_PER_GRID))
    with engine.begin() as conn:
        have = conn.scalar(select(func.count()).select_from(Case))
        table = Case.__table__
        template = conn.execute(select(table).where(table.c.status == CaseStatus.ARCHIVED).limit(1)).mappings().one()
        buildings: dict[int, list[int]] = {}
        for building_id, grid_id in conn.execute(select(Building.id, Building.grid_id)):
            buildings.setdefault(grid_id, []).append(building_id)
        grid_ids = sorted(buildings)
        users = {u: i for u, i in conn.execute(select(User.username, User.id))}
    rng = random.Random(have)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        next_id = (conn.scalar(select(func.max(Case.id))) or 0) + 1
    number = have
    while number < target:
        cases, tasks = [], []
        for _ in range(min(chunk, target - number)):
            number += 1
            grid_id = grid_ids[rng.randrange(len(grid_ids))]
            building_id = rng.choice(buildings[grid_id])
            status = _pick_status(rng)
            created = now - dt.timedelta(seconds=rng.randrange(730 * 86400))
            row = {k: template[k] for k in template}
            # Demo grids' cases were recorded by their members; generated grids have no staff of their own.
            recorder = users.get(f"member{grid_id}{'abc'[number % 3]}", users["admin"])
            row.update(id=next_id, number=f"B{number:08d}", grid_id=grid_id, building_id=building_id,
                       created_by_id=recorder,
                       status=status.value, created_at=created, updated_at=created, version=1, audit_seq=0,
                       local_day=created.astimezone(LOCAL).date(),
                       audit_head=None,
                       archived_at=created if status == CaseStatus.ARCHIVED else None)
            cases.append(row)
            if status in TASK_FOR:
                tasks.append(_task(next_id, grid_id, status, users))
            next_id += 1
        _bulk_insert(engine, cases, tasks)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('\"case\"', 'id'), "
                                 "(SELECT max(id) FROM \"case\"))")
            conn.exec_driver_sql('ANALYZE "case"; ANALYZE task')
    engine.dispose()
    return time.perf_counter() - start


def _bulk_insert(engine, cases: list[dict], tasks: list[dict]) -> None:
    """Insert one chunk: COPY on PostgreSQL, executemany on SQLite."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(insert(Case.__table__), cases)
            if tasks:
                conn.execute(insert(Task.__table__), tasks)
        return
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table, rows in (("case", cases), ("task", tasks)):
                if not rows:
                    continue
                columns = list(rows[0])
                names = ", ".join(f'"{c}"' for c in columns)
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])
        raw.commit()
    finally:
        raw.close()


def _add_grids(engine, wanted: int) -> None:
    """Add grids (G5, G6, ...) with one building each until the community has ``wanted``."""
    with engine.begin() as conn:
        have = conn.scalar(select(func.count()).select_from(Grid))
        community = conn.scalar(select(Grid.community_id).limit(1))
        if have >= wanted:
            return
        grids = conn.execute(insert(Grid).returning(Grid.id, sort_by_parameter_order=True), [
            {"community_id": community, "code": f"G{n}", "name": f"第{n}网格"} for n in range(have + 1, wanted + 1)
        ]).scalars().all()
        conn.execute(insert(Building), [{"grid_id": g, "name": f"{g}号楼院", "address": ""} for g in grids])


def _pick_status(rng: random.Random) -> CaseStatus:
    """Draw a status with the configured shares."""
    x = rng.random()
    for status, share in OPEN_SHARE.items():
        if x < share:
            return status
        x -= share
    return CaseStatus.ARCHIVED


def _task(case_id: int, grid_id: int, status: CaseStatus, users: dict[str, int]) -> dict:
    """Build the open task row that a case in ``status`` has."""
    name, title, form_key, lane, role = TASK_FOR[status]
    # Demo grids G1..G4 have ids 1..4 and named staff; cases of generated grids wait in their pools.
    assignee = None
    if status == CaseStatus.HANDLING:
        assignee = users.get(f"member{grid_id}b")
    elif status == CaseStatus.CALLBACK:
        assignee = users.get(f"member{grid_id}a")
    return {"id": str(uuid.uuid4()), "case_id": case_id, "name": name, "title": title, "form_key": form_key,
            "lane": lane, "role": role.value, "grid_id": grid_id, "department_id": None, "assignee_id": assignee,
            "status": TaskStatus.OPEN.value, "due_at": None, "created_at": dt.datetime.now(dt.UTC),
            "completed_at": None, "completed_by_id": None}


def time_pages(base: str, repeats: int) -> dict[str, float]:
    """Return the p95 (ms) of the inbox and case-list pages, as a leader and a member see them."""
    leader = WebUser(base).login("leader1", PASSWORD)
    member = WebUser(base).login("member1b", PASSWORD)
    auditor = WebUser(base).login("auditor", PASSWORD)
    pages = {
        "inbox (leader)": (leader, "/"),
        "inbox (member)": (member, "/"),
        "case list (leader)": (leader, "/cases/"),
        "case list filtered": (leader, "/cases/?status=handling&category=property_repair"),
        "case list page 50": (leader, "/cases/?page=50"),
        "case list (auditor, all grids)": (auditor, "/cases/"),
    }
    figures = {}
    for label, (user, path) in pages.items():
        user.request(path)  # warm caches once
        samples = []
        for _ in range(repeats):
            t = time.perf_counter()
            reply = user.request(path)
            samples.append(time.perf_counter() - t)
            assert reply.status == 200, (path, reply.status)
        figures[label] = 1000 * percentile(samples, 95)
    return figures
