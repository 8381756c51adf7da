"""Who may do what: one ``can(user, action, obj)`` used by views and re-checked by services."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, false, or_, select

from .codes import AttachmentKind
from .models import Case, CaseStatus, Grid, Household, Role, Task, TaskStatus, User, Visit, VisitStatus


class Permission(StrEnum):
    """Actions, named resource:action."""

    CASE_CREATE = "case:create"
    CASE_READ = "case:read"
    TASK_READ = "task:read"
    TASK_COMPLETE = "task:complete"
    TASK_CLAIM = "task:claim"
    TASK_REASSIGN = "task:reassign"
    TASK_RELEASE = "task:release"
    GRID_MANAGE = "grid:manage"
    HOUSEHOLD_READ = "household:read"
    HOUSEHOLD_MANAGE = "household:manage"
    HOUSEHOLD_NOTE = "household:note"
    VISIT_COMPLETE = "visit:complete"


class PermissionDenied(Exception):
    """The user may not do this; the message says what and why."""


def grid_ids(user: User, *roles: Role) -> set[int]:
    """Return the grids where the user holds any of ``roles``."""
    return {m.grid_id for m in user.memberships if m.role in roles and m.grid_id is not None}


def department_ids(user: User) -> set[int]:
    """Return the departments the user handles cases for."""
    return {m.department_id for m in user.memberships
            if m.role == Role.DEPARTMENT_HANDLER and m.department_id is not None}


def community_ids(user: User, *roles: Role) -> set[int]:
    """Return the communities where the user holds any of ``roles`` (default: auditor or street office)."""
    roles = roles or (Role.AUDITOR, Role.STREET_OFFICE)
    return {m.community_id for m in user.memberships if m.role in roles and m.community_id is not None}


def audits_district(user: User) -> bool:
    """Return whether the user is a district auditor (an auditor membership without a community)."""
    return any(m.role == Role.AUDITOR and m.community_id is None for m in user.memberships)


def holds_role(user: User, role: Role, *, grid_id: int | None = None,
               department_id: int | None = None, community_id: int | None = None) -> bool:
    """Return whether the user holds ``role`` in the given grid, department or community."""
    for m in user.memberships:
        if m.role != role:
            continue
        if role == Role.DEPARTMENT_HANDLER and m.department_id == department_id:
            return True
        if role in (Role.GRID_MEMBER, Role.GRID_LEADER) and m.grid_id == grid_id:
            return True
        if role == Role.STREET_OFFICE and community_id is not None and m.community_id == community_id:
            return True
    return False


def can(user: User | None, action: Permission, obj: object) -> bool:
    """Return whether ``user`` may perform ``action`` on ``obj``."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return False
    check = _CHECKS[action]
    return check(user, obj)


def require(user: User, action: Permission, obj: object) -> None:
    """Raise PermissionDenied unless ``can(user, action, obj)``."""
    if not can(user, action, obj):
        raise PermissionDenied(f"{getattr(user, 'username', '?')} may not {action} on {_label(obj)}")


def _label(obj: object) -> str:
    """Name an object in a denial message."""
    if isinstance(obj, Case):
        return f"case {obj.number}"
    if isinstance(obj, Task):
        return f"task {obj.name} of case {obj.case_id}"
    if isinstance(obj, Grid):
        return f"grid {obj.code}"
    return type(obj).__name__


def _can_create(user: User, grid: Grid) -> bool:
    """Members and leaders record cases in their own grids."""
    return grid.id in grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER)


def _can_read_case(user: User, case: Case) -> bool:
    """Admins, the grid's staff, the referred department and the community's auditors read a case."""
    if user.is_admin or audits_district(user):  # rights follow roles: recording a case grants nothing
        return True
    if case.grid_id in grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER):
        return True
    if case.department_id is not None and case.department_id in department_ids(user):
        return True
    return case.grid.community_id in community_ids(user)


def _can_read_task(user: User, task: Task) -> bool:
    """Reading a task follows reading its case."""
    return _can_read_case(user, task.case)


def in_lane(user: User, task: Task) -> bool:
    """Return whether the user holds the task's lane role in the task's scope."""
    community_id = task.case.grid.community_id if task.role == Role.STREET_OFFICE else None
    return holds_role(user, task.role, grid_id=task.grid_id, department_id=task.department_id,
                      community_id=community_id)


def _can_complete(user: User, task: Task) -> bool:
    """Only the lane's role in the case's grid (or the referred department) acts, and only on open tasks."""
    if task.status != TaskStatus.OPEN or task.case.status == CaseStatus.ARCHIVED:
        return False
    if not in_lane(user, task):
        return False
    return task.assignee_id in (None, user.id)


def _can_claim(user: User, task: Task) -> bool:
    """A pool task can be claimed by anyone in its lane."""
    return task.status == TaskStatus.OPEN and task.assignee_id is None and in_lane(user, task)


def _can_reassign(user: User, task: Task) -> bool:
    """A grid's leaders move open tasks of the grid's own lanes (not a department's or the street office's)."""
    return (task.status == TaskStatus.OPEN and task.case.status != CaseStatus.ARCHIVED
            and task.role in (Role.GRID_MEMBER, Role.GRID_LEADER)
            and (user.is_admin or task.grid_id in grid_ids(user, Role.GRID_LEADER)))


def _can_release(user: User, task: Task) -> bool:
    """Whoever holds an open task may put it back in its pool, and so may the grid's leaders."""
    if task.status != TaskStatus.OPEN or task.assignee_id is None:
        return False
    return (task.assignee_id == user.id and in_lane(user, task)) or _can_reassign(user, task)


