"""Append hash-chained audit events and verify cases' chains (the rules live in ``tracker.chain``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..chain import GENESIS, Report, check, event_hash, jsonable, utc_text
from ..models import AuditEvent, Case, User, utcnow

#: Case columns whose changes the audit trail records; verification checks the case row against them.
AUDITED = ("status", "resident_name", "resident_phone", "resident_email", "building_id", "address_detail",
           "latitude", "longitude", "media_url", "category",
           "description", "channel", "urgency", "green_channel", "reply", "dispatch_to", "handler_id",
           "department_id", "deadline_class", "due_at", "result", "outcome", "reopen_count",
           "callback_attempts", "extension_days", "archived_at", "signed_at")


def record_event(session: Session, case: Case, actor: User | None, action: str,
                 changes: Mapping[str, tuple[Any, Any]], task_name: str | None = None) -> AuditEvent:
    """Append one event to the case's chain; the caller's transaction commits it.

    The case row keeps its chain's head hash, so appending needs no query; tasks that opened or
    closed since the previous event are stamped with this event's number (the diagram of a past
    event shows what was current then).
    """
    seq = case.audit_seq + 1
    prev_hash = case.audit_head or GENESIS
    at = utcnow().replace(microsecond=0)
    text = json.dumps({k: [jsonable(o), jsonable(n)] for k, (o, n) in changes.items()},
                      ensure_ascii=False, sort_keys=True)
    actor_id = actor.id if actor else None
    actor_name = actor.display_name if actor else "system"
    event = AuditEvent(case_id=case.id, seq=seq, at=at, actor_id=actor_id, actor_name=actor_name,
                       action=action, task_name=task_name, changes=text, prev_hash=prev_hash,
                       hash=event_hash(case.id, seq, utc_text(at), actor_id, actor_name, action, task_name,
                                       text, prev_hash))
    case.audit_seq, case.audit_head = seq, event.hash
    for task in case.tasks:
        if task.opened_seq is None:
            task.opened_seq = seq
        if task.closed_seq is None and task.status == "done":
            task.closed_seq = seq
    session.add(event)
    return event


def as_record(event: AuditEvent) -> dict[str, Any]:
    """Return an event as the plain mapping ``tracker.chain`` checks and bundles carry."""
    return {"case_id": event.case_id, "seq": event.seq, "at": utc_text(event.at), "actor_id": event.actor_id,
            "actor_name": event.actor_name, "action": event.action, "task_name": event.task_name,
            "changes": event.changes, "prev_hash": event.prev_hash, "hash": event.hash}


def audited_fields(case: Case) -> dict[str, Any]:
    """Return the case's audited fields as they stand."""
    return {name: getattr(case, name) for name in AUDITED}


def verify_chain(session: Session, case_id: int) -> Report:
    """Check a case's chain and its current fields; name the first broken link.

    The case row is read first, fresh, and only the events it counts are checked: on PostgreSQL
    each statement sees the latest commits, so an event appended meanwhile must not look like a
    break. An event beyond the count that the case does not know of is still caught (see below).
    """
    case = session.get(Case, case_id, populate_existing=True)
    query = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)
    if case is None:
        return check(case_id, [as_record(e) for e in session.scalars(query)])
    events = [as_record(e) for e in session.scalars(query.where(AuditEvent.seq <= case.audit_seq))]
    report = check(case_id, events, case.audit_seq, audited_fields(case))
    if report.ok and case.audit_head not in (None, report.head):
        return Report(case_id, len(events), False, len(events),
                      "the case's recorded chain head does not match its last event", report.head)
    return report


__all__ = ["AUDITED", "GENESIS", "as_record", "audited_fields", "record_event", "verify_chain"]
