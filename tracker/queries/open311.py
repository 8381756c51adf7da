"""Open311's GET requests: the public sees what was filed through Open311 apps, a token's user their scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..models import Case, CaseStatus, Grid, User
from ..permissions import visible_cases
from ..services.cases import Door
from .cases import newest_first


@dataclass(frozen=True)
class RequestFilters:
    """The checked filters of Open311's GET requests: numbers (which override the rest), else the others."""

    numbers: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    # "open", "closed", both, or neither (both).
    statuses: frozenset[str] = frozenset()
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def open311_requests(session: Session, reader: User | None, f: RequestFilters, limit: int) -> Sequence[Case]:
    """Return the requests ``reader`` may see (None: the public) matching ``f``, newest first."""
    query = _open311_scope(reader, select(Case).options(selectinload(Case.department),
                                                        joinedload(Case.grid).joinedload(Grid.community)))
    if f.numbers:  # the specification: service_request_id overrides every other filter
        query = query.where(Case.number.in_(f.numbers))
    else:
        query = query.where(Case.created_at >= f.start, Case.created_at <= f.end)
        if f.codes:
            query = query.where(Case.category.in_(f.codes))
        if f.statuses == {"open"}:
            query = query.where(Case.status != CaseStatus.ARCHIVED)
        elif f.statuses == {"closed"}:
            query = query.where(Case.status == CaseStatus.ARCHIVED)
    return session.scalars(query.order_by(*newest_first()).limit(limit)).all()


def open311_request(session: Session, reader: User | None, number: str) -> Case | None:
    """Return the request numbered ``number`` if ``reader`` (None: the public) may see it."""
    return session.scalar(_open311_scope(reader, select(Case).where(Case.number == number)))


def _open311_scope(reader: User | None, query: Select) -> Select:
    """Limit a case query to what an Open311 reader sees: the public (None) only the requests filed through
    Open311 apps (other cases can hold a resident's circumstances); a user the cases they may read."""
    if reader is None:
        return query.where(Case.intake == Door.OPEN311)
    return visible_cases(reader, query)