def _can_manage_grid(user: User, grid: Grid) -> bool:
    """A grid's leaders hand work over, arrange stand-ins and watch the workload board."""
    return user.is_admin or grid.id in grid_ids(user, Role.GRID_LEADER)


def _can_read_household(user: User, household: Household) -> bool:
    """The grid's staff and the community's auditors and street office read a household's page."""
    if user.is_admin or audits_district(user) \
            or household.grid_id in grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER):
        return True
    return household.grid.community_id in community_ids(user)


def _can_manage_households(user: User, grid: Grid) -> bool:
    """Leaders register households and plan visits in their grids."""
    return _can_manage_grid(user, grid)


def _can_note(user: User, household: Household) -> bool:
    """The grid's members and leaders keep the diary."""
    return household.grid_id in grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER)


def _can_complete_visit(user: User, visit: Visit) -> bool:
    """The planned member, or another member of the grid covering for them, records an open visit."""
    return visit.status == VisitStatus.OPEN and (
        visit.member_id == user.id or visit.grid_id in grid_ids(user, Role.GRID_MEMBER))


_CHECKS: dict[Permission, Callable[[User, Any], bool]] = {
    Permission.CASE_CREATE: _can_create,
    Permission.CASE_READ: _can_read_case,
    Permission.TASK_READ: _can_read_task,
    Permission.TASK_COMPLETE: _can_complete,
    Permission.TASK_CLAIM: _can_claim,
    Permission.TASK_REASSIGN: _can_reassign,
    Permission.TASK_RELEASE: _can_release,
    Permission.GRID_MANAGE: _can_manage_grid,
    Permission.HOUSEHOLD_READ: _can_read_household,
    Permission.HOUSEHOLD_MANAGE: _can_manage_households,
    Permission.HOUSEHOLD_NOTE: _can_note,
    Permission.VISIT_COMPLETE: _can_complete_visit,
}


#: Photos a case's handler adds to it from the handling task (the others come with intake, visits, mediations).
HANDLING_KINDS = (AttachmentKind.BEFORE, AttachmentKind.AFTER)


def handles_case(user: User, case: Case) -> bool:
    """Whether ``user`` handles ``case`` now: may act on its open handling task (never on an archived case).

    The handler adds before/after photos and records and refers the case's mediations.
    """
    if case.status == CaseStatus.ARCHIVED or not can(user, Permission.CASE_READ, case):
        return False
    return any(t.form_key == "handle" and t.status == TaskStatus.OPEN and can(user, Permission.TASK_COMPLETE, t)
               for t in case.tasks)


def may_attach(user: User, case: Case, kind: AttachmentKind) -> bool:
    """Whether ``user`` may add photos of ``kind`` to ``case`` from its pages or the API.

    Before/after photos: whoever handles the case (``handles_case``). Further intake photos: the case's
    grid staff. Nobody adds to an archived case, nor photos of other kinds (they come with their records).
    """
    if case.status == CaseStatus.ARCHIVED or not can(user, Permission.CASE_READ, case):
        return False
    if kind in HANDLING_KINDS:
        return handles_case(user, case)
    if kind == AttachmentKind.INTAKE:
        return (holds_role(user, Role.GRID_MEMBER, grid_id=case.grid_id)
                or holds_role(user, Role.GRID_LEADER, grid_id=case.grid_id))
    return False


def visible_households(user: User, query: Select) -> Select:
    """Restrict a household query to what the user may read (as ``_can_read_household``)."""
    if user.is_admin or audits_district(user):
        return query
    clauses = []
    if grids := grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER):
        clauses.append(Household.grid_id.in_(grids))
    if communities := community_ids(user):
        clauses.append(Household.grid_id.in_(select(Grid.id).where(Grid.community_id.in_(communities))))
    return query.where(or_(*clauses) if clauses else false())


def visible_cases(user: User, query: Select) -> Select:
    """Restrict a case query to what the user may read (as ``_can_read_case``).

    The scope is written as few conditions as possible: an OR of index conditions makes the
    database collect every matching case before it can sort and cut a page (seconds at 1M cases
    for a community auditor), while a single ``grid_id IN (...)`` walks the (grid, created) index.
    """
    if user.is_admin or audits_district(user):
        return query
    grids = grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER)
    communities = community_ids(user)
    clauses = []
    if grids and communities:
        clauses.append(Case.grid_id.in_(select(Grid.id).where(or_(Grid.id.in_(grids),
                                                                    Grid.community_id.in_(communities)))))
    elif grids:
        clauses.append(Case.grid_id.in_(grids))
    elif communities:
        clauses.append(Case.grid_id.in_(select(Grid.id).where(Grid.community_id.in_(communities))))
    if departments := department_ids(user):
        clauses.append(Case.department_id.in_(departments))
    return query.where(or_(*clauses) if clauses else false())


def pool_filter(user: User):
    """Return the SQL condition for open, unclaimed tasks in the user's lanes."""
    clauses = []
    for m in user.memberships:
        if m.role in (Role.GRID_MEMBER, Role.GRID_LEADER):
            clauses.append((Task.role == m.role) & (Task.grid_id == m.grid_id))
        elif m.role == Role.DEPARTMENT_HANDLER:
            clauses.append((Task.role == m.role) & (Task.department_id == m.department_id))
        elif m.role == Role.STREET_OFFICE:
            clauses.append((Task.role == m.role) & Task.grid_id.in_(
                select(Grid.id).where(Grid.community_id == m.community_id)))
    return or_(*clauses) if clauses else false()


__all__ = ["Permission", "PermissionDenied", "audits_district", "can", "department_ids", "grid_ids",
           "holds_role", "in_lane", "pool_filter", "require", "visible_cases", "visible_households"]
__all__ += ["HANDLING_KINDS", "handles_case", "may_attach"]
