"""The numbers offices are judged by: the three rates and the rest, per grid, member, department, category.

Every figure is a count of cases under one named condition (``FIGURES``), computed over the cases
recorded in a period (local days) from the facts each case row keeps (``services.facts``) and the
moment ``now``; the case list filters by the same conditions (``fig``), so each figure links to
exactly its cases. The definitions are in README "The numbers"; ``Definitions`` holds what
``[stats]`` configures. Linked duplicates (重复件) are left out: they are counted once, by their main case.
A period of a set of grids (an area, a community, a grid) is read from the grids' day totals, which the
database keeps (``stats_day``; see "day totals" below), plus what "now" makes of the undecided cases.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case as when,
    event,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from ..deadlines import DueWindow
from ..models import (
    DAY_COUNTERS,
    Case,
    CaseStatus,
    Community,
    Department,
    DuplicateLink,
    Grid,
    Report,
    Role,
    User,
    UTCDateTime,
    stats_day,
)
from ..permissions import audits_district, community_ids, department_ids, grid_ids, visible_cases

#: Answers that reached the resident at a callback.
REACHED = ("satisfied", "basic", "dissatisfied")
PERIOD_KINDS = ("week", "month", "quarter", "custom")
#: The longest custom period, in days (and its previous period stays a real date).
MAX_CUSTOM_DAYS = 732
#: Statuses of a case still open (named, not "not archived": an IN list walks the status index).
OPEN_STATUSES = tuple(status.value for status in CaseStatus if status != CaseStatus.ARCHIVED)


@dataclass(frozen=True)
class Definitions:
    """What ``[stats]`` configures about the figures."""

    # "extended": handling is held to the limit as approved extensions moved it; "original": to the
    # limit set at dispatch.
    extensions: str = "extended"
    # Callback answers the resolution rate counts as resolved.
    resolved: tuple[str, ...] = ("satisfied", "basic")
    # Weights of the satisfaction rate, per answer.
    weights: Mapping[str, float] = field(default_factory=lambda: {"satisfied": 1.0, "basic": 0.8,
                                                                  "dissatisfied": 0.0})
    trend_weeks: int = 8

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]]) -> Definitions:
        """Read the definitions from validated configuration."""
        stats = config.get("stats", {})
        return cls(stats.get("extensions", "extended"), tuple(stats.get("resolved_outcomes", ("satisfied", "basic"))),
                   {"satisfied": stats.get("satisfied_weight", 1.0), "basic": stats.get("basic_weight", 0.8),
                    "dissatisfied": stats.get("dissatisfied_weight", 0.0)},
                   stats.get("trend_weeks", 8))

    @property
    def limit_suffix(self) -> str:
        """Return what the handling figures' names carry for the configured limit ("" or ".original")."""
        return ".original" if self.extensions == "original" else ""


# -- the conditions ------------------------------------------------------------------------------

#: The beginning of time for the figures (``_conditions``' "now"): no limit has passed yet.
NEVER: Any = object()


def _handling_limits(original: bool) -> tuple[Any, Any]:
    """Return (the limit a completed handling is held to, the limit an open one is held to)."""
    return (Case.first_due_at, Case.first_due_at) if original else (Case.handled_due_at, Case.due_at)


def _conditions(now: Any, original: bool) -> dict[str, ColumnElement[bool]]:
    """Return each figure's condition on a case at ``now`` (a moment, or NOW given at execution; NEVER: the
    beginning of time, when no limit had passed -- what no clock can change, as the day totals keep it)."""
    handled_limit, open_limit = _handling_limits(original)
    dispatched = Case.first_dispatched_at.is_not(None)
    handled = Case.handled_at.is_not(None)

    def passed(limit: Any) -> ColumnElement[bool]:
        return false() if now is NEVER else limit < now
    late_open = and_(dispatched, Case.handled_at.is_(None), passed(open_limit))
    return {
        "recorded": true(),
        "on_spot": Case.answered_on_spot.is_(True),
        "dispatched": dispatched,
        # Response: signed for (签收) by the sign-for limit; undecided while neither happened nor passed.
        "response_due": and_(dispatched, or_(Case.responded_at.is_not(None), passed(Case.respond_by))),
        "responded": Case.responded_at <= Case.respond_by,
        "response_late": and_(dispatched, or_(Case.responded_at > Case.respond_by,
                                              and_(Case.responded_at.is_(None), passed(Case.respond_by)))),
        # Handling: completed by its limit; undecided while open and the limit has not passed.
        "handling_due": or_(handled & dispatched, late_open),
        "on_time": and_(handled, dispatched, Case.handled_at <= handled_limit),
        "overdue": or_(and_(handled, dispatched, Case.handled_at > handled_limit), late_open),
        "handled": and_(handled, Case.handling_minutes.is_not(None)),
        "reached": Case.first_outcome.in_(REACHED),
        "satisfied": Case.first_outcome == "satisfied",
        "basic": Case.first_outcome == "basic",
        "dissatisfied": Case.first_outcome == "dissatisfied",
        "reopened": and_(Case.first_outcome.in_(REACHED), Case.reopen_count > 0),
        "open": Case.status.in_(OPEN_STATUSES),
    }


