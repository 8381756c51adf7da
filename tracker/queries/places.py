"""People, grids and buildings to choose from; households with their visits and diary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..deadlines import DueWindow
from ..models import (
    Attachment,
    Building,
    Case,
    CaseStatus,
    Community,
    Department,
    DeskEntry,
    DeskSession,
    DiaryNote,
    Grid,
    Household,
    Membership,
    Role,
    User,
    Visit,
    VisitPlan,
)
from ..open311 import distance_metres
from ..permissions import grid_ids, visible_cases, visible_households


def members_of(session: Session, grid_id: int, role: Role = Role.GRID_MEMBER) -> list[User]:
    """Return the active people holding ``role`` in the grid, by name (program accounts are no people)."""
    return list(session.scalars(select(User).join(Membership).where(
        Membership.role == role, Membership.grid_id == grid_id, User.active, User.is_program.is_(False))
        .order_by(User.display_name)).all())


def departments(session: Session) -> Sequence[Department]:
    """Return every department, by name."""
    return session.scalars(select(Department).order_by(Department.name)).all()


def led_grids(session: Session, user: User) -> Sequence[Grid]:
    """Return the grids ``user`` leads, by code."""
    return session.scalars(select(Grid).where(Grid.id.in_(grid_ids(user, Role.GRID_LEADER)))
                           .order_by(Grid.code)).all()


def all_grid_ids(session: Session) -> list[int]:
    """Return the id of every grid, by code."""
    return list(session.scalars(select(Grid.id).order_by(Grid.code)))


def recordable_buildings(session: Session, user: User) -> Sequence[Building]:
    """Return the buildings where ``user`` may record cases (their member and leader grids), by grid and name."""
    grids = grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER)
    return session.scalars(select(Building).join(Building.grid).where(Building.grid_id.in_(grids))
                           .order_by(Grid.code, Building.name)).all()


def household_buildings(session: Session, user: User) -> Sequence[Building]:
    """Return the buildings where ``user`` may register households (grids they lead; every one for admins)."""
    query = select(Building).order_by(Building.name)
    if not user.is_admin:
        query = query.where(Building.grid_id.in_(grid_ids(user, Role.GRID_LEADER)))
    return session.scalars(query).all()


# -- households and their visits -----------------------------------------------------------------

def households(session: Session, user: User, limit: int = 500) -> Sequence[Household]:
    """Return the households ``user`` may read with their visit plans, by grid."""
    return session.scalars(visible_households(user, select(Household))
                           .options(selectinload(Household.plans).selectinload(VisitPlan.member))
                           .order_by(Household.grid_id, Household.id).limit(limit)).all()


def visit_history(session: Session, household_id: int, limit: int = 100) -> Sequence[Visit]:
    """Return a household's visits, latest first."""
    return session.scalars(select(Visit).where(Visit.household_id == household_id)
                           .order_by(Visit.scheduled_for.desc()).limit(limit)).all()


def visit_photos(session: Session, visit_id: int) -> Sequence[Attachment]:
    """Return a visit's photos, oldest first."""
    return session.scalars(select(Attachment).where(Attachment.visit_id == visit_id).order_by(Attachment.id)).all()


def diary_notes(session: Session, household_id: int, limit: int = 200) -> Sequence[DiaryNote]:
    """Return a household's diary notes with their authors and cases, latest first."""
    return session.scalars(select(DiaryNote).options(selectinload(DiaryNote.author), selectinload(DiaryNote.case))
                           .where(DiaryNote.household_id == household_id)
                           .order_by(DiaryNote.written_on.desc(), DiaryNote.id.desc()).limit(limit)).all()


# -- the public grid notice and the grid map -----------------------------------------------------

def communities(session: Session) -> Sequence[Community]:
    """Return every community, by name."""
    return session.scalars(select(Community).order_by(Community.name)).all()


def community_grids(session: Session, community_id: int) -> Sequence[Grid]:
    """Return a community's grids with their buildings, by code."""
    return session.scalars(select(Grid).options(selectinload(Grid.buildings)).where(Grid.community_id == community_id)
                           .order_by(Grid.code)).all()


def grid_staff(session: Session, grid_ids_: Iterable[int]) -> dict[int, list[tuple[Role, User]]]:
    """Return each grid's active leaders and members (people: no program account): grid id -> [(role, user)],
    leaders first, then by name."""
    rows = session.execute(select(Membership.grid_id, Membership.role, User).join(User, Membership.user_id == User.id)
                           .where(Membership.grid_id.in_(list(grid_ids_)), User.active, User.is_program.is_(False),
                                  Membership.role.in_((Role.GRID_LEADER, Role.GRID_MEMBER)))
                           .order_by(Membership.grid_id, Membership.role, User.display_name)).all()
    staff: dict[int, list[tuple[Role, User]]] = {}
    for grid_id, role, user in rows:
        if grid_id is not None:
            staff.setdefault(grid_id, []).append((role, user))
    return staff


