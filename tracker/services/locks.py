"""Load and lock a task's case, refuse stale forms, and turn a lost race into a clear conflict."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload, undefer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..errors import N_, ConflictError, NotFound
from ..models import Case, Task, TaskStatus
from . import Services


#: Loader options for a case about to change (see lock_task; the scheduler uses them too).
CASE_FOR_CHANGE = (undefer(Case.workflow_state), selectinload(Case.tasks),
                   joinedload(Case.definition, innerjoin=True))


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
    task = get_task(svc, task_id)
    # One query takes the lock and loads afresh what completing a task reads: the workflow state,
    # the case's tasks (this one among them) and its definition version. Nothing is loaded lazily
    # afterwards, so nothing autoflushes half-done changes before the one flush at the end.
    # OF case: lock only the case row, not the joined grid/building/definition rows cases share.
    case = svc.session.scalar(select(Case).where(Case.id == task.case_id).options(*CASE_FOR_CHANGE)
                              .with_for_update(of=Case).execution_options(populate_existing=True))
    # The session holds rows weakly: tie the case to its task, or it is dropped and read again.
    set_committed_value(task, "case", case)
    return task


def check_fresh(case: Case, task: Task, expected_version: int) -> None:
    """Refuse stale forms: the case changed or the task is gone since the page was loaded."""
    if task.status != TaskStatus.OPEN:
        who = task.completed_by.display_name if task.completed_by else "?"
        raise ConflictError(N_("This task was already completed by %(who)s; reload the case to see its state."), who=who)
    if case.version != expected_version:
        raise ConflictError(N_("This case was changed by someone else after you opened it; reload and try again."))


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-lock race into a ConflictError."""
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise ConflictError(N_("This case was changed by someone else at the same moment; reload and try again.")) from None


__all__ = ["CASE_FOR_CHANGE", "check_fresh", "flush", "get_task", "lock_task"]