#: Figures the case list can filter by (its ``fig`` argument); the handling ones also as "<name>.original".
FIGURES = tuple(_conditions(dt.datetime.now(dt.UTC), False))
_HANDLING = ("handling_due", "on_time", "overdue")


def figure_condition(name: str, now: dt.datetime) -> ColumnElement[bool] | None:
    """Return the condition of the figure ``name`` at ``now`` (None: no such figure)."""
    base, _, variant = name.partition(".")
    if base not in FIGURES or variant not in ("", "original") or (variant and base not in _HANDLING):
        return None
    return _conditions(now, variant == "original")[base]


def not_duplicate() -> ColumnElement[bool]:
    """Return the condition leaving linked duplicates (重复件) out: their main case counts for them."""
    return ~exists(select(DuplicateLink.case_id).where(DuplicateLink.case_id == Case.id))


# -- periods -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included."""

    kind: str
    first: dt.date
    last: dt.date

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """Return the period's start and end (exclusive) as aware moments."""
        return (dt.datetime.combine(self.first, dt.time(), zone),
                dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), zone))

    def previous(self) -> Period:
        """Return the period of the same kind just before this one."""
        if self.kind == "month":
            return month_of(self.first - dt.timedelta(days=1))
        if self.kind == "quarter":
            return quarter_of(self.first - dt.timedelta(days=1))
        length = self.last - self.first + dt.timedelta(days=1)
        return Period(self.kind, self.first - length, self.first - dt.timedelta(days=1))

    def args(self) -> dict[str, str]:
        """Return the case list's date filters selecting this period's cases."""
        return {"date_from": self.first.isoformat(), "date_to": self.last.isoformat()}


def week_of(day: dt.date) -> Period:
    """Return the week (Monday to Sunday) holding ``day``."""
    first = day - dt.timedelta(days=day.weekday())
    return Period("week", first, first + dt.timedelta(days=6))


def month_of(day: dt.date) -> Period:
    """Return the calendar month holding ``day``."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return Period("month", first, following - dt.timedelta(days=1))


def quarter_of(day: dt.date) -> Period:
    """Return the quarter holding ``day``."""
    first = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    last = month_of(dt.date(first.year, first.month + 2, 1)).last
    return Period("quarter", first, last)


def period_of(kind: str, today: dt.date, first: dt.date | None = None, last: dt.date | None = None) -> Period:
    """Return the chosen period holding ``today`` (custom: ``first`` to ``last``)."""
    if kind == "custom" and first and last and first <= last and (last - first).days < MAX_CUSTOM_DAYS \
            and first.year > dt.MINYEAR + 2:
        return Period("custom", first, last)
    return {"week": week_of, "quarter": quarter_of}.get(kind, month_of)(today)


# -- tallies -------------------------------------------------------------------------------------

@dataclass
class Tally:
    """The counts of one group of cases, and the rates made of them."""

    key: Any = None
    counts: dict[str, int] = field(default_factory=dict)
    handling_minutes: int = 0

    def __getitem__(self, name: str) -> int:
        """Return one figure's count."""
        return self.counts.get(name, 0)

    @classmethod
    def regrouped(cls, parts: Sequence[Tally], position: int) -> list[Tally]:
        """Return the tallies of two-part keys (``by="a+b"``) summed by the part at ``position``."""
        groups: dict[Any, list[Tally]] = {}
        for part in parts:
            groups.setdefault(part.key[position], []).append(part)
        result = []
        for key, members in groups.items():
            merged = cls.combined(members)
            merged.key = key
            result.append(merged)
        return result

    @classmethod
    def combined(cls, parts: Sequence[Tally]) -> Tally:
        """Return the tally of several disjoint groups together (e.g. every category: the whole)."""
        counts = {name: sum(part[name] for part in parts) for name in COUNTED}
        return cls(None, counts, sum(part.handling_minutes for part in parts))

    @staticmethod
    def _share(part: float, whole: int) -> float | None:
        return part / whole if whole else None

    def rates(self, defs: Definitions) -> dict[str, float | None]:
        """Return each rate (None where nothing counts yet)."""
        weighted = sum(defs.weights.get(answer, 0.0) * self[answer] for answer in REACHED)
        resolved = sum(self[answer] for answer in defs.resolved)
        return {
            "response_rate": self._share(self["responded"], self["response_due"]),
            "on_time_rate": self._share(self["on_time"], self["handling_due"]),
            "overdue_rate": self._share(self["overdue"], self["handling_due"]),
            "resolution_rate": self._share(resolved, self["reached"]),
            "satisfaction_rate": self._share(weighted, self["reached"]),
            "reopen_rate": self._share(self["reopened"], self["reached"]),
            "on_spot_share": self._share(self["on_spot"], self["recorded"]),
            "handling_hours": (self.handling_minutes / 60 / self["handled"]) if self["handled"] else None,
        }


