"""Real scheduler processes: killed mid-tick and restarted, or two at once, every timer fires once.

Runs on the suite's backend (SQLite by default, PostgreSQL in the second pass).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func, select

from tests.factories import dispatched_cases
from tracker.models import AuditEvent, Notification, Task, TaskStatus, Timer
from tracker.services.audit import verify_chain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ("timer.sign_for", "timer.reminder", "timer.supervision", "timer.escalation")


def _overdue_cases(app, n: int) -> list[int]:
    """Record and dispatch ``n`` cases 40 days ago, so all four of each case's timers are due now."""
    return dispatched_cases(app, n, dt.datetime.now(dt.UTC) - dt.timedelta(days=40), "member_a", "leader_a")


def _scheduler(database_url: str, *args: str, batch: int = 5) -> subprocess.Popen:
    env = {**os.environ, "GRIDLOOP_APP_DATABASE_URL": database_url, "FLASK_APP": "tracker",
           "GRIDLOOP_SCHEDULER_BATCH_SIZE": str(batch), "GRIDLOOP_SCHEDULER_INTERVAL_SECONDS": "0.2"}
    return subprocess.Popen([sys.executable, "-m", "flask", "scheduler", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _fired_cases(db) -> int:
    return db.scalar(select(func.count(func.distinct(AuditEvent.case_id))).where(AuditEvent.action == "timer.escalation"))


def _assert_each_timer_fired_exactly_once(db, case_ids: list[int]) -> None:
    db.expire_all()
    counts = Counter(db.execute(select(AuditEvent.case_id, AuditEvent.action)
                                .where(AuditEvent.action.like("timer.%"))).all())
    for case_id in case_ids:
        assert [counts[(case_id, k)] for k in KINDS] == [1, 1, 1, 1], case_id
    open_side = Counter(db.execute(select(Task.case_id, Task.name).where(
        Task.status == TaskStatus.OPEN, Task.name.in_(("supervise", "escalate")))).all())
    assert all(open_side[(c, "supervise")] == 1 and open_side[(c, "escalate")] == 1 for c in case_ids)
    n = len(case_ids)
    kinds = Counter(db.scalars(select(Notification.kind)).all())
    # Grid A has three leaders (leader_a, leader_a2, mixed). sign_for and supervision: the leaders and
    # the member; reminder: the member; escalation: the street office and the leaders.
    assert kinds == {"sign_for": 4 * n, "reminder": n, "supervision": 4 * n, "escalation": 4 * n}
    assert db.scalar(select(func.count()).select_from(Timer).where(Timer.case_id.in_(case_ids))) == 0
    assert all(verify_chain(db, c).ok for c in case_ids)


def test_scheduler_killed_mid_tick_loses_nothing_and_fires_nothing_twice(app, db, database_url):
    case_ids = _overdue_cases(app, 200)
    process = _scheduler(database_url)
    deadline = time.monotonic() + 120
    try:
        while _fired_cases(db) == 0:  # wait until the first batches are committed
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "scheduler fired nothing in 120 s"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)  # mid-tick: later batches are not done yet
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    done = _fired_cases(db)
    assert 0 < done < len(case_ids), "the kill did not land mid-tick"
    # A half-done batch left nothing behind: every case is either wholly fired or wholly waiting.
    db.expire_all()
    waiting = set(db.scalars(select(Timer.case_id).where(Timer.case_id.in_(case_ids))))
    assert len(waiting) == len(case_ids) - done

    restarted = _scheduler(database_url, "--once", batch=50)
    output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output
    assert f"{len(waiting)} timers due, {4 * len(waiting)} fired, 0 failed" in output
    _assert_each_timer_fired_exactly_once(db, case_ids)


def test_two_scheduler_processes_fire_each_timer_exactly_once(app, db, database_url):
    case_ids = _overdue_cases(app, 120)
    first, second = _scheduler(database_url, "--once"), _scheduler(database_url, "--once")
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [o[-3000:] for o in outputs]
    fired = [int(o.split(" fired")[0].rsplit(" ", 1)[1]) for o in outputs]
    assert sum(fired) == 4 * len(case_ids), outputs
    _assert_each_timer_fired_exactly_once(db, case_ids)
