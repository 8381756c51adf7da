"""Keep each case's numbers' facts as its audit events are recorded (README "The numbers").

Every change to a case is an audit event (``audit.record_event``), so the facts follow the events:
before each flush, the cases of the events about to be written get their facts from the case as it
now stands. The facts are columns of the case row, which the flush writes anyway: no statement is
added to a write, and a figure can never lag behind an edit. What depends on the clock (a limit that
passes without a sign-for or a handling) is not stored at all: the queries compare with "now", so a
timer firing or not firing never makes a figure wrong.

Each fact is set once, at its first occurrence, and never changed: a reopened case (重办) keeps its
first handling's facts, and its reopening is counted by ``reopen_count``.

The day totals of each grid (``stats_day``, read by queries.stats) are kept by the database itself: see
"day totals" below.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import Column, Connection, bindparam, delete, event, func, insert, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors

from ..codes import Outcome
from ..models import DAY_COUNTERS, AuditEvent, Case, stats_day, utcnow
from ..queries.stats import day_total_terms, day_totals_query
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
    """Give a new case its local day, and the cases of the events about to be written the facts those events
    bring."""
    calendar = None
    for obj in session.new:
        if isinstance(obj, Case) and obj.local_day is None:
            calendar = calendar or _settings()[0]
            obj.created_at = obj.created_at or utcnow()
            obj.local_day = obj.created_at.astimezone(calendar.zone).date()
    events = sorted((obj for obj in session.new if isinstance(obj, AuditEvent)), key=lambda e: (e.case_id, e.seq))
    if not events:
        return
    calendar, hours = _settings()
    for audit in events:
        # record_event was handed the case: it sits in the session's identity map (no query, even mid-flush).
        case = session.identity_map.get(session.identity_key(Case, audit.case_id))
        if isinstance(case, Case):
            note(case, audit.action, json.loads(audit.changes or "{}"), audit.at, calendar, hours)


# -- day totals ----------------------------------------------------------------------------------
#
# The database keeps them: triggers on the case and duplicate-link tables add what a row brings to its day's
# total and take away what it brought before, in the statement that writes it. The app sends no statement
# more for them, and two writers of one grid and day never lose each other's change (an addition to a row
# waits for the other writer's, then adds to what it left). The triggers' SQL is made here from the same
# terms the figures are read with (queries.stats.day_total_terms), for SQLite and for PostgreSQL.

def _day_facts() -> tuple[str, ...]:
    """Return the case columns a day total is counted from, and those naming its grid and day."""
    found = {element.key for _, term in day_total_terms() for element in visitors.iterate(term)
             if isinstance(element, Column) and element.table is Case.__table__}
    return tuple(sorted(found | {"grid_id", "local_day"}))


#: The case columns whose change changes a day total (the update trigger fires on them alone).
DAY_FACTS = _day_facts()
#: The triggers (and on PostgreSQL their functions), by name: (table, event, rows of the change).
_TRIGGERS = {
    "stats_day_case_insert": ("case", "INSERT", (("new", 1),)),
    "stats_day_case_delete": ("case", "DELETE", (("old", -1),)),
    "stats_day_case_update": ("case", "UPDATE OF " + ", ".join(DAY_FACTS), (("old", -1), ("new", 1))),
    "stats_day_link_insert": ("duplicate_link", "INSERT", (("new", -1),)),
    "stats_day_link_delete": ("duplicate_link", "DELETE", (("old", 1),)),
}


def _terms_of(row: str, sign: int, dialect: Any, linked: bool) -> str:
    """Return the SELECT of one case row's day, grid and signed counters: the trigger's own row (``row`` is NEW
    or OLD of the case table) or, ``linked``, the case a duplicate-link row names."""
    alias = Case.__table__.alias("c" if linked else row)
    literal = {"literal_binds": True}
    terms = ", ".join(f"{'-' if sign < 0 else ''}({term.compile(dialect=dialect, compile_kwargs=literal)}) AS {name}"
                      for name, term in day_total_terms(alias))
    prefix = alias.name
    select_sql = f"SELECT {prefix}.local_day AS day, {prefix}.grid_id AS grid_id, {terms}"
    return select_sql + (f' FROM "case" AS c WHERE c.id = {row}.case_id' if linked else "")


def _trigger_statement(name: str, dialect: Any) -> str:
    """Return the statement trigger ``name`` runs: add the rows' signed counters to their days' totals."""
    table, _, rows = _TRIGGERS[name]
    linked = table == "duplicate_link"
    union = " UNION ALL ".join(_terms_of(row, sign, dialect, linked) for row, sign in rows)
    # A linked duplicate counts nothing (its main case counts for it): its own writes change no total.
    where = "true" if linked else f"NOT EXISTS (SELECT 1 FROM duplicate_link WHERE case_id = {rows[-1][0]}.id)"
    names = ", ".join(DAY_COUNTERS)
    sums = ", ".join(f"sum({n})" for n in DAY_COUNTERS)
    changed = " OR ".join(f"sum({n}) <> 0" for n in DAY_COUNTERS)
    adds = ", ".join(f"{n} = stats_day.{n} + excluded.{n}" for n in DAY_COUNTERS)
    return (f"INSERT INTO stats_day (day, grid_id, {names}) SELECT day, grid_id, {sums} FROM ({union}) AS d "
            f"WHERE {where} GROUP BY day, grid_id HAVING {changed} "
            f"ON CONFLICT (day, grid_id) DO UPDATE SET {adds}")


def day_total_sources(dialect: Any) -> dict[str, str]:
    """Return each trigger's source as ``dialect``'s database keeps it (SQLite: the trigger; PostgreSQL: the
    body of its function): what ``installed_day_totals`` reads back."""
    found = {}
    for name, (table, when, _) in _TRIGGERS.items():
        statement = _trigger_statement(name, dialect)
        found[name] = (f"\nBEGIN\n{statement};\nRETURN NULL;\nEND\n" if dialect.name == "postgresql" else
                       f'CREATE TRIGGER {name} AFTER {when} ON "{table}" FOR EACH ROW BEGIN\n{statement};\nEND')
    return found


def day_total_ddl(dialect: Any) -> list[str]:
    """Return the statements that (re)create the day totals' triggers on ``dialect``'s database."""
    found = []
    for name, source in day_total_sources(dialect).items():
        table, when, _ = _TRIGGERS[name]
        if dialect.name == "postgresql":
            found += [f'DROP TRIGGER IF EXISTS {name} ON "{table}"', f"DROP FUNCTION IF EXISTS {name}()",
                      f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body${source}$body$",
                      f'CREATE TRIGGER {name} AFTER {when} ON "{table}" FOR EACH ROW EXECUTE FUNCTION {name}()']
        else:
            found += [f"DROP TRIGGER IF EXISTS {name}", source]
    return found


def install_day_totals(connection: Connection) -> None:
    """(Re)create the day totals' triggers (migration 0021, ``flask count-day-totals``)."""
    for statement in day_total_ddl(connection.dialect):
        connection.exec_driver_sql(statement)