#: The figures a tally counts.
COUNTED = ("recorded", "on_spot", "dispatched", "response_due", "responded", "handling_due", "on_time", "overdue",
           "handled", "reached", "satisfied", "basic", "dissatisfied", "reopened")


@dataclass(frozen=True)
class Scope:
    """Which cases: those ``user`` may read, narrowed to a grid, a community, a department or a member."""

    grid_id: int | None = None
    community_id: int | None = None
    department_id: int | None = None
    handler_id: int | None = None

    def where(self, query: Select) -> Select:
        """Narrow a case query to the scope."""
        if self.grid_id is not None:
            query = query.where(Case.grid_id == self.grid_id)
        if self.community_id is not None:
            query = query.where(Case.grid_id.in_(select(Grid.id).where(Grid.community_id == self.community_id)))
        if self.department_id is not None:
            query = query.where(Case.department_id == self.department_id)
        if self.handler_id is not None:
            query = query.where(Case.handler_id == self.handler_id)
        return query

    def args(self) -> dict[str, str]:
        """Return the case list's filters selecting the scope (a community: its grids are all visible ones)."""
        pairs = (("grid", self.grid_id), ("department", self.department_id), ("handler", self.handler_id))
        return {name: str(value) for name, value in pairs if value is not None}


#: What a tally can be grouped by: the column each group is keyed by.
DIMENSIONS: dict[str, Any] = {"grid": Case.grid_id, "department": Case.department_id, "handler": Case.handler_id,
                              "category": Case.category, "channel": Case.channel}


#: The moment "now" of an aggregate query, given at execution (the columns are built once per limit).
NOW = bindparam("stats_now", type_=UTCDateTime())


@functools.cache
def _aggregate_columns(original: bool) -> tuple[Any, ...]:
    """Return the SUM columns of every counted figure and the handling minutes, "now" left as NOW."""
    conditions = _conditions(NOW, original)
    return tuple([func.coalesce(func.sum(when((conditions[name], 1), else_=0)), 0).label(name) for name in COUNTED]
                 + [func.coalesce(func.sum(when((conditions["handled"], Case.handling_minutes), else_=0)), 0)])


def _aggregates(defs: Definitions) -> tuple[Any, ...]:
    """Return the aggregate columns of the configured limit (building them costs more than running them)."""
    return _aggregate_columns(defs.extensions == "original")


def _readable(user: User | None, query: Select) -> Select:
    """Restrict to what ``user`` may read; None (the scheduler's reports) reads everything in the scope.

    The street office and community auditors read every grid of their communities (as ``visible_cases``
    says), written as an expression of ``grid_id``: a plain ``grid_id IN (...)`` makes SQLite walk the
    (grid, created) index and read every case row of 400 grids, where the numbers' indexes hold all a
    figure needs.
    """
    if user is None:
        return query
    communities = community_ids(user)
    if communities and not (user.is_admin or audits_district(user) or department_ids(user)
                            or grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER)):
        return query.where((Case.grid_id + 0).in_(select(Grid.id).where(Grid.community_id.in_(communities))))
    return visible_cases(user, query)


