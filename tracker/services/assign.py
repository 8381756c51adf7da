"""Leaders move work: reassign, release to the pool, hand a member's whole portfolio over, stand-in cover."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from ..errors import N_, ConflictError, InvalidInput, NotFound
from ..models import Case, Cover, Grid, Membership, Role, Task, TaskStatus, User, utcnow
from ..permissions import Permission, holds_role, require
from . import Services, notices
from .audit import record_event
from .commands import AddCover, HandOverTasks, ReassignTask
from .locks import check_fresh, flush, lock_task
from .memo import memo


def reassign(svc: Services, actor: User, task_id: str, command: ReassignTask) -> Task:
    """Give an open task to a named person of its lane, with a reason (the leader's decision)."""
    task = lock_task(svc, task_id)
    require(actor, Permission.TASK_READ, task)
    check_fresh(task.case, task, command.version)
    require(actor, Permission.TASK_REASSIGN, task)
    reason = command.reason
    target = _target(svc.session, task, command.assignee_id)
    if target.id == task.assignee_id:
        raise InvalidInput(N_("The task is already with %(who)s; choose someone else."), field="assignee_id",
                           who=target.display_name)
    _move(svc, actor, task, target, "task.reassigned", reason)
    task.case.version += 1
    notices.notify(svc.session, [target.id], "assigned", case=task.case, number=task.case.number,
                   task=task.title, by=actor.display_name, reason=reason)
    flush(svc.session)
    return task


def release(svc: Services, actor: User, task_id: str, expected_version: int) -> Task:
    """Put a claimed task back in its pool (unclaim): its holder or a leader of its grid may."""
    task = lock_task(svc, task_id)
    require(actor, Permission.TASK_READ, task)
    check_fresh(task.case, task, expected_version)
    if task.assignee_id is None:
        raise ConflictError(N_("This task is already in the pool; reload the page."))
    require(actor, Permission.TASK_RELEASE, task)
    case = task.case
    changes = {"assignee": (task.assignee.display_name, None)}
    if task.form_key == "handle" and case.handler_id == task.assignee_id:
        changes["handler_id"] = (case.handler_id, None)
        case.handler_id, case.handler = None, None
    task.assignee_id = None
    case.version += 1
    case.updated_at = utcnow()
    record_event(svc.session, case, actor, "task.released", changes, task_name=task.name)
    flush(svc.session)
    return task


def _target(session: Session, task: Task, user_id: int) -> User:
    """Return the person a task may go to: active, holding the task's lane role in its grid."""
    user = session.get(User, user_id or 0)
    if user is None or not user.active or user.is_program or not holds_role(user, task.role, grid_id=task.grid_id):
        raise InvalidInput(N_("Choose a person who works in this task's lane in grid %(grid)s."),
                           field="assignee_id", grid=task.case.grid.code)
    return user


def _move(svc: Services, actor: User, task: Task, target: User, action: str, reason: str) -> None:
    """Point the task (and a member's handling case) at ``target`` and record it on the case's chain."""
    case = task.case
    changes = {"assignee": (task.assignee.display_name if task.assignee else None, target.display_name),
               "reason": (None, reason)}
    if task.form_key == "handle" and task.role == Role.GRID_MEMBER:
        changes["handler_id"] = (case.handler_id, target.id)
        case.handler_id, case.handler = target.id, target
    task.assignee_id = target.id
    task.assignee = target
    case.updated_at = utcnow()
    record_event(svc.session, case, actor, action, changes, task_name=task.name)


# -- bulk handover -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Handover:
    """A planned handover: which task goes to whom, and a fingerprint of the task set."""

    grid: Grid
    member: User
    moves: list[tuple[Task, User]]
    fingerprint: str


def plan_handover(svc: Services, actor: User, grid_id: int, command: HandOverTasks) -> Handover:
    """Plan handing every open task of the command's member in the grid to its receivers (the preview)."""
    member_id, to_ids, mode = command.member_id, command.to_ids, command.mode
    grid = svc.session.get(Grid, grid_id)
    if grid is None:
        raise NotFound(N_("Grid not found."))
    require(actor, Permission.GRID_MANAGE, grid)
    member = svc.session.get(User, member_id or 0)
    if member is None or not holds_role(member, Role.GRID_MEMBER, grid_id=grid.id):
        raise InvalidInput(N_("Choose the member whose tasks are handed over."), field="member_id")
    targets = [svc.session.get(User, i) for i in dict.fromkeys(to_ids)]
    if not targets or any(t is None or not t.active or t.id == member.id or t.is_program
                          or not holds_role(t, Role.GRID_MEMBER, grid_id=grid.id) for t in targets):
        raise InvalidInput(N_("Choose one or more other members of grid %(grid)s to take the tasks."),
                           field="to_ids", grid=grid.code)
    tasks = svc.session.scalars(
        select(Task).join(Task.case).where(Task.status == TaskStatus.OPEN, Task.assignee_id == member.id,
                                           Task.grid_id == grid.id, Task.role == Role.GRID_MEMBER)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.created_at, Task.id)).all()
    moves = _share(svc.session, tasks, targets, mode)
    # The fingerprint covers every move (task and receiver): confirming anything but the preview is refused.
    digest = hashlib.sha256(",".join(sorted(f"{t.id}>{u.id}" for t, u in moves)).encode()).hexdigest()[:16]
    return Handover(grid, member, moves, digest)


