"""Weekly and monthly reports (周报 / 月报) of a grid, a department or a community, kept for download.

A report holds the figures of its period as computed when produced (JSON, which the printable page
shows) and the same as an XLSX workbook: the rates against the previous period, the ranking inside
the scope (a community's grids and departments, a grid's members, a department's grids) and the
list of overdue cases. The scheduler produces last week's and last month's reports of every grid,
department and community on the first working day of the week and of the month; anyone who may see
a scope can produce one on demand (the newest replaces one of the same period).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Case, Report, ReportPeriod, ReportScope, User, utcnow
from ..queries import stats
from ..workdays import WorkCalendar

#: The rates a report shows, in order.
RATES = ("response_rate", "on_time_rate", "overdue_rate", "resolution_rate", "satisfaction_rate", "reopen_rate",
         "on_spot_share", "handling_hours")
#: What each scope is ranked by inside it.
RANKED_BY = {ReportScope.COMMUNITY: ("grid", "department"), ReportScope.GRID: ("handler",),
             ReportScope.DEPARTMENT: ("grid",)}


def period_for(kind: ReportPeriod, day: dt.date) -> stats.Period:
    """Return the week or month holding ``day``."""
    return stats.week_of(day) if kind == ReportPeriod.WEEK else stats.month_of(day)


def scope_of(kind: ReportScope, scope_id: int) -> stats.Scope:
    """Return the cases a report of ``kind`` counts."""
    return {ReportScope.GRID: stats.Scope(grid_id=scope_id),
            ReportScope.DEPARTMENT: stats.Scope(department_id=scope_id),
            ReportScope.COMMUNITY: stats.Scope(community_id=scope_id)}[kind]


def _row(tally: stats.Tally, defs: stats.Definitions) -> dict[str, Any]:
    """Return a tally as plain JSON: its counts and rates."""
    return {"key": tally.key, "counts": {name: tally[name] for name in stats.COUNTED},
            "minutes": tally.handling_minutes, "rates": tally.rates(defs)}


def compute(session: Session, kind: ReportPeriod, scope: ReportScope, scope_id: int, day: dt.date, zone: ZoneInfo,
            now: dt.datetime, defs: stats.Definitions) -> dict[str, Any]:
    """Return the figures of the report of ``scope`` for the period holding ``day``, as of ``now``."""
    period, cases = period_for(kind, day), scope_of(scope, scope_id)
    total = stats.total(session, None, cases, period, zone, now, defs)
    before = stats.total(session, None, cases, period.previous(), zone, now, defs)
    rankings = {}
    for by in RANKED_BY[scope]:
        groups = [t for t in stats.tallies(session, None, cases, period, zone, now, defs, by=by) if t.key is not None]
        ranked = stats.ranked(groups, defs)
        names: Mapping[int, Any] = {"grid": lambda ids: {k: f"{c} {n}" for k, (c, n) in
                                                         stats.grid_names(session, ids).items()},
                                    "department": lambda ids: stats.department_names(session, ids),
                                    "handler": lambda ids: stats.user_names(session, ids)}[by]([t.key for t in ranked])
        rankings[by] = [{**_row(t, defs), "name": names.get(t.key, "?")} for t in ranked]
    overdue = stats.figure_cases(session, None, cases, period, zone, now, defs, "overdue")
    return _figures(period, now, scope, scope_id, defs, total, before, rankings, [_overdue(c, zone) for c in overdue])


def compute_grids(session: Session, kind: ReportPeriod, day: dt.date, zone: ZoneInfo, now: dt.datetime,
                  defs: stats.Definitions) -> dict[int, dict[str, Any]]:
    """Return the figures of every grid's report at once (as ``compute`` gives one): a handful of queries
    over the whole area instead of a handful per grid (the scheduler's 400 grids)."""
    period, everything = period_for(kind, day), stats.Scope()
    current = {t.key: t for t in stats.tallies(session, None, everything, period, zone, now, defs, by="grid")}
    before = {t.key: t for t in stats.tallies(session, None, everything, period.previous(), zone, now, defs,
                                              by="grid")}
    members: dict[int, list[stats.Tally]] = {}
    for t in stats.tallies(session, None, everything, period, zone, now, defs, by="grid+handler"):
        if t.key[1] is not None:
            members.setdefault(t.key[0], []).append(stats.Tally(t.key[1], t.counts, t.handling_minutes))
    names = stats.user_names(session, sorted({t.key for group in members.values() for t in group}))
    overdue: dict[int, list[Case]] = {}
    for case in stats.figure_cases(session, None, everything, period, zone, now, defs, "overdue", limit=100_000):
        overdue.setdefault(case.grid_id, []).append(case)
    figures = {}
    for grid_id in stats.scope_ids(session, "grid"):
        ranked = stats.ranked(members.get(grid_id, []), defs)
        figures[grid_id] = _figures(period, now, ReportScope.GRID, grid_id, defs,
                                    current.get(grid_id, stats.Tally()), before.get(grid_id, stats.Tally()),
                                    {"handler": [{**_row(t, defs), "name": names.get(t.key, "?")} for t in ranked]},
                                    [_overdue(c, zone) for c in overdue.get(grid_id, [])[:500]])
    return figures


def _figures(period: stats.Period, now: dt.datetime, scope: ReportScope, scope_id: int, defs: stats.Definitions,
             total: stats.Tally, before: stats.Tally, rankings: dict[str, list], overdue: list) -> dict[str, Any]:
    """Return a report's figures as kept (JSON)."""
    return {"period": {"kind": period.kind, "first": period.first.isoformat(), "last": period.last.isoformat()},
            "previous": {"first": period.previous().first.isoformat(), "last": period.previous().last.isoformat()},
            "as_of": now.isoformat(), "scope": str(scope), "scope_id": scope_id,
            "extensions": defs.extensions, "total": {**_row(total, defs), "key": None},
            "before": {**_row(before, defs), "key": None},
            "rankings": rankings, "overdue": overdue}


def _overdue(case: Case, zone: ZoneInfo) -> dict[str, Any]:
    """Return an overdue case as a report lists it."""
    def local(moment: dt.datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""
    return {"id": case.id, "number": case.number, "grid": case.grid.code, "category": case.category,
            "created": local(case.created_at), "due": local(case.due_at), "handled": local(case.handled_at),
            "status": str(case.status)}


def workbook(figures: Mapping[str, Any], text: Mapping[str, str]) -> bytes:
    """Return the report as an XLSX workbook; ``text`` holds the headings in the reader's language."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = text["rates"][:31]
    sheet.append([text["title"]])
    sheet.append([text["period"], figures["period"]["first"], figures["period"]["last"]])
    sheet.append([])
    sheet.append([text["figure"], text["this_period"], text["previous_period"]])
    for name in RATES:
        sheet.append([text[name], figures["total"]["rates"][name], figures["before"]["rates"][name]])
    sheet.append([text["recorded"], figures["total"]["counts"].get("recorded", 0),
                  figures["before"]["counts"].get("recorded", 0)])
    sheet.append([text["overdue"], figures["total"]["counts"].get("overdue", 0),
                  figures["before"]["counts"].get("overdue", 0)])
    for row in sheet.iter_rows(min_row=5, max_row=4 + len(RATES), min_col=2, max_col=3):
        for cell in row:
            if not str(sheet.cell(cell.row, 1).value).startswith(text["handling_hours"]):
                cell.number_format = "0.0%"
            else:
                cell.number_format = "0.0"
    sheet["A1"].font = Font(bold=True, size=14)
    for by, rows in figures["rankings"].items():
        ranking = book.create_sheet(text[f"by_{by}"][:31])
        ranking.append(["#", text["name"], text["recorded"], *(text[n] for n in RATES[:6]), text["overdue"]])
        for place, row in enumerate(rows, 1):
            ranking.append([place, row["name"], row["counts"].get("recorded", 0),
                            *(row["rates"][n] for n in RATES[:6]), row["counts"].get("overdue", 0)])
        for cells in ranking.iter_rows(min_row=2, min_col=4, max_col=9):
            for cell in cells:
                cell.number_format = "0.0%"
    listing = book.create_sheet(text["overdue_cases"][:31])
    listing.append([text["number"], text["grid"], text["category"], text["created"], text["due"], text["handled"]])
    for case in figures["overdue"]:
        listing.append([case["number"], case["grid"], case["category"], case["created"], case["due"], case["handled"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def produce(session: Session, kind: ReportPeriod, scope: ReportScope, scope_id: int, day: dt.date, zone: ZoneInfo,
            now: dt.datetime, defs: stats.Definitions, text: Mapping[str, str] | None, by: User | None = None,
            figures: dict[str, Any] | None = None) -> Report:
    """Compute (unless given) and keep the report of ``scope`` for the period holding ``day``, replacing an
    older one; ``text`` None leaves the workbook to be built from the kept figures when first downloaded."""
    figures = figures or compute(session, kind, scope, scope_id, day, zone, now, defs)
    first = dt.date.fromisoformat(figures["period"]["first"])
    report = session.scalar(select(Report).where(Report.period == kind, Report.scope == scope,
                                                 Report.scope_id == scope_id, Report.starts_on == first))
    if report is None:
        report = Report(period=kind, scope=scope, scope_id=scope_id, starts_on=first)
        session.add(report)
    report.ends_on = dt.date.fromisoformat(figures["period"]["last"])
    report.created_at, report.created_by_id = utcnow(), by.id if by else None
    report.figures = json.dumps(figures, ensure_ascii=False)
    report.xlsx = workbook(figures, text) if text is not None else None
    session.flush()
    return report


def first_working_day(calendar: WorkCalendar, kind: ReportPeriod, day: dt.date) -> bool:
    """Return whether ``day`` is the first working day of its week or month."""
    start = (day - dt.timedelta(days=day.weekday())) if kind == ReportPeriod.WEEK else day.replace(day=1)
    first = start if calendar.is_working_day(start) else calendar.next_working_day(start)
    return day == first


def produce_due(session: Session, calendar: WorkCalendar, today: dt.date, now: dt.datetime,
                defs: stats.Definitions) -> int:
    """Produce the reports due on ``today`` (the scheduler): the last period's of every scope, once each.

    On the first working day of a week, last week's; of a month, last month's. A report already kept
    for that period is left as it is, so a second scheduler or a restart produces nothing twice.
    """
    made = 0
    for kind, previous_day in ((ReportPeriod.WEEK, today - dt.timedelta(days=7)),
                               (ReportPeriod.MONTH, today.replace(day=1) - dt.timedelta(days=1))):
        if not first_working_day(calendar, kind, today):
            continue
        made += produce_all(session, kind, previous_day, calendar.zone, now, defs)
    return made


def produce_all(session: Session, kind: ReportPeriod, day: dt.date, zone: ZoneInfo, now: dt.datetime,
                defs: stats.Definitions) -> int:
    """Keep the reports of every grid, department and community for the period holding ``day`` that are
    not kept yet; return how many. Their workbooks are built from the kept figures when downloaded."""
    first = period_for(kind, day).first
    kept = {(row[0], row[1]) for row in session.execute(select(Report.scope, Report.scope_id).where(
        Report.period == kind, Report.starts_on == first))}
    grids = compute_grids(session, kind, day, zone, now, defs)
    made = 0
    for scope in ReportScope:
        for scope_id in stats.scope_ids(session, scope.value):
            if (scope, scope_id) not in kept:
                produce(session, kind, scope, scope_id, day, zone, now, defs, None,
                        figures=grids.get(scope_id) if scope == ReportScope.GRID else None)
                made += 1
    return made


__all__ = ["RANKED_BY", "RATES", "compute", "compute_grids", "first_working_day", "period_for", "produce",
           "produce_all", "produce_due", "scope_of", "workbook"]
