"""A resident's cases by phone, the cases an intake may repeat, and the duplicates following a case."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from ..models import Case, CaseStatus, DuplicateLink, Household, IntakeKey, User
from ..permissions import visible_cases
from ..services.residents import PhoneQuery
from .cases import newest_first, phone_clause

#: The most cases a resident view lists (newest first); a desk resident has a handful.
RESIDENT_LIMIT = 200


def resident_cases(session: Session, user: User, query: PhoneQuery, limit: int = RESIDENT_LIMIT) -> Sequence[Case]:
    """Return the cases of the phone ``query`` that ``user`` may read, newest first."""
    return session.scalars(visible_cases(user, select(Case)).where(phone_clause(query))
                           .order_by(*newest_first()).limit(limit)).all()


def household_cases(session: Session, user: User, household: Household,
                    limit: int = RESIDENT_LIMIT) -> Sequence[Case]:
    """Return the cases of a household that ``user`` may read (its phone, or its building and room), newest first."""
    same_home = (Case.building_id == household.building_id) & (Case.address_detail == household.address_detail)
    where = or_(Case.resident_phone == household.phone, same_home) if household.phone else same_home
    return session.scalars(visible_cases(user, select(Case)).where(where)
                           .order_by(*newest_first()).limit(limit)).all()


def open_or_recent(session: Session, user: User, query: PhoneQuery, since: dt.datetime,
                   limit: int) -> Sequence[Case]:
    """Return the phone's cases ``user`` may read that are still open or were recorded since ``since``."""
    recent = or_(Case.status != CaseStatus.ARCHIVED, Case.created_at >= since)
    return session.scalars(visible_cases(user, select(Case)).where(phone_clause(query), recent)
                           .order_by(*newest_first()).limit(limit)).all()


def duplicate_candidates(session: Session, user: User, phone: str, building_id: int, category: str,
                         since: dt.datetime, limit: int) -> Sequence[Case]:
    """Return the cases an intake may repeat, that ``user`` may read: the same phone (open or recent), or
    the same building and category recorded since ``since`` (their text is compared by the caller)."""
    clauses = [(Case.building_id == building_id) & (Case.category == category) & (Case.created_at >= since)]
    if phone:
        clauses.append((Case.resident_phone == phone)
                       & or_(Case.status != CaseStatus.ARCHIVED, Case.created_at >= since))
    return session.scalars(visible_cases(user, select(Case)).where(or_(*clauses))
                           .order_by(*newest_first()).limit(limit)).all()


def duplicate_link(session: Session, case_id: int) -> DuplicateLink | None:
    """Return the link making a case a duplicate of another, or None."""
    return session.get(DuplicateLink, case_id)


def duplicates_of(session: Session, main_case_id: int) -> Sequence[DuplicateLink]:
    """Return the links of the cases following ``main_case_id``, oldest first."""
    return session.scalars(select(DuplicateLink).where(DuplicateLink.main_case_id == main_case_id)
                           .order_by(DuplicateLink.linked_at, DuplicateLink.case_id)).all()


def links_touching(session: Session, case_id: int) -> tuple[DuplicateLink | None, list[DuplicateLink]]:
    """Return, in one query, the link making a case a duplicate (or None) and the links of its duplicates."""
    rows = session.scalars(select(DuplicateLink).where(or_(DuplicateLink.case_id == case_id,
                                                           DuplicateLink.main_case_id == case_id))
                           .options(joinedload(DuplicateLink.case), joinedload(DuplicateLink.main_case))
                           .order_by(DuplicateLink.linked_at, DuplicateLink.case_id)).unique().all()
    return (next((r for r in rows if r.case_id == case_id), None), [r for r in rows if r.main_case_id == case_id])


def waiting_duplicates_among(session: Session, case_ids: list[int]) -> set[int]:
    """Return which of these cases follow a main case and still wait for its result."""
    return set(session.scalars(select(DuplicateLink.case_id).where(DuplicateLink.case_id.in_(case_ids),
                                                                   DuplicateLink.released_at.is_(None))))


def case_by_number(session: Session, user: User, number: str) -> Case | None:
    """Return the case with this number (or id) that ``user`` may read, or None."""
    number = number.strip()
    where = Case.number == number
    if number.isascii() and number.isdigit() and len(number) < 10:
        where = or_(where, Case.id == int(number))
    return session.scalars(visible_cases(user, select(Case)).where(where).limit(1)).first()


def intake_key(session: Session, user_id: int, key: str) -> IntakeKey | None:
    """Return the intake sent with ``key`` by this account, or None."""
    return session.scalar(select(IntakeKey).where(IntakeKey.user_id == user_id, IntakeKey.key == key))


__all__ = ["RESIDENT_LIMIT", "case_by_number", "duplicate_candidates", "duplicate_link", "duplicates_of",
           "household_cases", "intake_key", "links_touching", "open_or_recent", "resident_cases",
           "waiting_duplicates_among"]
