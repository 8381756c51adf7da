"""Turn a deadline class into the moments a dispatched case's timers fire.

Hour limits (emergency, utilities) count wall-clock time; day limits count working days on the
office calendar (see ``workdays``). The tracker computes these moments and hands them to the
workflow as data; the BPMN boundary timers fire on them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .workdays import WorkCalendar

DEADLINE_CLASSES = ("emergency", "utilities", "general", "complex")
HOUR_CLASSES = ("emergency", "utilities")


@dataclass(frozen=True)
class DeadlinePlan:
    """When each timer of one handling period fires (all aware UTC)."""

    start: dt.datetime
    # The handler must sign for (签收) the case by then, or the leader is told.
    sign_for_at: dt.datetime
    # 催办: a reminder to the handler.
    remind_at: dt.datetime
    # The handling limit; past it the leader supervises (督办).
    due_at: dt.datetime
    # Past it, the case escalates to the street office.
    escalate_at: dt.datetime

    def as_workflow_data(self) -> dict[str, str]:
        """Return the ISO strings the BPMN timer expressions read."""
        return {"sign_for_at": self.sign_for_at.isoformat(), "remind_at": self.remind_at.isoformat(),
                "due_at": self.due_at.isoformat(), "escalate_at": self.escalate_at.isoformat()}


@dataclass(frozen=True)
class DueWindow:
    """The one rule for "overdue" and "due soon" at a moment: badges, the case list filter, the board.

    Overdue: due before ``now``. Due soon: due from ``now`` until ``soon``. The checks are plain
    comparisons, so given a column they are SQL conditions and given a datetime they are booleans:
    a badge and the list filtered by it never disagree.
    """

    now: dt.datetime
    # The end of the due-soon window: ``now`` plus ``[deadlines] due_soon_hours``.
    soon: dt.datetime

    @classmethod
    def at(cls, now: dt.datetime, deadlines: Mapping[str, Any]) -> DueWindow:
        """Return the window at ``now`` with the configured ``due_soon_hours``."""
        return cls(now, now + dt.timedelta(hours=deadlines["due_soon_hours"]))

    def overdue(self, due_at: Any) -> Any:
        """Return whether a deadline (a datetime, or a column: the SQL condition) has passed."""
        return due_at < self.now

    def due_soon(self, due_at: Any) -> Any:
        """Return whether a deadline (a datetime, or a column: the SQL condition) falls in the window."""
        return (due_at >= self.now) & (due_at < self.soon)

    def state(self, due_at: dt.datetime | None) -> str:
        """Return "overdue", "due_soon" or "" for a deadline (none: "")."""
        if due_at is None:
            return ""
        if self.overdue(due_at):
            return "overdue"
        return "due_soon" if self.due_soon(due_at) else ""


def handling_due(deadlines: Mapping[str, Any], calendar: WorkCalendar, deadline_class: str,
                 start: dt.datetime, green_channel: bool) -> dt.datetime:
    """Return when a case of ``deadline_class`` dispatched at ``start`` must be handled."""
    if deadline_class not in DEADLINE_CLASSES:
        raise ValueError(f"unknown deadline class {deadline_class!r}; use one of {', '.join(DEADLINE_CLASSES)}")
    factor = deadlines["green_channel_factor"] if green_channel else 1.0
    if deadline_class in HOUR_CLASSES:
        return start + dt.timedelta(hours=deadlines[f"{deadline_class}_hours"] * factor)
    days = max(1, math.ceil(deadlines[f"{deadline_class}_days"] * factor))
    return calendar.add_working_days(start, days)


def plan(deadlines: Mapping[str, Any], calendar: WorkCalendar, start: dt.datetime,
         due_at: dt.datetime) -> DeadlinePlan:
    """Place the sign-for, reminder and escalation moments around a handling period."""
    sign_for_at = min(calendar.add_working_days(start, deadlines["sign_for_days"]), due_at)
    # Over working days the reminder lands on a working day too (not on a Sunday afternoon).
    whole_days = math.floor(calendar.working_days_between(start, due_at) * deadlines["reminder_at"])
    if whole_days >= 1:
        remind_at = min(calendar.add_working_days(start, whole_days), due_at)
    else:
        remind_at = start + (due_at - start) * deadlines["reminder_at"]
    escalate_at = calendar.add_working_days(due_at, deadlines["escalate_after_days"])
    return DeadlinePlan(start, sign_for_at, remind_at, due_at, escalate_at)


def extend(deadlines: Mapping[str, Any], calendar: WorkCalendar, start: dt.datetime,
           due_at: dt.datetime, working_days: int) -> DeadlinePlan:
    """Move the limit ``working_days`` later and re-place the reminder and escalation."""
    new_due = calendar.add_working_days(due_at, working_days)
    return plan(deadlines, calendar, start, new_due)


def check(deadlines: Mapping[str, Any]) -> None:
    """Fail with a message naming the key if a deadline setting is out of range."""
    for key in ("emergency_hours", "utilities_hours"):
        if not deadlines[key] > 0:
            raise ValueError(f"deadlines.{key} must be more than 0 hours, got {deadlines[key]!r}")
    for key in ("general_days", "complex_days", "sign_for_days"):
        if not deadlines[key] >= 1:
            raise ValueError(f"deadlines.{key} must be at least 1 working day, got {deadlines[key]!r}")
    if deadlines["escalate_after_days"] < 0:
        raise ValueError(f"deadlines.escalate_after_days must be 0 or more, got {deadlines['escalate_after_days']!r}")
    if not 0 < deadlines["green_channel_factor"] <= 1:
        raise ValueError(f"deadlines.green_channel_factor must be more than 0 and at most 1, "
                         f"got {deadlines['green_channel_factor']!r}")
    if not 0 < deadlines["reminder_at"] < 1:
        raise ValueError(f"deadlines.reminder_at is the share of the limit after which the reminder goes out; "
                         f"it must be between 0 and 1 (e.g. 0.75), got {deadlines['reminder_at']!r}")
