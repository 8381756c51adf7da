"""What a case looked like at any event of its history: current tasks and the process diagram."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from workflows import render_svg

from ..models import AuditEvent, Case, Task, utcnow
from . import Services
from .definitions import as_definition


@dataclass(frozen=True)
class Moment:
    """The case after one of its events: which tasks were done and current then, and the diagram."""

    seq: int
    at: dt.datetime
    done: list[Task]
    current: list[Task]
    overdue: list[Task]
    svg: str


def tasks_at(case: Case, seq: int) -> tuple[list[Task], list[Task]]:
    """Return (done, current) user tasks right after event ``seq``."""
    done, current = [], []
    for task in case.tasks:
        if task.opened_seq is None or task.opened_seq > seq:
            continue
        if task.closed_seq is not None and task.closed_seq <= seq:
            done.append(task)
        else:
            current.append(task)
    return done, current


def moment(svc: Services, case: Case, seq: int | None = None, *, title: str = "",
           legend: Mapping[str, str] | None = None) -> Moment:
    """Return the case as it stood after event ``seq`` (default: now), with its diagram drawn."""
    latest = seq is None or seq >= case.audit_seq
    seq = case.audit_seq if latest else max(1, seq)
    at = utcnow() if latest else svc.session.scalar(
        select(AuditEvent.at).where(AuditEvent.case_id == case.id, AuditEvent.seq == seq)) or utcnow()
    done, current = tasks_at(case, seq)
    overdue = [t for t in current if t.due_at is not None and t.due_at < at]
    definition = as_definition(case.definition)
    trail = svc.engine.trail(definition, case.workflow_state, [t.id for t in done + current])
    svg = render_svg(definition.source, definition.process_id, visited=trail.elements, taken=trail.flows,
                     current={t.name for t in current}, overdue={t.name for t in overdue},
                     title=title, legend=legend)
    return Moment(seq, at, done, current, overdue, svg)


__all__ = ["Moment", "moment", "tasks_at"]
