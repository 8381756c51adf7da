"""Append hash-chained audit events and verify a case's chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditEvent, Case, User, utcnow

GENESIS = "0" * 64


def event_hash(case_id: int, seq: int, at: dt.datetime, actor_id: int | None, actor_name: str,
               action: str, task_name: str | None, changes: str, prev_hash: str) -> str:
    """Return the SHA-256 over an event's content and the previous event's hash."""
    payload = json.dumps([case_id, seq, at.astimezone(dt.UTC).isoformat(), actor_id, actor_name, action,
                          task_name, changes, prev_hash], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    """Make a changed value JSON-friendly (datetimes as ISO strings)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return value


def record_event(session: Session, case: Case, actor: User | None, action: str,
                 changes: Mapping[str, tuple[Any, Any]], task_name: str | None = None,
                 prev_hash: str | None = None) -> AuditEvent:
    """Append one event to the case's chain; the caller's transaction commits it."""
    if prev_hash is None:
        prev_hash = session.scalar(select(AuditEvent.hash).where(AuditEvent.case_id == case.id)
                                   .order_by(AuditEvent.seq.desc()).limit(1)) or GENESIS
    seq = case.audit_seq + 1
    case.audit_seq = seq
    at = utcnow().replace(microsecond=0)
    text = json.dumps({k: [_jsonable(o), _jsonable(n)] for k, (o, n) in changes.items()},
                      ensure_ascii=False, sort_keys=True)
    actor_name = actor.display_name if actor else "system"
    event = AuditEvent(case_id=case.id, seq=seq, at=at, actor_id=actor.id if actor else None,
                       actor_name=actor_name, action=action, task_name=task_name, changes=text,
                       prev_hash=prev_hash,
                       hash=event_hash(case.id, seq, at, actor.id if actor else None, actor_name, action,
                                       task_name, text, prev_hash))
    session.add(event)
    return event


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying a case's audit chain."""

    case_id: int
    events: int
    ok: bool
    broken_seq: int | None = None
    problem: str = ""


def verify_chain(session: Session, case_id: int) -> ChainReport:
    """Recompute every hash of a case's chain and name the first broken link."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id)
                             .order_by(AuditEvent.seq)).all()
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            return ChainReport(case_id, len(events), False, expected_seq, f"event {expected_seq} is missing")
        if ev.prev_hash != prev:
            return ChainReport(case_id, len(events), False, ev.seq, "previous-hash link does not match")
        digest = event_hash(ev.case_id, ev.seq, ev.at, ev.actor_id, ev.actor_name, ev.action,
                            ev.task_name, ev.changes, ev.prev_hash)
        if digest != ev.hash:
            return ChainReport(case_id, len(events), False, ev.seq, "content does not match its hash")
        prev = ev.hash
    case = session.get(Case, case_id)
    if case is not None and case.audit_seq != len(events):
        return ChainReport(case_id, len(events), False, len(events) + 1,
                           f"case records {case.audit_seq} events but {len(events)} exist")
    return ChainReport(case_id, len(events), True)