#: The execution option naming the index SQLite must read a query's cases by (see ``_sqlite_index``).
SQLITE_INDEX = "gridloop_sqlite_index"
_CASE_FROM = re.compile(r'FROM "case"(?=\s)')


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def _sqlite_index(conn, cursor, statement, parameters, context, executemany):
    """Name the index on SQLite (``INDEXED BY``) for the queries that ask (SQLAlchemy cannot say it).

    Over a whole area SQLite prefers a skip-scan of the (grid, created) index, reading every case row of
    the period; the numbers' covering indexes answer from the index alone, some forty times faster.
    """
    index = context.execution_options.get(SQLITE_INDEX) if context is not None else None
    if index and conn.dialect.name == "sqlite":
        statement = _CASE_FROM.sub(f'FROM "case" INDEXED BY {index}', statement, count=1)
    return statement, parameters


def _area_index(query: Select, scope: Scope, index: str) -> Select:
    """Read an area-wide query (no grid, department or member) by ``index`` on SQLite."""
    if scope.grid_id is None and scope.department_id is None and scope.handler_id is None:
        return query.execution_options(**{SQLITE_INDEX: index})
    return query


def _base(user: User | None, scope: Scope, start: dt.datetime, end: dt.datetime) -> Select:
    """Return the query of the cases counted: readable, in scope, recorded in [start, end), no duplicates."""
    query = _readable(user, select(Case.id))
    query = scope.where(query).where(Case.created_at >= start, Case.created_at < end, not_duplicate())
    return _area_index(query, scope, "ix_case_numbers")


def tallies(session: Session, user: User | None, scope: Scope, period: Period, zone: ZoneInfo, now: dt.datetime,
            defs: Definitions, by: str | None = None) -> list[Tally]:
    """Return the tallies of the cases recorded in ``period``, one per ``by`` group (None: one in all).

    ``by`` names a dimension, or two joined by "+" ("grid+handler": keys are (grid, handler) pairs).
    """
    grids = day_total_grids(user, scope)
    if grids is not NOT_BY_GRID and by in (None, "grid"):
        return _from_day_totals(session, grids, [(period.first, period.last)], zone, now, defs,
                                by_grid=by == "grid") or ([] if by else [Tally()])
    start, end = period.bounds(zone)
    columns = _aggregates(defs)
    query = _base(user, scope, start, end).with_only_columns(*columns)
    keys = [DIMENSIONS[name] for name in by.split("+")] if by else []
    if keys:
        query = query.add_columns(*keys).group_by(*keys)
    result = []
    width = len(COUNTED) + 1
    for row in session.execute(query, {"stats_now": now}):
        counts = {name: int(row[i] or 0) for i, name in enumerate(COUNTED)}
        key = (row[width] if len(keys) == 1 else tuple(row[width:])) if keys else None
        result.append(Tally(key, counts, int(row[len(COUNTED)] or 0)))
    return result or ([] if by else [Tally()])


def total(session: Session, user: User | None, scope: Scope, period: Period, zone: ZoneInfo, now: dt.datetime,
          defs: Definitions) -> Tally:
    """Return the tally of every case in scope recorded in ``period``."""
    return tallies(session, user, scope, period, zone, now, defs)[0]


def weekly(session: Session, user: User | None, scope: Scope, today: dt.date, zone: ZoneInfo, now: dt.datetime,
           defs: Definitions) -> list[tuple[Period, Tally]]:
    """Return the tallies of the last ``defs.trend_weeks`` weeks up to ``today``'s, oldest first, in one query."""
    weeks = [week_of(today - dt.timedelta(weeks=n)) for n in range(defs.trend_weeks - 1, -1, -1)]
    grids = day_total_grids(user, scope)
    if grids is not NOT_BY_GRID:
        found = {t.key: t for t in _from_day_totals(session, grids, [(w.first, w.last) for w in weeks], zone, now,
                                                    defs)}
        return [(week, found.get(i, Tally(i))) for i, week in enumerate(weeks)]
    starts = [w.bounds(zone)[0] for w in weeks]
    bucket = when(*((Case.created_at < starts[i + 1], i) for i in range(len(weeks) - 1)), else_=len(weeks) - 1)
    query = (_base(user, scope, starts[0], weeks[-1].bounds(zone)[1]).with_only_columns(*_aggregates(defs))
             .add_columns(bucket.label("week")).group_by(bucket))
    found = {}
    for row in session.execute(query, {"stats_now": now}):
        found[row[-1]] = Tally(row[-1], {name: int(row[i] or 0) for i, name in enumerate(COUNTED)},
                               int(row[len(COUNTED)] or 0))
    return [(week, found.get(i, Tally(i))) for i, week in enumerate(weeks)]


