"""Load and lock a task's case, refuse stale forms, and turn a lost race into a clear conflict."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload, undefer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..errors import N_, ConflictError, NotFound
from ..models import Case, Task, TaskStatus, Timer, User
from . import Services, timers
from .memo import memo

#: Loader options for cases about to change (the scheduler locks a batch of them with these).
CASE_FOR_CHANGE = (undefer(Case.workflow_state), selectinload(Case.tasks),
                   joinedload(Case.definition, innerjoin=True))
#: Loader options for the one case a person changes (lock_task): its tasks come in the same query, and so
#: do its handler and department, which the answer names (their roles are only read if someone asks).
ONE_CASE_FOR_CHANGE = (undefer(Case.workflow_state), joinedload(Case.tasks),
                       joinedload(Case.definition, innerjoin=True),
                       joinedload(Case.handler).lazyload(User.memberships), joinedload(Case.department))

#: The case as the locking statement's snapshot saw it, before any wait for the lock (find_locked_task).
_SEEN = aliased(Case)
#: Lock the case of the task ``task_id`` and load it for the change (built once: building costs more than running).
_LOCK_TASK_CASE = (
    select(Case, Timer, select(_SEEN.row_version).where(_SEEN.id == Case.id).scalar_subquery())
    .join(Task, Task.case_id == Case.id).outerjoin(Timer, Timer.case_id == Case.id)
    .where(Task.id == bindparam("task_id")).options(*ONE_CASE_FOR_CHANGE).with_for_update(of=Case))


def get_task(svc: Services, task_id: str) -> Task:
    """Load a task or raise NotFound."""
    task = svc.session.get(Task, task_id)
    if task is None:
        raise NotFound(N_("Task %(id)s not found."), id=task_id)
    return task


def lock_task(svc: Services, task_id: str) -> Task:
    """Load a task and lock its case row, so concurrent actors queue and the later sees the change.

    On PostgreSQL this is SELECT ... FOR UPDATE; SQLite already serializes writers (BEGIN IMMEDIATE).
    """
    task = find_locked_task(svc, task_id)
    if task is None:
        raise NotFound(N_("Task %(id)s not found."), id=task_id)
    return task


def find_locked_task(svc: Services, task_id: str) -> Task | None:
    """Return the task with its case locked (see ``lock_task``), or None if there is no such task.

    A view that loads the task for a change calls this, and the service's ``lock_task`` then finds
    the case already locked in this transaction and reads nothing again.
    """
    session = svc.session
    for case in memo(session).get("locked", {}).values():
        for task in case.tasks:
            if task.id == task_id:
                return task
    # One query takes the lock and loads what completing a task reads: the workflow state, the
    # case's tasks (this one among them), its definition version and its timer row. Nothing is
    # loaded lazily afterwards, so nothing autoflushes half-done changes before the one flush.
    # OF case: lock only the case row, not the joined grid/building/definition/timer rows.
    query = _LOCK_TASK_CASE
    if _holds_any(session, (Case, Task, Timer)):
        # Read before the lock, they may be stale: read them afresh (only then, as populating afresh
        # also resets what the session already knows of the people it joins, e.g. the actor's roles).
        query = query.execution_options(populate_existing=True)
    row = session.execute(query, {"task_id": task_id}).unique().first()
    if row is None:
        return None
    case, timer, version_before_lock = row
    if version_before_lock != case.row_version:
        # The lock waited for another transaction's change to the case. PostgreSQL then returns the
        # case row as that change left it, but every other row of the statement (its tasks, its
        # timer) as it was before: read them again, under the lock now held. Whoever changes a case's
        # tasks or moves its timer changes the case row too (version_id_col), so equal versions mean
        # nothing of it moved (a failed firing only reschedules the timer row, which sync overwrites).
        case, timer, _ = session.execute(query.execution_options(populate_existing=True),
                                         {"task_id": task_id}).unique().one()
    memo(session).setdefault("locked", {})[case.id] = case  # held strongly: the session holds rows weakly
    timers.hold(session, case.id, timer)
    task = next(t for t in case.tasks if t.id == task_id)
    set_committed_value(task, "case", case)
    return task


def hold_new(session: Session, case: Case) -> None:
    """Treat a case this transaction has just inserted as locked: nobody else sees it before the commit.

    It has no tasks and no timer row yet, so nothing needs to read them; completing its first task
    (an intake settled on the spot) finds it here.
    """
    set_committed_value(case, "tasks", [])
    memo(session).setdefault("locked", {})[case.id] = case
    timers.hold(session, case.id, None)


def _holds_any(session: Session, models: tuple[type, ...]) -> bool:
    """Return whether the session's identity map holds a row of any of ``models``."""
    return any(isinstance(obj, models) for obj in session.identity_map.values())


def check_fresh(case: Case, task: Task, expected_version: int) -> None:
    """Refuse stale forms: the case changed or the task is gone since the page was loaded."""
    if task.status != TaskStatus.OPEN:
        who = task.completed_by.display_name if task.completed_by else "?"
        raise ConflictError(N_("This task was already completed by %(who)s; reload the case to see its state."),
                            who=who)
    if case.version != expected_version:
        raise ConflictError(N_("This case was changed by someone else after you opened it; reload and try again."))


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-lock race into a ConflictError."""
    try:
        session.flush()
    except StaleDataError:
        # No rollback here: the boundary (request, job or savepoint) rolls back what it began.
        raise ConflictError(N_("This case was changed by someone else at the same moment; "
                               "reload and try again.")) from None


__all__ = ["CASE_FOR_CHANGE", "ONE_CASE_FOR_CHANGE", "check_fresh", "find_locked_task", "flush", "get_task",
           "hold_new", "lock_task"]