def installed_day_totals(connection: Connection) -> dict[str, str]:
    """Return the source of each day totals trigger as the database holds it (SQLite: the trigger; PostgreSQL:
    its function's body)."""
    if connection.dialect.name == "postgresql":
        query = text("SELECT proname, prosrc FROM pg_proc WHERE proname IN :names")
    else:
        query = text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN :names")
    query = query.bindparams(bindparam("names", list(_TRIGGERS), expanding=True))
    return {name: source for name, source in connection.execute(query)}


def count_all_days(connection: Connection, zone: ZoneInfo) -> int:
    """Give every case its local day in ``zone`` and count every day total again from the cases (a new
    install, a changed time zone, cases loaded around the app); return how many (day, grid) rows there are."""
    first, last = connection.execute(select(func.min(Case.created_at), func.max(Case.created_at))).one()
    day = first.astimezone(zone).date() if first is not None else None
    while day is not None and day <= last.astimezone(zone).date():
        start = dt.datetime.combine(day, dt.time(), zone)
        table: Any = Case.__table__
        # Not a change of the case: its updated_at stays (the column's onupdate would set it).
        connection.execute(update(table).where(table.c.created_at >= start,
                                               table.c.created_at < start + dt.timedelta(days=1),
                                               or_(table.c.local_day.is_(None), table.c.local_day != day))
                           .values(local_day=day, updated_at=table.c.updated_at))
        day += dt.timedelta(days=1)
    connection.execute(delete(stats_day))
    counted = day_totals_query()
    connection.execute(insert(stats_day).from_select(["day", "grid_id", *DAY_COUNTERS], counted))
    return connection.execute(select(func.count()).select_from(stats_day)).scalar_one()


def install() -> None:
    """Keep the facts on every session (idempotent; the app factory calls it)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


__all__ = ["DAY_FACTS", "REACHED", "count_all_days", "day_total_ddl", "day_total_sources", "install",
           "install_day_totals",
           "installed_day_totals", "note", "office_hours", "working_minutes"]