# -- day totals ----------------------------------------------------------------------------------
#
# A dashboard of an area reads its period from the day totals of each grid (``stats_day``, kept current by
# services.facts with every write to a case), not from every case: a month of 400 grids is 12,400 rows.
# The day totals hold each case's figures as no clock can change them -- its figures "as of" the beginning
# of time, when no limit had passed -- and the few cases a clock still can change (dispatched, not yet signed
# for or handled: ``UNDECIDED``) add what "now" makes of them, read from the cases themselves. So a limit
# passing while no one writes makes the figure change at once, as it does in the case list.

#: The cases a clock can still change (the condition of ``ix_case_undecided``, which models.UNDECIDED writes).
UNDECIDED = and_(Case.first_dispatched_at.is_not(None), or_(Case.responded_at.is_(None), Case.handled_at.is_(None)))
#: ``day_total_grids``' answer when what a user reads is not a set of grids (a department's cases).
NOT_BY_GRID: Any = object()


def _sum(condition: ColumnElement[bool], value: Any = 1) -> Any:
    return func.coalesce(func.sum(when((condition, value), else_=0)), 0)


def day_total_terms(row: Any = None) -> list[tuple[str, ColumnElement[Any]]]:
    """Return what one case adds to each counter of its day's total (models.DAY_COUNTERS, in order): 1 or 0,
    the handling minutes. ``row``: an alias of the case table to write them on (a trigger's NEW or OLD)."""
    extended, original = _conditions(NEVER, False), _conditions(NEVER, True)
    terms: list[tuple[str, ColumnElement[Any]]] = [(name, when((extended[name], 1), else_=0)) for name in COUNTED]
    terms += [("handling_minutes", when((extended["handled"], Case.handling_minutes), else_=0)),
              ("on_time_original", when((original["on_time"], 1), else_=0)),
              ("overdue_original", when((original["overdue"], 1), else_=0))]
    assert tuple(name for name, _ in terms) == DAY_COUNTERS
    if row is not None:
        adapter = ClauseAdapter(row)
        terms = [(name, adapter.traverse(term)) for name, term in terms]
    return terms


def day_totals_query() -> Select:
    """Return the query of every day total (local day, grid, the counters) counted from the cases."""
    sums = [func.coalesce(func.sum(term), 0).label(name) for name, term in day_total_terms()]
    return (select(Case.local_day, Case.grid_id, *sums).where(not_duplicate())
            .group_by(Case.local_day, Case.grid_id))


def day_total_grids(user: User | None, scope: Scope) -> Any:
    """Return the grids whose day totals make up what ``user`` reads of ``scope``: None (every grid), a query
    of grid ids, or NOT_BY_GRID (the scope or the user's reading is not a set of grids)."""
    if scope.department_id is not None or scope.handler_id is not None:
        return NOT_BY_GRID
    grids: Any = None
    if user is not None and not (user.is_admin or audits_district(user)):
        if department_ids(user):
            return NOT_BY_GRID
        own, communities = grid_ids(user, Role.GRID_MEMBER, Role.GRID_LEADER), community_ids(user)
        grids = select(Grid.id).where(or_(Grid.id.in_(own) if own else false(),
                                          Grid.community_id.in_(communities) if communities else false()))
    if scope.grid_id is not None:
        grids = select(Grid.id).where(Grid.id == scope.grid_id) if grids is None else \
            grids.where(Grid.id == scope.grid_id)
    if scope.community_id is not None:
        grids = (select(Grid.id) if grids is None else grids).where(Grid.community_id == scope.community_id)
    return grids


