"""Work waiting: the inbox, the API's task list, notifications, and a grid's workload board."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case as when, func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from ..deadlines import DueWindow
from ..models import (
    AuditEvent,
    Case,
    Cover,
    Department,
    Notification,
    ReplyTemplate,
    Role,
    Task,
    TaskStatus,
    User,
    Visit,
    VisitStatus,
)
from ..permissions import grid_ids, pool_filter
from .places import members_of


@dataclass(frozen=True)
class Inbox:
    """What waits for one person: their tasks, their lanes' pool, today's visits, missed visits to follow up."""

    mine: Sequence[Task]
    pool: Sequence[Task]
    visits: Sequence[Visit]
    # Missed visits in the grids the person leads.
    missed: Sequence[Visit]


def inbox(session: Session, user: User, now: dt.datetime, zone: ZoneInfo) -> Inbox:
    """Return ``user``'s inbox at ``now``; visits planned until the end of the local day (``zone``) show."""
    # contains_eager reuses the join the ordering needs; a separate joinedload would add an outer
    # join of (case, building, grid) that SQLite materializes by scanning every case.
    base = (select(Task).join(Task.case).join(Case.building)
            .options(contains_eager(Task.case).contains_eager(Case.building))
            .where(Task.status == TaskStatus.OPEN)
            .order_by(Case.green_channel.desc(), Task.due_at.is_(None), Task.due_at, Task.created_at))
    # Only tasks of lanes the user still holds a role in: someone who lost a role sees no work of it.
    mine = session.scalars(base.where(Task.assignee_id == user.id, pool_filter(user)).limit(200)).all()
    pool = session.scalars(base.where(Task.assignee_id.is_(None), pool_filter(user)).limit(200)).all()
    visits = session.scalars(select(Visit).where(Visit.member_id == user.id, Visit.status == VisitStatus.OPEN,
                                                 Visit.planned_at <= _end_of_day(now, zone))
                             .order_by(Visit.planned_at).limit(100)).all()
    leads = grid_ids(user, Role.GRID_LEADER)
    missed = session.scalars(select(Visit).where(Visit.grid_id.in_(leads), Visit.status == VisitStatus.OPEN,
                                                 Visit.missed_at.is_not(None))
                             .order_by(Visit.planned_at).limit(100)).all() if leads else []
    return Inbox(mine, pool, visits, missed)


