"""The timer table and the tick that fires due timers, exactly once.

Each case (and each open visit) has at most one timer row: the earliest moment one of its
workflow's timers is due. A tick takes a batch of due rows under row locks (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several schedulers share the work; SQLite serializes writers), fires the
workflow's timers as of the tick's moment, and in the same transaction stores the new state, the
notifications, the audit events and the next due time. Killed mid-tick, the transaction rolls back
and the next tick fires the same timers; committed, the timer row has moved on and nothing fires
twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, undefer

from workflows import WorkflowError

from ..models import Case, Timer, Visit
from . import Services
from .locks import CASE_FOR_CHANGE

log = logging.getLogger(__name__)

#: After a failed firing the timer is retried this much later (doubling, up to a day): never dropped.
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(days=1)
#: A timer due longer ago than this is reported late by /healthz.
LATE_AFTER = dt.timedelta(minutes=5)


@dataclass
class TickResult:
    """What one batch did."""

    # Timer rows taken (due at the tick's moment).
    taken: int = 0
    # Workflow timers fired across those rows.
    fired: int = 0
    # Rows whose firing failed and were rescheduled, with why.
    failed: list[str] = field(default_factory=list)
    # Rows left for a later tick because a person was acting on the case at that moment.
    skipped: list[int] = field(default_factory=list)


def sync(session: Session, due: dt.datetime | None, *, case: Case | None = None,
         visit: Visit | None = None) -> None:
    """Store the subject's next due moment (or remove its timer row when nothing waits)."""
    column, subject_id = (Timer.case_id, case.id) if case is not None else (Timer.visit_id, visit.id)
    with session.no_autoflush:
        timer = session.scalar(select(Timer).where(column == subject_id))
    if due is None:
        if timer is not None:
            session.delete(timer)
        return
    if timer is None:
        timer = Timer(case_id=case.id if case is not None else None,
                      visit_id=visit.id if visit is not None else None, due_at=due)
        session.add(timer)
    timer.due_at, timer.attempts, timer.last_error = due, 0, ""


def fire_due(svc: Services, now: dt.datetime, limit: int, exclude: frozenset[int] = frozenset()) -> TickResult:
    """Fire the timers of up to ``limit`` due subjects as of ``now``, in the caller's transaction.

    Lock order: the timer rows are taken with SKIP LOCKED (schedulers split the work), then each
    subject row with SKIP LOCKED too. A person completing a task locks the case first and the timer
    row second; because the scheduler never *waits* for a case, the two cannot deadlock: a case
    someone is acting on is skipped and fired on a later tick.
    """
    session = svc.session
    query = (select(Timer).where(Timer.due_at <= now).order_by(Timer.due_at, Timer.id).limit(limit)
             .with_for_update(skip_locked=True)  # SQLite ignores it: its writers are serialized
             .execution_options(populate_existing=True))
    if exclude:
        query = query.where(Timer.id.not_in(exclude))
    result = TickResult()
    for timer in session.scalars(query).all():
        result.taken += 1
        timer_id = timer.id
        try:
            with session.begin_nested():  # one subject failing must not undo the batch
                fired = _fire_one(svc, timer, now)
        except (WorkflowError, SQLAlchemyError, ValueError, KeyError) as exc:
            result.failed.append(_reschedule(session, timer_id, now, exc))
            continue
        if fired is None:
            result.skipped.append(timer_id)
        else:
            result.fired += fired
    return result


def _fire_one(svc: Services, timer: Timer, now: dt.datetime) -> int | None:
    """Lock the timer's subject, fire what is due; return how many fired, or None if it is busy.

    The timer row is locked by the batch query already (on SQLite the whole batch holds the write
    lock), so it cannot change under us; only its subject must still be taken.
    """
    from . import cases, visits  # noqa: PLC0415 (they import this module)

    session = svc.session
    model, subject_id = (Case, timer.case_id) if timer.case_id is not None else (Visit, timer.visit_id)
    query = select(model).where(model.id == subject_id)
    # Firing reads the case's state, tasks and definition: load them with the lock.
    query = query.options(*CASE_FOR_CHANGE) if model is Case else query.options(undefer(Visit.workflow_state))
    subject = session.scalar(query.with_for_update(of=model, skip_locked=True)
                             .execution_options(populate_existing=True))
    if subject is None:
        return None
    if model is Case:
        return cases.fire_timers(svc, subject, now)
    return visits.fire_timers(svc, subject, now)


def _reschedule(session: Session, timer_id: int, now: dt.datetime, exc: Exception) -> str:
    """Keep a timer that failed to fire, retry it later, and say why."""
    timer = session.get(Timer, timer_id)
    timer.attempts += 1
    timer.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    timer.due_at = now + min(RETRY_BASE * 2 ** (timer.attempts - 1), RETRY_MAX)
    subject = f"case {timer.case_id}" if timer.case_id is not None else f"visit {timer.visit_id}"
    log.warning("timer of %s failed (attempt %d), retrying at %s: %s", subject, timer.attempts,
                timer.due_at.isoformat(), timer.last_error)
    session.flush()
    return f"{subject}: {timer.last_error}"


def counts(session: Session, now: dt.datetime) -> dict[str, int]:
    """Return how many timer rows wait, and how many are late (due over five minutes before ``now``:
    no scheduler is running, or it is stuck)."""
    late = session.scalar(select(func.count()).select_from(Timer).where(Timer.due_at < now - LATE_AFTER))
    return {"pending": session.scalar(select(func.count()).select_from(Timer)) or 0, "late": late or 0}