def _share(session: Session, tasks: Sequence[Task], targets: list[User], mode: str) -> list[tuple[Task, User]]:
    """Deal the tasks out: round-robin, or each to the target with the fewest open tasks so far."""
    if mode == "even":
        return [(task, targets[i % len(targets)]) for i, task in enumerate(tasks)]
    load = dict(session.execute(select(Task.assignee_id, func.count()).where(
        Task.status == TaskStatus.OPEN, Task.assignee_id.in_([t.id for t in targets]))
        .group_by(Task.assignee_id)).all())
    moves = []
    for task in tasks:
        target = min(targets, key=lambda t: (load.get(t.id, 0), t.id))
        load[target.id] = load.get(target.id, 0) + 1
        moves.append((task, target))
    return moves


def hand_over(svc: Services, actor: User, grid_id: int, command: HandOverTasks) -> Handover:
    """Carry out a previewed handover in the caller's one transaction: every task moves, or none.

    Every affected case is locked (in id order, so two handovers cannot deadlock), each task gets
    its own audit event on its case's chain, and each receiver one notification.
    """
    reason, member_id = command.reason, command.member_id
    grid = svc.session.get(Grid, grid_id)
    if grid is None:
        raise NotFound(N_("Grid not found."))
    require(actor, Permission.GRID_MANAGE, grid)  # before taking any lock
    case_ids = svc.session.scalars(
        select(Task.case_id).where(Task.status == TaskStatus.OPEN, Task.assignee_id == member_id,
                                   Task.grid_id == grid_id).distinct()).all()
    if case_ids:
        svc.session.scalars(select(Case.id).where(Case.id.in_(case_ids)).order_by(Case.id)
                            .with_for_update(of=Case)).all()
    svc.session.expire_all()
    plan = plan_handover(svc, actor, grid_id, command)
    if plan.fingerprint != command.fingerprint:
        raise ConflictError(N_("The handover differs from the preview (%(who)s's tasks or who takes them changed); "
                               "review it again."), who=plan.member.display_name)
    if not plan.moves:
        raise InvalidInput(N_("%(who)s has no open tasks to hand over."), who=plan.member.display_name)
    received: dict[int, int] = {}
    for task, target in plan.moves:
        _move(svc, actor, task, target, "task.handed_over", reason)
        task.case.version += 1
        received[target.id] = received.get(target.id, 0) + 1
    for target_id, count in received.items():
        notices.notify(svc.session, [target_id], "handed_over", count=count, member=plan.member.display_name,
                       by=actor.display_name, reason=reason)
    flush(svc.session)
    return plan


# -- stand-in cover (代班) ------------------------------------------------------------------------

def _refuse_circle(session: Session, grid_id: int, member: User, stand_in: User, starts_on: dt.date,
                   ends_on: dt.date) -> None:
    """Refuse a cover whose stand-in is away at the same time with work going, stand-in by stand-in, back
    to ``member``: new work would go round in a circle (A for B while B is covered by A)."""
    seen, taker = {member.id}, stand_in.id
    while taker not in seen:
        seen.add(taker)
        taker = session.scalar(select(Cover.stand_in_id).where(
            Cover.grid_id == grid_id, Cover.member_id == taker, Cover.cancelled_at.is_(None),
            Cover.starts_on <= ends_on, Cover.ends_on >= starts_on).order_by(Cover.starts_on).limit(1))
        if taker is None:
            return
    raise InvalidInput(N_("%(who)s is away then too, and their work would come back to %(member)s: choose a "
                          "stand-in who is at work."), field="stand_in_id", who=stand_in.display_name,
                       member=member.display_name)


