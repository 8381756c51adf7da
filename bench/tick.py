"""Scheduler tick: fire N due timers among many pending ones, as `flask scheduler` does."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import random
import time

import time_machine
from sqlalchemy import func, insert, select

from tracker import create_app, jobs
from tracker.db import get_session
from tracker.models import Timer

from .cases import dispatched_cases

#: Cases are dispatched on Monday 2 Nov 2026, 10:00 Beijing; the tick runs Tuesday 11:00, when
#: exactly one timer of each (the 1-working-day sign-for limit) is due.
DISPATCHED = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
TICK_AT = DISPATCHED + dt.timedelta(hours=25)


def measure(url: str, due: int, pending: int, batch_size: int = 100, schedulers: int = 1) -> dict:
    """Make ``due`` cases with one due timer each, pad to ``pending`` timer rows, and tick once.

    The due cases are real (recorded and dispatched through the services); the padding rows are
    timers due in the following weeks, which a tick must step over by index without touching.
    With ``schedulers`` > 1, that many scheduler processes tick at once (PostgreSQL: they split
    the due rows with SKIP LOCKED), timed from a common start to the last one done.
    """
    app = create_app({"app": {"database_url": url}, "scheduler": {"batch_size": batch_size}})
    try:
        dispatched_cases(app, due, DISPATCHED, "member1a", "leader1")
        with app.app_context():
            db = get_session()
            have = db.scalar(select(func.count()).select_from(Timer))
            rng = random.Random(7)
            now = TICK_AT
            rows = [{"due_at": now + dt.timedelta(minutes=rng.randint(10, 60 * 24 * 30)), "attempts": 0,
                     "last_error": ""} for _ in range(max(0, pending - have))]
            for start in range(0, len(rows), 10_000):
                db.execute(insert(Timer), rows[start:start + 10_000])
            db.commit()
            total = db.scalar(select(func.count()).select_from(Timer))
            due_now = db.scalar(select(func.count()).select_from(Timer).where(Timer.due_at <= now))
        if schedulers == 1:
            with time_machine.travel(TICK_AT, tick=False):
                totals = jobs.tick(app)
            return {"pending": total, "due": due_now, "fired": totals.fired, "taken": totals.taken,
                    "failed": len(totals.failed), "seconds": totals.seconds, "batches": totals.batches,
                    "schedulers": 1}
    finally:
        app.extensions["gridloop.db"].dispose()
    return {"pending": total, "due": due_now, **_parallel(url, batch_size, schedulers)}


def _parallel(url: str, batch_size: int, schedulers: int) -> dict:
    """Run ``schedulers`` scheduler processes at once; return what they did together."""
    context = multiprocessing.get_context("spawn")
    ready, queue = context.Barrier(schedulers + 1), context.Queue()
    procs = [context.Process(target=_scheduler, args=(url, batch_size, ready, queue)) for _ in range(schedulers)]
    for p in procs:
        p.start()
    ready.wait(timeout=120)  # every process has its app: start the clock
    start = time.time()  # wall clock: comparable across processes
    results = [queue.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    return {"fired": sum(r["fired"] for r in results), "taken": sum(r["taken"] for r in results),
            "failed": sum(r["failed"] for r in results), "seconds": max(r["done"] for r in results) - start,
            "batches": sum(r["batches"] for r in results), "schedulers": schedulers}


def _scheduler(url: str, batch_size: int, ready, queue) -> None:
    """One scheduler process: build the app, wait for the others, tick once."""
    app = create_app({"app": {"database_url": url}, "scheduler": {"batch_size": batch_size}})
    ready.wait(timeout=120)
    with time_machine.travel(TICK_AT, tick=False):
        totals = jobs.tick(app)
    queue.put({"fired": totals.fired, "taken": totals.taken, "failed": len(totals.failed),
               "batches": totals.batches, "done": time.time()})
    app.extensions["gridloop.db"].dispose()
