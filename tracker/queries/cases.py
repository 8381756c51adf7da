"""The case list (the page, its exports, the API's feed), its grid filter, and one case's audit trail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from .. import labels
from ..deadlines import DueWindow
from ..models import AuditEvent, Building, Case, CaseStatus, Department, Grid, Role, Task, TaskStatus, User
from ..permissions import audits_district, community_ids, department_ids, grid_ids, pool_filter, visible_cases
from ..services.residents import PhoneQuery, phone_query
from . import stats

#: The case list's filters (the page, its exports and the API's list take the same).
CASE_FILTERS = ("status", "grid", "category", "channel", "date_from", "date_to", "q", "deadline", "department",
                "handler", "fig", "outcome")
#: The case list counts matching cases up to this many and shows "10,000+" beyond.
COUNT_CAP = 10_000


def newest_first() -> tuple:
    """The case list's order: newest first, the id breaking ties (a stable page and keyset cursor)."""
    return Case.created_at.desc(), Case.id.desc()


# -- the case list -------------------------------------------------------------------------------

def case_filters(args: Mapping[str, str]) -> dict[str, str]:
    """Read the list filters from query arguments (NUL characters dropped: no database stores them)."""
    return {k: args.get(k, "").replace("\x00", "").strip() for k in CASE_FILTERS}


def parse_date(value: str, zone: ZoneInfo) -> dt.datetime | None:
    """Parse YYYY-MM-DD into that day's local midnight in ``zone`` (the day the screens show), or None
    (also for dates a day can't be added to)."""
    try:
        day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=zone)
    except ValueError:
        return None
    return day if day.year < 9999 else None


def day_after(day: dt.datetime) -> dt.datetime:
    """Return the local midnight after ``day`` (a local midnight; wall-clock arithmetic, so DST-safe)."""
    return (day + dt.timedelta(days=1)).replace(tzinfo=day.tzinfo)