def add_cover(svc: Services, actor: User, grid_id: int, command: AddCover) -> Cover:
    """Arrange that new work for the command's member in the grid goes to its stand-in between two dates."""
    starts_on, ends_on = command.starts_on, command.ends_on
    grid = svc.session.get(Grid, grid_id)
    if grid is None:
        raise NotFound(N_("Grid not found."))
    require(actor, Permission.GRID_MANAGE, grid)
    member, stand_in = svc.session.get(User, command.member_id), svc.session.get(User, command.stand_in_id)
    if member is None or member.is_program or not holds_role(member, Role.GRID_MEMBER, grid_id=grid.id):
        raise InvalidInput(N_("Choose the member who is away."), field="member_id")
    if stand_in is None or stand_in.id == member.id or not stand_in.active or stand_in.is_program \
            or not holds_role(stand_in, Role.GRID_MEMBER, grid_id=grid.id):
        raise InvalidInput(N_("Choose another member of grid %(grid)s to stand in."), field="stand_in_id",
                           grid=grid.code)
    if ends_on < local_today(svc):
        raise InvalidInput(N_("The cover is already over; choose dates from today on."), field="ends_on")
    _refuse_circle(svc.session, grid.id, member, stand_in, starts_on, ends_on)
    overlap = svc.session.scalar(select(Cover.id).where(
        Cover.grid_id == grid.id, Cover.member_id == member.id, Cover.cancelled_at.is_(None),
        Cover.starts_on <= ends_on, Cover.ends_on >= starts_on))
    if overlap is not None:
        raise InvalidInput(N_("%(who)s already has a stand-in for some of these days; end that cover first."),
                           field="starts_on", who=member.display_name)
    cover = Cover(grid_id=grid.id, member_id=member.id, stand_in_id=stand_in.id, starts_on=starts_on,
                  ends_on=ends_on, reason=command.reason, created_by_id=actor.id, created_at=utcnow())
    svc.session.add(cover)
    svc.session.flush()
    memo(svc.session).pop("takers", None)  # who takes whose work changed
    return cover


def end_cover(svc: Services, actor: User, cover_id: int) -> Cover:
    """End a stand-in cover now; new work goes to the member again."""
    cover = svc.session.get(Cover, cover_id)
    if cover is None:
        raise NotFound(N_("Stand-in cover not found."))
    require(actor, Permission.GRID_MANAGE, cover.grid)
    if cover.cancelled_at is None:
        cover.cancelled_at = utcnow()
    svc.session.flush()
    memo(svc.session).pop("takers", None)  # who takes whose work changed
    return cover


def stand_in(session: Session, member_id: int, grid_id: int, day: dt.date) -> int:
    """Return who takes new work for ``member`` in the grid on ``day``: the stand-in, or the member."""
    return member_and_taker(session, member_id, grid_id, day)[1]


def member_and_taker(session: Session, member_id: int, grid_id: int, day: dt.date) -> tuple[User | None, int]:
    """Return the user ``member_id`` (None if there is none), roles loaded, and who takes new work for them
    in the grid on ``day`` (``stand_in``), with one query; asked again in the same transaction, with none.

    Dispatching asks it of the chosen handler, then projecting the handling task asks who takes it.
    """
    known = memo(session).setdefault("takers", {})
    key = (member_id, grid_id, day)
    if key not in known:
        row = session.execute(_MEMBER_AND_STAND_IN, {"member_id": member_id, "grid_id": grid_id, "day": day}
                              ).unique().first()
        # A stand-in who left the grid or was disabled since takes nothing: the work stays with the member.
        known[key] = (row[0], row[1] or member_id) if row is not None else (None, member_id)
    return known[key]


#: The stand-in of ``member_id`` in ``grid_id`` on ``day``: active, and still a member of the grid.
_STAND_IN = (select(Cover.stand_in_id).join(User, User.id == Cover.stand_in_id).join(
    Membership, (Membership.user_id == User.id) & (Membership.role == Role.GRID_MEMBER)
    & (Membership.grid_id == Cover.grid_id)).where(
    Cover.member_id == bindparam("member_id"), Cover.grid_id == bindparam("grid_id"), Cover.cancelled_at.is_(None),
    Cover.starts_on <= bindparam("day"), Cover.ends_on >= bindparam("day"), User.active).limit(1))
#: The member with their memberships, and their stand-in (built once: building costs more than running).
_MEMBER_AND_STAND_IN = (select(User, _STAND_IN.scalar_subquery()).where(User.id == bindparam("member_id"))
                        .options(joinedload(User.memberships)))


def local_today(svc: Services) -> dt.date:
    """Return today's date where the street office is."""
    return utcnow().astimezone(ZoneInfo(svc.config["app"].get("timezone", "Asia/Shanghai"))).date()


__all__ = ["Handover", "add_cover", "end_cover", "hand_over", "local_today", "member_and_taker", "plan_handover",
           "reassign", "release", "stand_in"]
