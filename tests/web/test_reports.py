"""Reports (周报 / 月报): produced on demand and by the scheduler on the first working day, kept for download."""

from __future__ import annotations

import datetime as dt
import io
import json

import time_machine
from openpyxl import load_workbook
from sqlalchemy import func, select

from tests.web.test_stats import NOW, _numbers, build_scenario, local, user_grid
from tracker import jobs
from tracker.models import Report, ReportPeriod
from tracker.services.reports import first_working_day
from tracker.workdays import WorkCalendar


def test_a_grid_leader_produces_a_monthly_report_and_downloads_it(app, db, login):
    scenario = build_scenario(app, db)
    grid_a = user_grid(app, "GA")
    with time_machine.travel(NOW, tick=False):
        leader = login("leader_a")
        page = leader.get(f"/numbers/reports?scope=grid&scope_id={grid_a}")
        assert page.status_code == 200
        produced = leader.submit("/numbers/reports", {"scope": "grid", "scope_id": str(grid_a), "period": "month",
                                                      "day": "2026-10-15"},
                                 page=f"/numbers/reports?scope=grid&scope_id={grid_a}")
        assert produced.status_code == 302, produced.get_data(as_text=True)[:2000]
        report = db.scalars(select(Report)).one()
        assert (report.period, report.scope, report.scope_id) == ("month", "grid", grid_a)
        assert (report.starts_on, report.ends_on) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
        figures = json.loads(report.figures)
        # October's cases of grid A: B, C, D and F (A was recorded on 30 Sep, E is a duplicate).
        assert figures["total"]["counts"]["recorded"] == 4
        assert figures["total"]["counts"]["overdue"] == 1
        assert [c["number"] for c in figures["overdue"]] == [_numbers(db, scenario)["C"]]
        assert [row["name"] for row in figures["rankings"]["handler"]] == ["网格员甲"]
        printable = leader.get(produced.location).get_data(as_text=True)
        assert _numbers(db, scenario)["C"] in printable and "dashboard.css" in printable
        download = leader.get(f"/numbers/reports/{report.id}.xlsx")
        assert download.status_code == 200 and download.mimetype.endswith("spreadsheetml.sheet")
        book = load_workbook(io.BytesIO(download.data))
        assert len(book.sheetnames) == 3
        rates = book[book.sheetnames[0]]
        assert rates.cell(5, 2).value == figures["total"]["rates"]["response_rate"]
        overdue = book[book.sheetnames[2]]
        assert overdue.cell(2, 1).value == _numbers(db, scenario)["C"]
        # Produced again, it replaces the kept one (one report per scope and period).
        leader.submit("/numbers/reports", {"scope": "grid", "scope_id": str(grid_a), "period": "month",
                                           "day": "2026-10-02"}, page=f"/numbers/reports?scope=grid&scope_id={grid_a}")
        assert db.scalar(select(func.count()).select_from(Report)) == 1
        # A bad day is named; nothing is produced.
        bad = leader.submit("/numbers/reports", {"scope": "grid", "scope_id": str(grid_a), "period": "month",
                                                 "day": "31/10/2026"}, page=f"/numbers/reports?scope=grid&scope_id={grid_a}")
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.get_data(as_text=True)
        # Others' reports are not theirs to read or produce.
        assert login("leader_b").get(f"/numbers/reports/{report.id}").status_code == 403
        assert login("member_a").get(f"/numbers/reports/{report.id}.xlsx").status_code == 403
        assert login("leader_b").get(f"/numbers/reports?scope=grid&scope_id={grid_a}").status_code == 403
        assert login("street").get(f"/numbers/reports/{report.id}").status_code == 200


def test_the_scheduler_produces_last_periods_reports_on_the_first_working_day_once(app, db):
    # Monday 2 Nov 2026: the first working day of the week and of the month.
    with time_machine.travel(local(2026, 11, 2, 7, 5), tick=False):
        made = jobs.produce_reports(app)
        # Two grids, one department, one community; a week and a month each.
        assert made == 8
        assert jobs.produce_reports(app) == 0  # a restart or a second scheduler: nothing twice
    kept = db.execute(select(Report.period, Report.scope, Report.starts_on)).all()
    assert {(p, s) for p, s, _ in kept} == {(p, s) for p in ("week", "month")
                                             for s in ("grid", "department", "community")}
    assert {d for p, _, d in kept if p == "month"} == {dt.date(2026, 10, 1)}
    assert {d for p, _, d in kept if p == "week"} == {dt.date(2026, 10, 26)}
    with time_machine.travel(local(2026, 11, 3, 7, 5), tick=False):
        assert jobs.produce_reports(app) == 0


def test_first_working_day_skips_holidays():
    calendar = WorkCalendar()
    # National Day: 1-7 Oct 2026 are holidays, so October's first working day is Thursday 8 Oct.
    assert not first_working_day(calendar, ReportPeriod.MONTH, dt.date(2026, 10, 1))
    assert first_working_day(calendar, ReportPeriod.MONTH, dt.date(2026, 10, 8))
    assert first_working_day(calendar, ReportPeriod.WEEK, dt.date(2026, 10, 8))
    assert not first_working_day(calendar, ReportPeriod.WEEK, dt.date(2026, 10, 9))
    assert first_working_day(calendar, ReportPeriod.WEEK, dt.date(2026, 11, 2))


def test_every_grids_report_at_once_equals_each_computed_alone(app, db, login):
    from tests.web.test_stats import SH
    from tracker.db import get_session
    from tracker.models import ReportScope
    from tracker.queries import stats
    from tracker.services import reports
    build_scenario(app, db)
    with app.app_context():
        session = get_session()
        at_once = reports.compute_grids(session, ReportPeriod.MONTH, dt.date(2026, 10, 15), SH, NOW,
                                        stats.Definitions())
        for grid_id, figures in at_once.items():
            alone = reports.compute(session, ReportPeriod.MONTH, ReportScope.GRID, grid_id, dt.date(2026, 10, 15), SH,
                                    NOW, stats.Definitions())
            assert figures == alone
    assert at_once[user_grid(app, "GA")]["total"]["counts"]["recorded"] == 4
    # A report the scheduler kept has its figures only; its workbook is built when downloaded.
    with time_machine.travel(local(2026, 11, 2, 7, 5), tick=False):
        jobs.produce_reports(app)
        report = db.scalar(select(Report).where(Report.scope == "grid", Report.scope_id == user_grid(app, "GA"),
                                                Report.period == "month"))
        download = login("leader_a").get(f"/numbers/reports/{report.id}.xlsx")
    book = load_workbook(io.BytesIO(download.data))
    assert book[book.sheetnames[0]].cell(5, 2).value == json.loads(report.figures)["total"]["rates"]["response_rate"]
