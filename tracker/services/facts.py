"""Keep each case's numbers' facts as its audit events are recorded (README "The numbers").

Every change to a case is an audit event (``audit.record_event``), so the facts follow the events:
before each flush, the cases of the events about to be written get their facts from the case as it
now stands. The facts are columns of the case row, which the flush writes anyway: no statement is
added to a write, and a figure can never lag behind an edit. What depends on the clock (a limit that
passes without a sign-for or a handling) is not stored at all: the queries compare with "now", so a
timer firing or not firing never makes a figure wrong.

Each fact is set once, at its first occurrence, and never changed: a reopened case (重办) keeps its
first handling's facts, and its reopening is counted by ``reopen_count``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..codes import Outcome
from ..models import AuditEvent, Case
from ..workdays import WorkCalendar

#: Callback answers that reached the resident (an unreachable callback is not an answer).
REACHED = (Outcome.SATISFIED, Outcome.BASIC, Outcome.DISSATISFIED)
DEFAULT_HOURS = ("09:00", "17:00")


def office_hours(config: Mapping[str, Mapping[str, Any]]) -> tuple[dt.time, dt.time]:
    """Return the office's opening and closing times of ``[stats] office_hours``."""
    opens, closes = config.get("stats", {}).get("office_hours", list(DEFAULT_HOURS))
    return dt.time.fromisoformat(opens), dt.time.fromisoformat(closes)


def working_minutes(calendar: WorkCalendar, hours: tuple[dt.time, dt.time], start: dt.datetime,
                    end: dt.datetime) -> int:
    """Return the minutes between ``start`` and ``end`` that fall in office hours of working days."""
    if end <= start:
        return 0
    zone = calendar.zone
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        if calendar.is_working_day(day):
            opens = dt.datetime.combine(day, hours[0], zone)
            closes = dt.datetime.combine(day, hours[1], zone)
            overlap = min(closes, end) - max(opens, start)
            total += max(overlap.total_seconds(), 0.0)
        day += dt.timedelta(days=1)
    return round(total / 60)


def note(case: Case, action: str, changes: Mapping[str, Any], at: dt.datetime,
         calendar: WorkCalendar, hours: tuple[dt.time, dt.time]) -> None:
    """Set the facts ``case`` gains with one audit event (``changes``: field -> [old, new])."""
    if case.first_dispatched_at is None and case.dispatched_at is not None:
        case.first_dispatched_at, case.respond_by, case.first_due_at = \
            case.dispatched_at, case.sign_for_at, case.due_at
    if case.responded_at is None and case.signed_at is not None:
        case.responded_at = case.signed_at
    if action == "task.record_reply" and _new(changes, "form.answered_on_spot") is True:
        case.answered_on_spot = True
    if action == "task.handle" and _new(changes, "form.handle_action") == "done" and case.handled_at is None:
        case.handled_at, case.handled_due_at = at, case.due_at
        if case.first_dispatched_at is not None:
            case.handling_minutes = working_minutes(calendar, hours, case.first_dispatched_at, at)
    if action == "task.callback" and case.first_outcome is None and case.outcome in REACHED:
        case.first_outcome = case.outcome


def _new(changes: Mapping[str, Any], key: str) -> Any:
    """Return the new value a change records for ``key`` (None if it records none)."""
    pair = changes.get(key)
    return pair[1] if isinstance(pair, list) and len(pair) == 2 else None


def _settings() -> tuple[WorkCalendar, tuple[dt.time, dt.time]]:
    """Return the calendar and office hours of the running app (the defaults outside one)."""
    if has_app_context():
        return current_app.extensions["gridloop.calendar"], office_hours(current_app.config["GRIDLOOP"])
    return WorkCalendar(), (dt.time.fromisoformat(DEFAULT_HOURS[0]), dt.time.fromisoformat(DEFAULT_HOURS[1]))


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Give the cases of the events about to be written the facts those events bring."""
    events = sorted((obj for obj in session.new if isinstance(obj, AuditEvent)), key=lambda e: (e.case_id, e.seq))
    if not events:
        return
    calendar, hours = _settings()
    for audit in events:
        # record_event was handed the case: it sits in the session's identity map (no query, even mid-flush).
        case = session.identity_map.get(session.identity_key(Case, audit.case_id))
        if isinstance(case, Case):
            note(case, audit.action, json.loads(audit.changes or "{}"), audit.at, calendar, hours)


def install() -> None:
    """Keep the facts on every session (idempotent; the app factory calls it)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


__all__ = ["REACHED", "install", "note", "office_hours", "working_minutes"]
