"""The audit search, and the cases whose chains "verify all" walks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from ..models import AuditEvent, Case, User
from ..permissions import visible_cases
from .cases import day_after, parse_date

#: The audit search's filters.
AUDIT_FILTERS = ("actor", "action", "field", "date_from", "date_to", "number")
#: Audit search results per page.
AUDIT_PAGE = 50
#: Events read per step of an audit search, and how many steps before offering "look further".
SCAN_SIZE, SCAN_BATCHES = 500, 40


def audit_filters(args: Mapping[str, str]) -> dict[str, str]:
    """Read the audit search's filters from query arguments (NUL characters dropped)."""
    return {k: args.get(k, "").replace("\x00", "").strip() for k in AUDIT_FILTERS}


def audit_search(session: Session, user: User, f: Mapping[str, str], before: int | None,
                 zone: ZoneInfo) -> tuple[list[tuple[AuditEvent, str]], int | None]:
    """Search the events of every case ``user`` may read: by actor, action, date (local days in ``zone``),
    field changed and number.

    Returns one page of (event, case number), newest first, and the id to continue before (None at the end).
    """
    query = select(AuditEvent)
    if f["actor"]:
        # A person by display name (as the event recorded it) or by username alike.
        named = select(User.id).where(User.username.contains(f["actor"], autoescape=True))
        query = query.where(AuditEvent.actor_name.contains(f["actor"], autoescape=True)
                            | AuditEvent.actor_id.in_(named))
    if f["action"]:
        query = query.where(AuditEvent.action == f["action"])
    if f["field"]:
        # Changes are stored as a JSON object keyed by field: match the key itself.
        query = query.where(AuditEvent.changes.contains(json.dumps(f["field"]) + ":", autoescape=True))
    if start := parse_date(f["date_from"], zone):
        query = query.where(AuditEvent.at >= start)
    if end := parse_date(f["date_to"], zone):
        query = query.where(AuditEvent.at < day_after(end))
    if f["number"]:
        # The whole number, or part of it (its last digits, its day): the readable cases holding it.
        cases = visible_cases(user, select(Case.id).where(Case.number.contains(f["number"], autoescape=True)))
        query = query.where(AuditEvent.case_id.in_(cases.limit(1000)))
    return _visible_events(session, user, query, before)


def _visible_events(session: Session, user: User, query: Select,
                    before: int | None) -> tuple[list[tuple[AuditEvent, str]], int | None]:
    """Walk matching events newest first in batches, keeping those of cases the user may read.

    Driving from the events (newest first, by primary key) and checking each batch's cases is fast
    for any scope; joining cases first would make a wide scope gather every case. Returns one page
    and the id to continue before (None at the end); a scope that matches rarely stops after
    SCAN_BATCHES batches with a link to look further.
    """
    found: list[tuple[AuditEvent, str]] = []
    for _ in range(SCAN_BATCHES):
        batch_query = query.where(AuditEvent.id < before) if before else query
        batch = session.scalars(batch_query.order_by(AuditEvent.id.desc()).limit(SCAN_SIZE)).all()
        if not batch:
            return found, None
        numbers = dict(session.execute(visible_cases(user, select(Case.id, Case.number)
                                                     .where(Case.id.in_({e.case_id for e in batch})))).all())
        for event in batch:
            if event.case_id in numbers:
                found.append((event, numbers[event.case_id]))
                if len(found) == AUDIT_PAGE:
                    return found, event.id
        before = batch[-1].id
    return found, before


def readable_case_ids(user: User) -> Select:
    """Return the query for the ids of the cases ``user`` may read (the scope is fixed when built)."""
    return visible_cases(user, select(Case.id))


def case_number_batches(session: Session, scope: Select, size: int) -> Iterator[Sequence[Row]]:
    """Yield (id, number) of the cases of ``scope``, by id, ``size`` at a time (keyset: flat at any scope)."""
    last = 0
    while True:
        batch = session.execute(scope.with_only_columns(Case.id, Case.number).where(Case.id > last)
                                .order_by(Case.id).limit(size)).all()
        if not batch:
            return
        yield batch
        last = batch[-1][0]