def _from_day_totals(session: Session, grids: Any, spans: Sequence[tuple[dt.date, dt.date]], zone: ZoneInfo,
                     now: dt.datetime, defs: Definitions, by_grid: bool = False) -> list[Tally]:
    """Return the tallies of consecutive local-day ``spans`` (one per span, keyed by its position; or, of a
    single span, one per grid: ``by_grid``) from the day totals, plus what ``now`` makes of undecided cases."""
    original = defs.extensions == "original"
    names = [f"{name}_original" if original and name in ("on_time", "overdue") else name for name in COUNTED]
    cuts = [last + dt.timedelta(days=1) for _, last in spans]
    day = stats_day.c.day
    totals = select(*(func.coalesce(func.sum(stats_day.c[n]), 0) for n in [*names, "handling_minutes"])).where(
        day >= spans[0][0], day < cuts[-1])
    # The undecided cases: what "now" adds to their figures as of the beginning of time.
    at_now, at_never = _conditions(NOW, original), _conditions(NEVER, original)
    changing = ("response_due", "handling_due", "overdue")
    start, end = (dt.datetime.combine(d, dt.time(), zone) for d in (spans[0][0], cuts[-1]))
    late = select(*(_sum(at_now[n]) - _sum(at_never[n]) for n in changing)).where(
        UNDECIDED, Case.created_at >= start, Case.created_at < end, not_duplicate())
    if grids is not None:  # the same grids as the totals'
        totals, late = totals.where(stats_day.c.grid_id.in_(grids)), late.where(Case.grid_id.in_(grids))
    if by_grid:
        totals, late = (totals.add_columns(stats_day.c.grid_id).group_by(stats_day.c.grid_id),
                        late.add_columns(Case.grid_id).group_by(Case.grid_id))
    elif len(spans) > 1:
        moments = [dt.datetime.combine(cut, dt.time(), zone) for cut in cuts[:-1]]
        day_span = when(*((day < cut, i) for i, cut in enumerate(cuts[:-1])), else_=len(spans) - 1)
        case_span = when(*((Case.created_at < m, i) for i, m in enumerate(moments)), else_=len(spans) - 1)
        totals, late = totals.add_columns(day_span).group_by(day_span), late.add_columns(case_span).group_by(case_span)
    keyed = by_grid or len(spans) > 1
    found: dict[Any, Tally] = {}
    for row in session.execute(totals):
        key = row[-1] if keyed else 0
        found[key] = Tally(key, {name: int(row[i]) for i, name in enumerate(COUNTED)}, int(row[len(COUNTED)]))
    for row in session.execute(late, {"stats_now": now}):
        tally = found.setdefault(row[-1] if keyed else 0, Tally(row[-1] if keyed else 0, {}, 0))
        for i, name in enumerate(changing):
            tally.counts[name] = tally[name] + int(row[i] or 0)
    if not keyed:
        found[0].key = None
        return [found[0]]
    # A grid whose cases all went (moved to another grid, linked as duplicates) keeps a day of zeros.
    return [found[k] for k in sorted(found) if not by_grid or found[k]["recorded"]]


def figure_cases(session: Session, user: User | None, scope: Scope, period: Period, zone: ZoneInfo,
                 now: dt.datetime, defs: Definitions, name: str, limit: int = 500) -> Sequence[Case]:
    """Return up to ``limit`` cases behind the figure ``name`` (the list a report prints), oldest first."""
    start, end = period.bounds(zone)
    condition = figure_condition(name + (defs.limit_suffix if name in _HANDLING else ""), now)
    query = (_base(user, scope, start, end).with_only_columns(Case).where(condition if condition is not None
                                                                          else false())
             .order_by(Case.created_at, Case.id).limit(limit))
    return session.scalars(query).all()


def scope_ids(session: Session, kind: str) -> list[int]:
    """Return the ids of every grid, department or community (the scheduler's reports)."""
    table: Any = {"grid": Grid, "department": Department, "community": Community}[kind]
    return list(session.scalars(select(table.id).order_by(table.id)))


def summary(session: Session, user: User | None, scope: Scope, period: Period, zone: ZoneInfo, now: dt.datetime,
            defs: Definitions, by: str | None = None) -> dict[str, Any]:
    """Return the figures of a period against the previous one as plain JSON (the API's /stats)."""
    def figures(tally: Tally) -> dict[str, Any]:
        return {"counts": {name: tally[name] for name in COUNTED}, "rates": tally.rates(defs)}
    previous = period.previous()
    answer: dict[str, Any] = {
        "period": {"kind": period.kind, "from": period.first.isoformat(), "to": period.last.isoformat()},
        "previous": {"from": previous.first.isoformat(), "to": previous.last.isoformat()},
        "as_of": now.isoformat(),
        "definitions": {"extensions": defs.extensions, "resolved_outcomes": list(defs.resolved),
                        "weights": dict(defs.weights), "excluded": ["linked duplicates"]},
        "total": figures(total(session, user, scope, period, zone, now, defs)),
        "previous_total": figures(total(session, user, scope, previous, zone, now, defs)),
    }
    if by is not None:
        answer["groups"] = [{"key": t.key, **figures(t)}
                            for t in ranked(tallies(session, user, scope, period, zone, now, defs, by=by), defs)]
    return answer