def _grid_filter(value: str) -> int | None:
    """Return the grid id a filter names, or None (ASCII digits of a sane size only: '²' is a digit too)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def filtered_cases(user: User, f: Mapping[str, str], window: DueWindow, zone: ZoneInfo) -> Select:
    """Return the query for the cases ``user`` may read, narrowed by the list filters ``f`` (dates are
    local days in ``zone``)."""
    query = visible_cases(user, select(Case))
    if f["status"]:
        query = query.where(Case.status == f["status"])
    if (grid := _grid_filter(f["grid"])) is not None:
        query = query.where(Case.grid_id == grid)
    if f["category"]:
        query = query.where(Case.category == f["category"])
    if f["channel"]:
        query = query.where(Case.channel == f["channel"])
    if start := parse_date(f["date_from"], zone):
        query = query.where(Case.created_at >= start)
    if end := parse_date(f["date_to"], zone):
        query = query.where(Case.created_at < day_after(end))
    if f["deadline"] in labels.DEADLINE_FILTERS and f["deadline"]:
        query = _deadline_filter(query, user, f["deadline"], window)
    # The numbers' drill-down: the cases behind one figure (queries.stats), a department's or a handler's.
    query = stats.filter_condition(f, window.now)(query)
    if f["q"]:
        like = f"%{f['q']}%"
        text = Case.number.like(like) | Case.resident_name.like(like) | Case.description.like(like)
        # Staff by username or name alike: the cases they handle or recorded.
        people = select(User.id).where(User.username.like(like) | User.display_name.like(like))
        text = text | Case.handler_id.in_(people) | Case.created_by_id.in_(people)
        # A phone in any written form (139 1234 5678, +86…, 010-…) or a few of its digits: as stored (E.164).
        phone = text_phone_clause(f["q"])
        query = query.where(text | phone if phone is not None else text)
    return query


def phone_clause(query: PhoneQuery) -> ColumnElement[bool]:
    """Return the condition matching a phone search: the whole number exactly (indexed), else the digits."""
    if query.exact is not None:
        return Case.resident_phone == query.exact
    return Case.resident_phone.like(query.pattern)


def text_phone_clause(text: str) -> ColumnElement[bool] | None:
    """Return the phone condition a free-text search stands for, or None when the text is no phone."""
    query = phone_query(text)
    return phone_clause(query) if query is not None else None


def _deadline_filter(query: Select, user: User, which: str, window: DueWindow) -> Select:
    """Restrict to overdue cases, cases due soon, or overdue tasks ``user`` must act on."""
    running = Case.status.in_((CaseStatus.HANDLING, CaseStatus.EXTENSION_REVIEW))
    if which == "overdue":
        return query.where(running, window.overdue(Case.due_at))
    if which == "due_soon":
        return query.where(running, window.due_soon(Case.due_at))
    mine = select(Task.case_id).where(
        Task.status == TaskStatus.OPEN, window.overdue(Task.due_at),
        or_(Task.assignee_id == user.id, Task.assignee_id.is_(None) & pool_filter(user)))
    return query.where(Case.id.in_(mine))


@dataclass(frozen=True)
class CasePage:
    """One page of the case list."""

    cases: list[Case]
    has_next: bool
    # Matching cases, counted up to COUNT_CAP + 1 (more than COUNT_CAP: show "10,000+").
    counted: int


def case_list(session: Session, user: User, f: Mapping[str, str], window: DueWindow, page: int,
              size: int, zone: ZoneInfo) -> CasePage:
    """Return page ``page`` (from 1) of the cases ``user`` may read, filtered, newest first."""
    query = filtered_cases(user, f, window, zone)
    # Find the page's ids first (index-only), then load those rows: sorting wide rows is what costs.
    ids = session.scalars(query.with_only_columns(Case.id).order_by(*newest_first()).offset((page - 1) * size)
                          .limit(size + 1)).all()
    rows = _cases_by_id(session, ids)
    # Counting millions of rows on every page view is the slowest part of a list; stop at a cap.
    counted = query.with_only_columns(Case.id).limit(COUNT_CAP + 1)  # index-only where possible
    total = session.scalar(select(func.count()).select_from(counted.subquery()))
    return CasePage(list(rows[:size]), len(rows) > size, total)


def case_feed(session: Session, user: User, f: Mapping[str, str], window: DueWindow,
              after: tuple[dt.datetime, int] | None, size: int, zone: ZoneInfo) -> tuple[list[Case], bool]:
    """Return up to ``size`` filtered cases older than the cursor ``after`` (created, id), and whether more follow."""
    query = filtered_cases(user, f, window, zone)
    if after is not None:
        created, case_id = after
        query = query.where(or_(Case.created_at < created, and_(Case.created_at == created, Case.id < case_id)))
    # The page's ids first (index-only), then their rows: as the case list.
    ids = session.scalars(query.with_only_columns(Case.id).order_by(*newest_first()).limit(size + 1)).all()
    rows = _cases_by_id(session, ids)
    return list(rows[:size]), len(rows) > size


def _cases_by_id(session: Session, ids: Sequence[int]) -> Sequence[Case]:
    """Load the cases with these ids, newest first."""
    return session.scalars(select(Case).where(Case.id.in_(ids)).order_by(*newest_first())).all() if ids else []


def export_batches(session: Session, user: User, f: Mapping[str, str], window: DueWindow,
                   batch: int, zone: ZoneInfo) -> Iterator[Sequence[Case]]:
    """Run the filtered case list lazily, newest first, and yield its cases ``batch`` at a time."""
    query = (filtered_cases(user, f, window, zone).order_by(*newest_first())
             .options(joinedload(Case.handler), joinedload(Case.department))
             .execution_options(yield_per=batch))
    yield from session.scalars(query).partitions()


def visible_grids(user: User) -> Select:
    """Return a query for the grids ``user`` may filter the case list by (from roles, not from cases)."""
    query = select(Grid).order_by(Grid.code)
    if user.is_admin or audits_district(user):
        return query
    clauses = [Grid.id.in_(grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER))]
    if communities := community_ids(user):
        clauses.append(Grid.community_id.in_(communities))
    if departments := department_ids(user):
        clauses.append(Grid.id.in_(select(Case.grid_id).where(Case.department_id.in_(departments)).distinct()))
    return query.where(or_(*clauses))


def grid_options(session: Session, user: User) -> Sequence[Row]:
    """Return (id, code, name) of the grids ``user`` may filter by: plain rows, no ORM objects (hundreds
    for a district auditor)."""
    return session.execute(visible_grids(user).with_only_columns(Grid.id, Grid.code, Grid.name)).all()


# -- one case's trail ----------------------------------------------------------------------------

def case_events(session: Session, case_id: int) -> Sequence[AuditEvent]:
    """Return every audit event of a case, in order."""
    return session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)).all()


def referenced_names(session: Session, timeline: Iterable[tuple[Any, Mapping[str, Any]]]) -> dict[str, dict[int, str]]:
    """Look up the people, grids, departments and buildings that audit changes refer to by id."""
    ids: dict[str, set[int]] = {"handler_id": set(), "department_id": set(), "building_id": set(), "grid_id": set(),
                                "created_by_id": set()}
    for _event, changes in timeline:
        for field, pair in changes.items():
            if field in ids:
                ids[field].update(v for v in pair if isinstance(v, int))
    people = dict(session.execute(select(User.id, User.display_name)
                                  .where(User.id.in_(ids["handler_id"] | ids["created_by_id"]))).all())
    return {
        "handler_id": people, "created_by_id": people,
        "grid_id": dict(session.execute(select(Grid.id, Grid.name).where(Grid.id.in_(ids["grid_id"]))).all()),
        "department_id": dict(session.execute(select(Department.id, Department.name)
                                              .where(Department.id.in_(ids["department_id"]))).all()),
        "building_id": dict(session.execute(select(Building.id, Building.name)
                                            .where(Building.id.in_(ids["building_id"]))).all()),
    }
