"""Several real processes against gunicorn + PostgreSQL: no lost update, no double completion,
and nothing half-written when workers are killed or the database restarts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD, building_id, user_id
from tests.webclient import Gunicorn, WebUser, form_fields
from tracker.models import AuditEvent, Case, CaseStatus, Task, TaskStatus
from tracker.services.audit import verify_chain

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(request):
    """A fresh seeded PostgreSQL database, whatever backend the rest of the suite uses."""
    from tests.conftest import _build_template, _numbers
    cluster = request.getfixturevalue("pg_cluster")
    name = f"proc_{next(_numbers)}"
    cluster.execute(f"CREATE DATABASE {name}")
    _build_template(cluster.url(name))
    return cluster.url(name)


@pytest.fixture
def server(pg_url, tmp_path):
    """gunicorn with 3 sync workers on the fresh database."""
    gunicorn = Gunicorn(pg_url, workers=3, log=tmp_path / "gunicorn.log").start()
    yield gunicorn
    gunicorn.stop()


@pytest.fixture
def db(pg_url):
    """An autocommit session on the server's database, for assertions."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with Session(engine) as session:
        yield session
    engine.dispose()


def _open_cases(base: str, building: int, count: int) -> None:
    """Record ``count`` cases as a grid-A member, each waiting for dispatch."""
    member = WebUser(base).login("member_a", PASSWORD)
    for i in range(count):
        reply = member.submit("/cases/new", {
            "resident_name": f"居民{i}", "resident_phone": "13812345678", "building_id": str(building),
            "category": "property_repair", "description": "并发测试", "channel": "phone",
            "urgency": "normal", "green_channel": "", "disposition": "dispatch", "reply": ""})
        assert reply.status == 302, reply.body[:300]


def _race(base: str, username: str, task_ids: list[str], handler: int, action: str, barrier, results) -> None:
    """One client process: load every task form, wait for the others, then post them all."""
    user = WebUser(base).login(username, PASSWORD)
    pages = {t: user.request(f"/tasks/{t}").body for t in task_ids}
    barrier.wait(timeout=60)
    for task_id, html in pages.items():
        fields = form_fields(html)
        assert "version" in fields, "task page without the case version"
        if action == "complete":
            fields.update({"dispatch_to": "member", "handler_id": str(handler), "department_id": "0",
                           "deadline_class": "general"})
            reply = user.request(f"/tasks/{task_id}", fields)
        else:
            reply = user.request(f"/tasks/{task_id}/claim", fields)
        results.put((task_id, username, reply.status, "刷新" in reply.body))


def _run_race(server, db, action: str, usernames: list[str]) -> dict[str, list[tuple[str, int, bool]]]:
    """Let one process per username post to every open dispatch task at once."""
    _open_cases(server.base, building_id(db), 6)
    task_ids = list(db.scalars(select(Task.id).where(Task.status == TaskStatus.OPEN, Task.name == "dispatch")))
    assert len(task_ids) == 6
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(usernames)), context.Queue()
    handler = user_id(db, "member_a")
    procs = [context.Process(target=_race, args=(server.base, u, task_ids, handler, action, barrier, results))
             for u in usernames]
    for p in procs:
        p.start()
    outcomes: dict[str, list[tuple[str, int, bool]]] = {t: [] for t in task_ids}
    for _ in range(len(usernames) * len(task_ids)):
        task_id, username, status, says_reload = results.get(timeout=120)
        outcomes[task_id].append((username, status, says_reload))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return outcomes


def test_concurrent_completions_from_several_processes_one_wins_each_task(server, db):
    outcomes = _run_race(server, db, "complete", ["leader_a", "leader_a2", "mixed", "leader_a"])
    for task_id, attempts in outcomes.items():
        statuses = sorted(status for _, status, _ in attempts)
        assert statuses == [302, 409, 409, 409], (task_id, attempts)
        assert all(says_reload for _, status, says_reload in attempts if status == 409)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "task.dispatch")) == 6
    for case in db.scalars(select(Case)):
        assert case.status == CaseStatus.HANDLING
        assert [t.name for t in case.tasks if t.status == TaskStatus.OPEN] == ["handle_member"]
        assert verify_chain(db, case.id).ok