def _end_of_day(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return the end of the local day of ``now`` in ``zone``."""
    today = now.astimezone(zone).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), zone)


def task_list(session: Session, user: User, scope: str, limit: int = 500) -> Sequence[Task]:
    """Return ``user``'s open tasks (scope "mine") or their lanes' unclaimed ones ("pool"), soonest due first."""
    query = select(Task).where(Task.status == TaskStatus.OPEN)
    query = query.where(Task.assignee_id == user.id, pool_filter(user)) if scope == "mine" else \
        query.where(Task.assignee_id.is_(None), pool_filter(user))
    return session.scalars(query.order_by(Task.due_at.is_(None), Task.due_at, Task.created_at).limit(limit)).all()


@dataclass(frozen=True)
class Workload:
    """A grid's board: per person open / due soon / overdue, the pool, and what waits for the leader."""

    people: list[User]
    counts: dict[int, Any]
    pool: int
    decisions: list[Task]

    def counts_of(self, user_id: int) -> dict[str, int]:
        """Return one person's numbers (zeros when they hold nothing)."""
        row = self.counts.get(user_id)
        return {"open": row.open, "due_soon": row.due_soon, "overdue": row.overdue} if row else \
            {"open": 0, "due_soon": 0, "overdue": 0}


def workload(session: Session, grid_id: int, window: DueWindow) -> Workload:
    """Count the grid's open tasks per person (the board, and the API's workload)."""
    open_in_grid = (Task.status == TaskStatus.OPEN, Task.grid_id == grid_id)
    counts = {row.assignee_id: row for row in session.execute(
        select(Task.assignee_id, func.count().label("open"),
               func.count(when((window.due_soon(Task.due_at), 1))).label("due_soon"),
               func.count(when((window.overdue(Task.due_at), 1))).label("overdue"))
        .where(*open_in_grid, Task.assignee_id.is_not(None)).group_by(Task.assignee_id))}
    people = members_of(session, grid_id) + members_of(session, grid_id, Role.GRID_LEADER)
    pool = session.scalar(select(func.count()).where(*open_in_grid, Task.assignee_id.is_(None),
                                                     Task.role.in_((Role.GRID_MEMBER, Role.GRID_LEADER))))
    decisions = session.scalars(select(Task).join(Task.case).where(*open_in_grid, Task.role == Role.GRID_LEADER)
                                .order_by(Task.created_at)).all()
    return Workload(people, counts, pool or 0, list(decisions))


def current_covers(session: Session, grid_id: int, today: dt.date) -> Sequence[Cover]:
    """Return the grid's stand-in covers not cancelled and not yet over on ``today``, soonest first."""
    return session.scalars(select(Cover).where(Cover.grid_id == grid_id, Cover.cancelled_at.is_(None),
                                               Cover.ends_on >= today)
                           .order_by(Cover.starts_on)).all()


def away_today(session: Session, grid_id: int, today: dt.date) -> dict[int, Cover]:
    """Return the grid's members away on ``today`` (a stand-in cover running), each with that cover."""
    covers = session.scalars(select(Cover).where(Cover.grid_id == grid_id, Cover.cancelled_at.is_(None),
                                                 Cover.starts_on <= today, Cover.ends_on >= today)
                             .order_by(Cover.starts_on)).all()
    return {c.member_id: c for c in reversed(covers)}


def notifications(session: Session, user: User, limit: int = 100) -> Sequence[Notification]:
    """Return ``user``'s newest notifications, unread first."""
    return session.scalars(
        select(Notification).options(selectinload(Notification.case))
        .where(Notification.user_id == user.id)
        .order_by(Notification.read_at.is_not(None), Notification.id.desc()).limit(limit)).all()


# -- dispatching and reviewing: who has how much work, what the chain says was decided -----------------

def open_counts(session: Session, user_ids: Sequence[int], now: dt.datetime) -> dict[int, tuple[int, int]]:
    """Return user id -> (open tasks, overdue ones) over every grid and lane, for the people given."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Task.assignee_id, func.count(), func.count(when((Task.due_at < now, 1))))
        .where(Task.status == TaskStatus.OPEN, Task.assignee_id.in_(list(user_ids))).group_by(Task.assignee_id))
    return {uid: (open_, overdue) for uid, open_, overdue in rows if uid is not None}


def department_counts(session: Session, now: dt.datetime) -> dict[int, tuple[int, int]]:
    """Return department id -> (open handling tasks, overdue ones): what each department has on hand."""
    rows = session.execute(
        select(Task.department_id, func.count(), func.count(when((Task.due_at < now, 1))))
        .where(Task.status == TaskStatus.OPEN, Task.role == Role.DEPARTMENT_HANDLER,
               Task.department_id.is_not(None)).group_by(Task.department_id))
    return {dept: (open_, overdue) for dept, open_, overdue in rows if dept is not None}


def department_by_code(session: Session, code: str | None) -> Department | None:
    """Return the department of a code, or None."""
    if not code:
        return None
    return session.scalar(select(Department).where(Department.code == code))


@dataclass(frozen=True)
class Note:
    """One decision's words from a case's chain: who, when, the text, and what it was (return, recall…)."""

    seq: int
    at: dt.datetime
    by: str
    kind: str
    text: str


@dataclass(frozen=True)
class CaseNotes:
    """What the people deciding on a case said, read from its audit chain (the one record of it)."""

    # The last dispatch note (派单意见) and whether it belongs to the current handling (no rework since).
    dispatch: Note | None
    # Returns (退单) and recalls (撤回), oldest first: the dispatch page shows why the case came back.
    returns: list[Note]
    # The reason of the last extension request, and of the last rework (退回重办).
    extension: Note | None
    rework: Note | None


def case_notes(session: Session, case_id: int) -> CaseNotes:
    """Read the dispatch notes, returns, recalls, extension reasons and reworks of a case from its chain."""
    actions = ("task.dispatch", "task.handle", "task.review_archive", "case.recalled")
    events = session.execute(select(AuditEvent.seq, AuditEvent.at, AuditEvent.actor_name, AuditEvent.action,
                                    AuditEvent.changes)
                             .where(AuditEvent.case_id == case_id, AuditEvent.action.in_(actions))
                             .order_by(AuditEvent.seq)).all()
    dispatch = extension = rework = None
    returns: list[Note] = []
    for seq, at, by, action, text in events:
        changes = json.loads(text)
        new = functools.partial(_new_value, changes)
        if action == "task.dispatch":
            dispatch, rework = Note(seq, at, by, "dispatch", new("form.dispatch_note") or ""), None
        elif action == "case.recalled":
            returns.append(Note(seq, at, by, "recall", new("reason") or ""))
        elif action == "task.handle" and new("form.handle_action") == "return":
            returns.append(Note(seq, at, by, "return", new("form.text") or ""))
        elif action == "task.handle" and new("form.handle_action") == "extend":
            extension = Note(seq, at, by, "extend", new("form.text") or "")
        elif action == "task.review_archive" and new("form.archive_decision") == "rework":
            rework = Note(seq, at, by, "rework", new("form.comment") or "")
    return CaseNotes(dispatch if dispatch and dispatch.text else None, returns, extension, rework)


def _new_value(changes: dict[str, Any], field: str) -> Any:
    """Return the value an audit event set a field to (None if it did not)."""
    return (changes.get(field) or [None, None])[1]


def reply_templates(session: Session, grid_ids: Sequence[int], category: str | None = None,
                    use: str | None = None) -> Sequence[ReplyTemplate]:
    """Return the reply templates (常用语) of the grids, for a category (and those for any), by use and title."""
    query = select(ReplyTemplate).where(ReplyTemplate.grid_id.in_(list(grid_ids)))
    if category is not None:
        query = query.where(ReplyTemplate.category.in_((category, "")))
    if use is not None:
        query = query.where(ReplyTemplate.use == use)
    return session.scalars(query.order_by(ReplyTemplate.grid_id, ReplyTemplate.use, ReplyTemplate.category,
                                          ReplyTemplate.title, ReplyTemplate.id)).all()


def came_back(session: Session, case_ids: Sequence[int]) -> dict[int, str]:
    """Return case id -> how each case last came back to dispatch: "return" (退单) or "recall" (撤回)."""
    if not case_ids:
        return {}
    rows = session.execute(select(AuditEvent.case_id, AuditEvent.action, AuditEvent.changes)
                           .where(AuditEvent.case_id.in_(list(case_ids)),
                                  AuditEvent.action.in_(("task.handle", "case.recalled")))
                           .order_by(AuditEvent.case_id, AuditEvent.seq))
    found: dict[int, str] = {}
    for case_id, action, text in rows:
        if action == "case.recalled":
            found[case_id] = "recall"
        elif _new_value(json.loads(text), "form.handle_action") == "return":
            found[case_id] = "return"
    return found
