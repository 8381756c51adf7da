"""In-app notifications: who hears about reminders, supervision, escalation and missed visits."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workflows import FiredTimer

from ..codes import NotificationKind
from ..models import Case, Grid, Membership, Notification, Role, TaskStatus, User, Visit, utcnow
from . import Services, delivery
from .audit import record_event

#: Notification kinds, each with the message the UI shows (see templates/notifications).
KINDS = tuple(kind.value for kind in NotificationKind)


def notify(session: Session, user_ids: Iterable[int], kind: str, *, case: Case | None = None,
           visit: Visit | None = None, **params: Any) -> int:
    """Add one notification per distinct user; return how many were added."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    text = json.dumps(params, ensure_ascii=False, default=str)
    ids = sorted(set(user_ids))
    added = [Notification(user_id=user_id, case_id=case.id if case else None, visit_id=visit.id if visit else None,
                          kind=kind, params=text, created_at=utcnow()) for user_id in ids]
    session.add_all(added)
    delivery.enqueue(session, added)  # e-mail and webhook, for whoever chose them (nothing when none is set up)
    return len(ids)


def new_task(session: Session, case: Case, by: User, user_ids: list[int] | None) -> int:
    """Tell whoever a case was just dispatched to (``None``: its department's handlers) by e-mail or webhook.

    The inbox already shows new work in the app, so this notice is written only for people who get
    messages outside it: with no channel set up, dispatching reads and writes nothing more.
    """
    if not delivery.channels_on(session):
        return 0
    wanting = delivery.wanting(session, handlers_of(session, case) if user_ids is None else user_ids)
    return notify(session, wanting, "new_task", case=case, number=case.number, by=by.display_name,
                  due_at=case.due_at) if wanting else 0


def leaders_of(session: Session, grid_id: int) -> list[int]:
    """Return the ids of the grid's leaders."""
    return _holders(session, ("leaders", grid_id), Membership.role == Role.GRID_LEADER, Membership.grid_id == grid_id)


def street_office_of(session: Session, grid_id: int) -> list[int]:
    """Return the ids of the street-office staff over the grid's community."""
    community = select(Grid.community_id).where(Grid.id == grid_id).scalar_subquery()
    return _holders(session, ("street", grid_id), Membership.role == Role.STREET_OFFICE,
                    Membership.community_id == community)


def handlers_of(session: Session, case: Case) -> list[int]:
    """Return who handles the case now: the handle task's assignee, else its member or department."""
    for task in case.tasks:  # already loaded by whoever changed the case
        if task.status == TaskStatus.OPEN and task.form_key == "handle" and task.assignee_id is not None:
            return [task.assignee_id]
    if case.handler_id is not None:
        return [case.handler_id]
    if case.department_id is not None:
        return _holders(session, ("department", case.department_id), Membership.role == Role.DEPARTMENT_HANDLER,
                        Membership.department_id == case.department_id)
    return []


def _holders(session: Session, key: tuple, *conditions) -> list[int]:
    """Return active users holding a membership that matches ``conditions`` (cached per session:
    a scheduler batch asks the same few questions for every case of a grid)."""
    cache = session.info.setdefault("gridloop.recipients", {})
    if key not in cache:
        with session.no_autoflush:
            cache[key] = list(session.scalars(select(User.id).join(Membership)
                                              .where(User.active.is_(True), *conditions).distinct()))
    return list(cache[key])


def on_fired(svc: Services, case: Case, fired: Sequence[FiredTimer]) -> None:
    """Tell the right people what the case's timers just did, and put it on the audit trail."""
    session = svc.session
    for timer in fired:
        params = {"number": case.number, "due_at": case.due_at}
        changes: dict[str, tuple[Any, Any]] = {"timer": (None, timer.name)}
        if timer.notice == "sign_for":
            if case.signed_at is not None:
                changes["skipped"] = (None, "already signed for")
            else:
                notify(session, leaders_of(session, case.grid_id) + handlers_of(session, case), "sign_for",
                       case=case, **params)
        elif timer.notice == "reminder":
            if case.reminded_for is not None and case.reminded_for == case.due_at:
                changes["skipped"] = (None, "already reminded for this limit")
            else:
                case.reminded_for = case.due_at
                notify(session, handlers_of(session, case), "reminder", case=case, **params)
        elif timer.notice == "supervision":
            notify(session, leaders_of(session, case.grid_id) + handlers_of(session, case), "supervision",
                   case=case, **params)
        elif timer.notice == "escalation":
            notify(session, street_office_of(session, case.grid_id) + leaders_of(session, case.grid_id),
                   "escalation", case=case, **params)
        record_event(session, case, None, f"timer.{timer.notice or timer.name}", changes)


def unread_count(session: Session, user: User) -> int:
    """Return how many notifications the user has not read."""
    return session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def mark_read(session: Session, user: User) -> int:
    """Mark all the user's notifications read; return how many changed."""
    query = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    return session.execute(query.values(read_at=utcnow())).rowcount
