"""The tick that fires due timers, exactly once.

A tick takes a batch of due rows of the timer table (``timers``) under row locks (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so several schedulers share the work; SQLite serializes writers), fires
the workflow's timers as of the tick's moment, and in the same transaction stores the new state, the
notifications, the audit events and the next due time. Killed mid-tick, the transaction rolls back
and the next tick fires the same timers; committed, the timer row has moved on and nothing fires
twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, undefer

from workflows import WorkflowError

from ..models import Case, Timer, Visit
from . import Services, cases, visits
from .locks import CASE_FOR_CHANGE
from .timers import BATCH_TIMERS

log = logging.getLogger(__name__)

#: After a failed firing the timer is retried this much later (doubling, up to a day): never dropped.
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(days=1)
#: What a subject's firing may raise; anything else is a bug and stops the tick loudly.
_FIRING_ERRORS = (WorkflowError, SQLAlchemyError, ValueError, KeyError)


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


def fire_due(svc: Services, now: dt.datetime, limit: int, exclude: frozenset[int] = frozenset()) -> TickResult:
    """Fire the timers of up to ``limit`` due subjects as of ``now``, in the caller's transaction.

    Lock order: the timer rows are taken with SKIP LOCKED (schedulers split the work), then their
    subject rows, in one query, with SKIP LOCKED too. A person completing a task locks the case
    first and the timer row second; because the scheduler never *waits* for a case, the two cannot
    deadlock: a case someone is acting on is skipped and fired on a later tick.

    The batch is fired as a whole with one flush; if any subject fails, that attempt is rolled
    back and the batch is fired again one subject at a time, each in its own savepoint, so the
    failing one is kept for a retry and the others fire.
    """
    session = svc.session
    query = (select(Timer).where(Timer.due_at <= now).order_by(Timer.due_at, Timer.id).limit(limit)
             .with_for_update(skip_locked=True)  # SQLite ignores it: its writers are serialized
             .execution_options(populate_existing=True))
    if exclude:
        query = query.where(Timer.id.not_in(exclude))
    taken = session.scalars(query).all()
    if not taken:
        return TickResult()
    ids = [t.id for t in taken]
    try:
        with session.begin_nested():
            return _fire_batch(svc, taken, now)
    except _FIRING_ERRORS as exc:
        log.warning("a batch of %d timers failed as a whole (%s: %s); firing them one by one", len(ids),
                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    finally:
        session.info.pop(BATCH_TIMERS, None)
    return _fire_each(svc, ids, now)


def _fire_batch(svc: Services, taken: list[Timer], now: dt.datetime) -> TickResult:
    """Lock every subject of ``taken`` at once, fire them all, flush once."""
    session = svc.session
    result = TickResult(taken=len(taken))
    by_subject = {_subject(t): t for t in taken}
    locked = {**_lock(session, "case", [i for kind, i in by_subject if kind == "case"]),
              **_lock(session, "visit", [i for kind, i in by_subject if kind == "visit"])}
    session.info[BATCH_TIMERS] = dict(by_subject)  # sync takes its row from here
    for key, timer in by_subject.items():
        if key in locked:
            result.fired += _fire(svc, key[0], locked[key], now)
        else:
            result.skipped.append(timer.id)
    session.flush()
    return result


def _subject(timer: Timer) -> tuple[str, int]:
    """Name a timer's subject: ("case", id) or ("visit", id)."""
    return ("case", timer.case_id) if timer.case_id is not None else ("visit", timer.visit_id)


def _lock(session: Session, kind: str, ids: list[int]) -> dict[tuple[str, int], Case | Visit]:
    """Lock the subjects with these ids that nobody else holds, loading what firing reads."""
    if not ids:
        return {}
    model, options = (Case, CASE_FOR_CHANGE) if kind == "case" else (Visit, (undefer(Visit.workflow_state),))
    rows = session.scalars(select(model).where(model.id.in_(ids)).options(*options)
                           .with_for_update(of=model, skip_locked=True)
                           .execution_options(populate_existing=True)).unique().all()
    return {(kind, row.id): row for row in rows}


def _fire(svc: Services, kind: str, subject: Case | Visit, now: dt.datetime) -> int:
    """Fire a locked subject's due workflow timers; return how many fired."""
    return (cases if kind == "case" else visits).fire_timers(svc, subject, now)


def _fire_each(svc: Services, ids: list[int], now: dt.datetime) -> TickResult:
    """Fire the batch's timers one subject at a time, each in a savepoint: one failing keeps its timer."""
    session = svc.session
    result = TickResult()
    for timer_id in ids:
        result.taken += 1
        try:
            with session.begin_nested():
                kind, subject_id = key = _subject(session.get(Timer, timer_id))
                subject = _lock(session, kind, [subject_id]).get(key)
                fired = None if subject is None else _fire(svc, kind, subject, now)
                session.flush()
        except _FIRING_ERRORS as exc:
            result.failed.append(_reschedule(session, timer_id, now, exc))
            continue
        if fired is None:  # a person is acting on it: a later tick fires it
            result.skipped.append(timer_id)
        else:
            result.fired += fired
    return result


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
