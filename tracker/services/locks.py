"""Load and lock a task's case, refuse stale forms, and turn a lost race into a clear conflict."""

from __future__ import annotations

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..errors import N_, ConflictError, NotFound
from ..models import Case, Task, TaskStatus
from . import Services


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
    # OF case: lock only the case row, not the joined grid/building rows every case shares.
    svc.session.get(Case, task.case_id, with_for_update={"of": Case}, populate_existing=True)
    svc.session.refresh(task)
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


__all__ = ["check_fresh", "flush", "get_task", "lock_task"]