def kept_reports(session: Session, scope: str, scope_id: int) -> Sequence[Any]:
    """Return the kept reports of a scope, newest period first (without their contents)."""
    return session.scalars(select(Report).where(Report.scope == scope, Report.scope_id == scope_id)
                           .order_by(Report.starts_on.desc(), Report.period).limit(200)).all()


# -- today's board -------------------------------------------------------------------------------

def today_counts(session: Session, user: User | None, scope: Scope, window: DueWindow, by: str | None = None
                 ) -> dict[Any, dict[str, int]]:
    """Return open, due soon and overdue cases now (the case list's ``status``/``deadline`` filters), per group."""
    running = Case.status.in_((CaseStatus.HANDLING, CaseStatus.EXTENSION_REVIEW))
    columns = [func.count().label("open"),
               func.coalesce(func.sum(when((running & window.due_soon(Case.due_at), 1), else_=0)), 0),
               func.coalesce(func.sum(when((running & window.overdue(Case.due_at), 1), else_=0)), 0)]
    query = scope.where(_readable(user, select(*columns))).where(Case.status.in_(OPEN_STATUSES), not_duplicate())
    query = _area_index(query, scope, "ix_case_open_now")
    if by is not None:
        query = query.add_columns(DIMENSIONS[by]).group_by(DIMENSIONS[by])
    result: dict[Any, dict[str, int]] = {}
    for row in session.execute(query):
        result[row[3] if by else None] = {"open": int(row[0] or 0), "due_soon": int(row[1] or 0),
                                          "overdue": int(row[2] or 0)}
    return result


# -- names and rankings --------------------------------------------------------------------------

def grid_names(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """Return grid id -> (code, name)."""
    query = select(Grid.id, Grid.code, Grid.name).where(Grid.id.in_(list(ids)))
    return {row[0]: (row[1], row[2]) for row in session.execute(query)} if ids else {}


def department_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Return department id -> name."""
    query = select(Department.id, Department.name).where(Department.id.in_(list(ids)))
    return {row[0]: row[1] for row in session.execute(query)} if ids else {}


def user_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Return user id -> display name."""
    query = select(User.id, User.display_name).where(User.id.in_(list(ids)))
    return {row[0]: row[1] for row in session.execute(query)} if ids else {}


def ranked(groups: Sequence[Tally], defs: Definitions, rate: str = "satisfaction_rate") -> list[Tally]:
    """Order groups best first by the three rates (satisfaction, resolution, response), then by volume.

    A group with nothing counted yet sorts last.
    """
    def key(tally: Tally) -> tuple:
        r = tally.rates(defs)
        values = [r[name] for name in (rate, "resolution_rate", "response_rate")]
        return tuple(-(value if value is not None else -1.0) for value in values) + (-tally["recorded"],)
    return sorted(groups, key=key)


def filter_condition(f: Mapping[str, str], now: dt.datetime) -> Callable[[Select], Select]:
    """Return what the case list's ``fig``, ``outcome``, ``department`` and ``handler`` filters do to a query."""
    def apply(query: Select) -> Select:
        if f.get("fig"):
            condition = figure_condition(f["fig"], now)
            query = query.where(false() if condition is None else condition, not_duplicate())
        if f.get("outcome"):
            query = query.where(Case.first_outcome.in_([v for v in f["outcome"].split(",") if v]))
        for name, column in (("department", Case.department_id), ("handler", Case.handler_id)):
            value = f.get(name, "")
            if value:
                query = query.where(column == int(value) if value.isascii() and value.isdigit()
                                    and len(value) < 10 else false())
        return query
    return apply


__all__ = ["COUNTED", "DIMENSIONS", "FIGURES", "NEVER", "NOT_BY_GRID", "PERIOD_KINDS", "REACHED", "UNDECIDED",
           "Definitions", "Period", "Scope", "Tally", "day_total_grids", "day_total_terms", "day_totals_query",
           "department_names", "figure_cases", "figure_condition", "filter_condition", "grid_names", "kept_reports",
           "month_of", "not_duplicate", "period_of", "quarter_of", "ranked", "scope_ids", "summary", "tallies",
           "today_counts", "total", "user_names", "week_of", "weekly"]
