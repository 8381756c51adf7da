"""People, grids and buildings to choose from; households with their visits and diary."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Building, Department, DiaryNote, Grid, Household, Membership, Role, User, Visit, VisitPlan
from ..permissions import grid_ids, visible_households


def members_of(session: Session, grid_id: int, role: Role = Role.GRID_MEMBER) -> list[User]:
    """Return the active people holding ``role`` in the grid, by name."""
    return list(session.scalars(select(User).join(Membership).where(
        Membership.role == role, Membership.grid_id == grid_id, User.active).order_by(User.display_name)).all())


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


def diary_notes(session: Session, household_id: int, limit: int = 200) -> Sequence[DiaryNote]:
    """Return a household's diary notes with their authors and cases, latest first."""
    return session.scalars(select(DiaryNote).options(selectinload(DiaryNote.author), selectinload(DiaryNote.case))
                           .where(DiaryNote.household_id == household_id)
                           .order_by(DiaryNote.written_on.desc(), DiaryNote.id.desc()).limit(limit)).all()