def building_case_counts(session: Session, user: User, community_id: int, category: str,
                         window: DueWindow) -> dict[int, tuple[int, int]]:
    """Return building id -> (open cases, overdue cases) of a community, among the cases ``user`` may read.

    Open: not archived. Overdue: handling (or its extension review) past its limit, as the case list's filter.
    """
    running = Case.status.in_((CaseStatus.HANDLING, CaseStatus.EXTENSION_REVIEW))
    overdue = func.sum(case((running & window.overdue(Case.due_at), 1), else_=0))
    query = visible_cases(user, select(Case.building_id, func.count(Case.id), overdue)
                          .where(Case.status != CaseStatus.ARCHIVED,
                                 Case.grid_id.in_(select(Grid.id).where(Grid.community_id == community_id)))
                          .group_by(Case.building_id))
    if category:
        query = query.where(Case.category == category)
    return {building: (opened, int(late or 0)) for building, opened, late in session.execute(query).all()}


def building_cases(session: Session, user: User, building_id: int, category: str, open_only: bool,
                   limit: int = 200) -> Sequence[Case]:
    """Return a building's cases ``user`` may read, newest first (open ones only when ``open_only``)."""
    query = visible_cases(user, select(Case).where(Case.building_id == building_id))
    if category:
        query = query.where(Case.category == category)
    if open_only:
        query = query.where(Case.status != CaseStatus.ARCHIVED)
    return session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)).all()


def nearest_recordable_building(session: Session, user: User, lat: float, lon: float,
                                within_metres: float) -> tuple[Building, float] | None:
    """Return the building nearest to (lat, lon) where ``user`` may record cases, and its distance, if one
    is within ``within_metres``."""
    ranked = sorted((distance_metres(lat, lon, b.latitude, b.longitude), b.id, b)
                    for b in recordable_buildings(session, user)
                    if b.latitude is not None and b.longitude is not None)
    if not ranked or ranked[0][0] > within_metres:
        return None
    return ranked[0][2], ranked[0][0]


def case_by_number(session: Session, number: str) -> Case | None:
    """Return the case with this number, or None."""
    return session.scalar(select(Case).where(Case.number == number))


# -- mobile desk sessions ------------------------------------------------------------------------

def desk_sessions(session: Session, grid_ids_: Iterable[int], since: dt.date | None = None,
                  limit: int = 300) -> Sequence[DeskSession]:
    """Return the desk sessions of some grids (from ``since`` on), by day and start time."""
    query = select(DeskSession).where(DeskSession.grid_id.in_(list(grid_ids_)))
    if since is not None:
        query = query.where(DeskSession.held_on >= since)
    return session.scalars(query.order_by(DeskSession.held_on, DeskSession.starts_at, DeskSession.id)
                           .limit(limit)).all()


def desk_entries(session: Session, session_id: int) -> Sequence[DeskEntry]:
    """Return the requests recorded at a desk session with their cases, in the order they were taken."""
    return session.scalars(select(DeskEntry).options(joinedload(DeskEntry.case))
                           .where(DeskEntry.session_id == session_id).order_by(DeskEntry.id)).all()


def buildings_by_id(session: Session, ids: Iterable[int]) -> dict[int, Building]:
    """Return the buildings of some ids, by id."""
    wanted = list(ids)
    return {b.id: b for b in session.scalars(select(Building).where(Building.id.in_(wanted)))} if wanted else {}


def users_by_id(session: Session, ids: Iterable[int]) -> dict[int, User]:
    """Return the users of some ids, by id."""
    wanted = list(ids)
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}


def grids_by_id(session: Session, ids: Iterable[int]) -> dict[int, Grid]:
    """Return the grids of some ids, by id."""
    wanted = list(ids)
    return {g.id: g for g in session.scalars(select(Grid).where(Grid.id.in_(wanted)))} if wanted else {}


def desk_counts(session: Session, session_ids: Iterable[int],
                resolved: Iterable[CaseStatus]) -> dict[int, tuple[int, int, int]]:
    """Return desk session id -> (requests taken, answered on the spot, sent on and since resolved)."""
    wanted = list(session_ids)
    if not wanted:
        return {}
    on_spot = func.sum(case((DeskEntry.answered_on_spot, 1), else_=0))
    done = func.sum(case((~DeskEntry.answered_on_spot & Case.status.in_(list(resolved)), 1), else_=0))
    rows = session.execute(select(DeskEntry.session_id, func.count(DeskEntry.id), on_spot, done)
                           .join(Case, Case.id == DeskEntry.case_id).where(DeskEntry.session_id.in_(wanted))
                           .group_by(DeskEntry.session_id)).all()
    return {sid: (int(taken), int(spot or 0), int(fixed or 0)) for sid, taken, spot, fixed in rows}
