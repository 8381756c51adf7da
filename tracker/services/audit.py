"""Append hash-chained audit events and verify cases' chains (the rules live in ``tracker.chain``)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

# AUDITED (the case columns on the chain, the grid and recorder among them) is defined in the chain's
# stdlib-only module, so that the offline bundle verifier knows the full set too.
from ..chain import AUDITED, GENESIS, RECORD_KEYS, Report, check, event_hash, jsonable, utc_text
from ..models import AuditEvent, Case, ProcessDefinition, User, utcnow

#: Cases whose chains one query of ``verify_chains`` should read when going through many.
VERIFY_BATCH = 200


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
    """Return the case's audited fields as they stand, and the hash of the process version it runs on."""
    return {**{name: getattr(case, name) for name in AUDITED}, "process_hash": case.definition.content_hash}


def verify_chain(session: Session, case_id: int) -> Report:
    """Check a case's chain and its current fields; name the first broken link."""
    return verify_chains(session, [case_id])[case_id]


#: What verification reads of a case: its count and head, its process version's hash, its audited fields.
_CASE_COLUMNS = (Case.id, Case.audit_seq, Case.audit_head, ProcessDefinition.content_hash,
                 *(getattr(Case, name) for name in AUDITED))
_EVENT_COLUMNS = (AuditEvent.case_id, AuditEvent.seq, AuditEvent.at, AuditEvent.actor_id, AuditEvent.actor_name,
                  AuditEvent.action, AuditEvent.task_name, AuditEvent.changes, AuditEvent.prev_hash,
                  AuditEvent.hash)


def verify_chains(session: Session, case_ids: Collection[int]) -> dict[int, Report]:
    """Check the chains of several cases with one query; return case id -> report.

    Every event stored for a case is checked, not only the ones its row counts: an event stored
    after the last is a break. The case row and its events come from one statement, so they agree
    even on PostgreSQL, where each statement sees the latest commits (an event appended meanwhile
    arrives with the row that counts it).
    """
    width = len(_CASE_COLUMNS)
    query = (select(*_CASE_COLUMNS, *_EVENT_COLUMNS)
             .join(ProcessDefinition, ProcessDefinition.id == Case.definition_id)
             .outerjoin(AuditEvent, AuditEvent.case_id == Case.id)
             .where(Case.id.in_(case_ids)).order_by(Case.id, AuditEvent.seq))
    cases: dict[int, tuple[Any, ...]] = {}
    events: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(query):
        if row[0] not in cases:
            cases[row[0]], events[row[0]] = tuple(row[:width]), []
        if row[width] is not None:
            record = dict(zip(RECORD_KEYS, row[width:]))
            record["at"] = utc_text(record["at"])
            events[row[0]].append(record)
    reports = {case_id: _report(events[case_id], *columns) for case_id, columns in cases.items()}
    for case_id in set(case_ids) - set(cases):
        # No such case: its stray events, if any, are still checked among themselves.
        reports[case_id] = check(case_id, [as_record(e) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq))])
    return reports


def _report(events: list[dict[str, Any]], case_id: int, audit_seq: int, audit_head: str | None,
            process_hash: str, *values: Any) -> Report:
    """Check one case's events against its row: count, head, audited fields and process version."""
    report = check(case_id, events, audit_seq, {**dict(zip(AUDITED, values)), "process_hash": process_hash})
    if report.ok and audit_head not in (None, report.head):
        return Report(case_id, len(events), False, len(events),
                      "the case's recorded chain head does not match its last event", report.head)
    return report


__all__ = ["AUDITED", "GENESIS", "VERIFY_BATCH", "as_record", "audited_fields", "record_event", "verify_chain",
           "verify_chains"]
