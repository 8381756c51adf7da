"""The timer table: per case (and per open visit) the earliest moment one of its workflow's timers is due.

Each subject has at most one row; services keep it in step (``sync``) in the transaction that
changes the workflow, and the tick (``firing``) takes the due rows.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Case, Timer, Visit
from .memo import memo

#: A timer due longer ago than this is reported late by /healthz.
LATE_AFTER = dt.timedelta(minutes=5)
#: session.info key: the timer rows a scheduler batch took, by subject (so sync need not read them again).
BATCH_TIMERS = "gridloop.batch_timers"


def sync(session: Session, due: dt.datetime | None, *, case: Case | None = None,
         visit: Visit | None = None) -> None:
    """Store the subject's next due moment (or remove its timer row when nothing waits)."""
    column, subject_id = (Timer.case_id, case.id) if case is not None else (Timer.visit_id, visit.id)
    batch = session.info.get(BATCH_TIMERS, {})  # a scheduler batch has the rows already
    key = ("case" if case is not None else "visit", subject_id)
    read = memo(session).get("timers", {})  # so has a person's lock (hold)
    if key in batch:
        timer = batch.pop(key)
    elif key in read:
        timer = read.pop(key)
    else:
        with session.no_autoflush:
            timer = session.scalar(select(Timer).where(column == subject_id))
    if due is None:
        if timer is not None:
            session.delete(timer)
        elif case is not None:
            hold(session, case.id, None)  # still none, should the case change again in this transaction
        return
    if timer is None:
        timer = Timer(case_id=case.id if case is not None else None,
                      visit_id=visit.id if visit is not None else None, due_at=due)
        session.add(timer)
    timer.due_at, timer.attempts, timer.last_error = due, 0, ""
    if case is not None:
        hold(session, case.id, timer)


def hold(session: Session, case_id: int, timer: Timer | None) -> None:
    """Remember the case's timer row (None: it has none) for this transaction's next ``sync``: as read in
    the statement that locked the case, or as the last sync left it. A timer row is inserted, moved or
    deleted under its case's lock (but for a failed firing's retry, which could as well land between a
    read of sync's own and its write)."""
    memo(session).setdefault("timers", {})[("case", case_id)] = timer


def counts(session: Session, now: dt.datetime) -> dict[str, int]:
    """Return how many timer rows wait, and how many are late (due over five minutes before ``now``:
    no scheduler is running, or it is stuck)."""
    late = session.scalar(select(func.count()).select_from(Timer).where(Timer.due_at < now - LATE_AFTER))
    return {"pending": session.scalar(select(func.count()).select_from(Timer)) or 0, "late": late or 0}

