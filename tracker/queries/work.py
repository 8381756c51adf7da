"""Work waiting: the inbox, the API's task list, notifications, and a grid's workload board."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case as when, func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from ..deadlines import DueWindow
from ..models import Case, Cover, Notification, Role, Task, TaskStatus, User, Visit, VisitStatus
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