def test_concurrent_claims_from_several_processes_one_wins_each_task(server, db):
    outcomes = _run_race(server, db, "claim", ["leader_a", "leader_a2", "mixed"])
    for task_id, attempts in outcomes.items():
        winners = [u for u, status, _ in attempts if status == 302]
        assert len(winners) == 1, (task_id, attempts)
        assert sorted(status for _, status, _ in attempts) == [302, 409, 409]
        assert db.get(Task, task_id).assignee_id == user_id(db, winners[0])
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "task.claimed")) == 6


def _hammer(base: str, building: int, stop_at: float, results) -> None:
    """Record cases until ``stop_at``, reporting each reply status (0 for a dropped connection)."""
    user = None
    while time.time() < stop_at:
        try:
            user = user or WebUser(base, timeout=20).login("member_a", PASSWORD)
            reply = user.submit("/cases/new", {
                "resident_name": "压测", "resident_phone": "13812345678", "building_id": str(building),
                "category": "other", "description": "故障测试", "channel": "app", "urgency": "normal",
                "green_channel": "", "disposition": "dispatch", "reply": ""})
            results.put(reply.status)
        except (OSError, RuntimeError):  # connection dropped, or login refused with 503 during a restart
            results.put(0)
            user = None
            time.sleep(0.05)


def _assert_nothing_half_written(db) -> int:
    """Every case has its audit chain, its number and its open task; return the case count."""
    db.expire_all()
    cases = db.scalars(select(Case)).all()
    for case in cases:
        assert not case.number.startswith("tmp-")
        assert verify_chain(db, case.id).ok, case.number
        open_tasks = [t for t in case.tasks if t.status == TaskStatus.OPEN]
        assert [t.name for t in open_tasks] == ["dispatch"], case.number
        assert case.workflow_state
    return len(cases)


def _load(server, db, seconds: float, clients: int = 3):
    """Start client processes recording cases for ``seconds``; return (processes, queue)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop_at = time.time() + seconds
    procs = [context.Process(target=_hammer, args=(server.base, building_id(db), stop_at, results))
             for _ in range(clients)]
    for p in procs:
        p.start()
    return procs, results


def _until_recorded(results, count: int, timeout: float = 60) -> list[int]:
    """Read statuses until ``count`` cases were recorded, so the fault hits a server under load."""
    statuses, deadline = [], time.time() + timeout
    while statuses.count(302) < count and time.time() < deadline:
        statuses.append(results.get(timeout=timeout))
    return statuses


def _collect(procs, results, statuses: list[int] | None = None) -> list[int]:
    """Wait for the client processes and return every status they saw."""
    for p in procs:
        p.join(timeout=120)
    statuses = list(statuses or [])
    while not results.empty():
        statuses.append(results.get())
    return statuses


def test_workers_killed_mid_request_leave_nothing_half_written(server, db):
    procs, results = _load(server, db, seconds=8)
    before = _until_recorded(results, 3)
    killed = 0
    deadline = time.time() + 6
    while time.time() < deadline:
        time.sleep(0.7)
        for pid in server.worker_pids()[:1]:
            os.kill(pid, signal.SIGKILL)
            killed += 1
    statuses = _collect(procs, results, before)
    assert killed >= 5
    assert statuses.count(302) > 0
    count = _assert_nothing_half_written(db)
    assert count >= statuses.count(302)
    # Service resumes: the master replaced the killed workers.
    assert WebUser(server.base).login("member_a", PASSWORD).request("/").status == 200


def test_database_restart_under_load_loses_nothing_and_service_resumes(server, db, request):
    cluster = request.getfixturevalue("pg_cluster")
    procs, results = _load(server, db, seconds=12)
    before = _until_recorded(results, 3)
    db.close()
    db.bind.dispose()
    restarter = threading.Thread(target=cluster.restart)
    restarter.start()
    restarter.join(timeout=60)
    statuses = _collect(procs, results, before)
    assert statuses.count(302) > 0
    assert set(statuses) <= {0, 302, 409, 503}, set(statuses)
    count = _assert_nothing_half_written(db)
    assert count >= statuses.count(302)
    assert WebUser(server.base).login("member_a", PASSWORD).request("/").status == 200
