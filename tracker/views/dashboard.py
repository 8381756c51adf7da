"""The numbers: a leader's grid, the street office's and auditors' area, reports and hotspots.

Every figure on these pages links to the case list filtered to exactly its cases (``queries.stats``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import clock, labels
from ..db import get_session
from ..errors import N_, DomainError
from ..forms import ProactiveCaseForm, ReportForm, add_service_error
from ..models import Community, Department, Grid, Hotspot, Report, ReportPeriod, ReportScope, Role, User
from ..permissions import Permission, audits_district, can, community_ids, department_ids, grid_ids
from ..queries import hotspots, stats
from ..services import hotspots as hotspot_service, reports
from ..services.commands import InvalidCommand, StatsQuery
from . import due_window, local_zone, services

bp = Blueprint("dashboard", __name__, url_prefix="/numbers")


# -- who sees what -------------------------------------------------------------------------------

def sees_area(user: User) -> bool:
    """Return whether the user has an area dashboard: street office, auditors, admins."""
    return user.is_admin or audits_district(user) or bool(community_ids(user))


def sees_grid(user: User, grid: Grid) -> bool:
    """Return whether the user may see a grid's dashboard: its leaders, and whoever sees its area."""
    return (user.is_admin or audits_district(user) or grid.id in grid_ids(user, Role.GRID_LEADER)
            or grid.community_id in community_ids(user))


def defs() -> stats.Definitions:
    """Return the configured definitions of the figures."""
    return stats.Definitions.from_config(current_app.config["GRIDLOOP"])


def today() -> dt.date:
    """Return today's local date."""
    return clock.now().astimezone(local_zone()).date()


#: The period picker's parameters, by the label of the field each is chosen in.
PICKER = (("period", N_("Period")), ("from", N_("From")), ("to", N_("To")))


def chosen_period(args: Mapping[str, str]) -> tuple[stats.Period, list[str]]:
    """Return the period the page asks for (this week, month or quarter, or custom days; default: month) and what
    is wrong with the request, each problem named by its field: with any, the page shows this month.

    The rules are the API's (``StatsQuery``); a field left empty in the picker is not given.
    """
    asked = {name: args[name] for name, _label in PICKER if args.get(name, "").strip()}
    try:
        return StatsQuery.from_args(asked).period_on(today()), []
    except InvalidCommand as exc:
        problems = [_("%(field)s: %(problem)s", field=_(dict(PICKER)[e.field]), problem=e.localized())
                    for e in exc.errors]
        return stats.month_of(today()), problems


# -- what a dashboard shows ----------------------------------------------------------------------

#: The rates a dashboard shows, each with the figures (numerator, denominator) its cases are listed by.
RATES = (("response_rate", "responded", "response_due"), ("on_time_rate", "on_time", "handling_due"),
         ("overdue_rate", "overdue", "handling_due"), ("resolution_rate", "resolved", "reached"),
         ("satisfaction_rate", "", "reached"), ("reopen_rate", "reopened", "reached"),
         ("on_spot_share", "on_spot", "recorded"), ("handling_hours", "", "handled"))


class Links:
    """Build the case-list links of one period and scope."""

    def __init__(self, period: stats.Period, scope: Mapping[str, str], definitions: stats.Definitions):
        """Remember the period's and scope's filters (the list's address is looked up once: a ranking of
        400 grids has over a thousand links)."""
        self.base = {**period.args(), **scope}
        self.defs = definitions
        self.list = url_for("cases.index")

    def figure(self, name: str, **more: Any) -> str:
        """Return the link to the cases behind the figure ``name``."""
        args: dict[str, Any] = {**self.base, **{k: str(v) for k, v in more.items()}}
        if name == "resolved":
            args.update(fig="reached", outcome=",".join(self.defs.resolved))
        else:
            args["fig"] = name + (self.defs.limit_suffix if name in ("handling_due", "on_time", "overdue") else "")
        return f"{self.list}?{urlencode(args)}"

    def now(self, which: str, **more: Any) -> str:
        """Return the link to today's open (``which`` "open"), due-soon or overdue cases, any period."""
        args: dict[str, Any] = {k: str(v) for k, v in more.items()}
        args["fig"] = "open"
        if which != "open":
            args["deadline"] = which
        return f"{self.list}?{urlencode(args)}"


def count_of(tally: stats.Tally, name: str, definitions: stats.Definitions) -> int:
    """Return the count behind a rate's link (``resolved`` sums the configured answers)."""
    if name == "resolved":
        return sum(tally[answer] for answer in definitions.resolved)
    return tally[name]


def overview(user: User, scope: stats.Scope, period: stats.Period, by: str | None = None) -> dict[str, Any]:
    """Return what every dashboard shows for ``scope``: now, the period against the previous, weeks, mixes.

    The period's cases are read grouped by (category, channel, department): those groupings, and the whole,
    are sums of that; the ``by`` groups (``groups``) are read on their own -- per grid, from the day totals.
    """
    db, zone, window, definitions = get_session(), local_zone(), due_window(), defs()
    now = window.now
    mixes = stats.tallies(db, user, scope, period, zone, now, definitions, by="category+channel+department")
    categories = stats.Tally.regrouped(mixes, 0)
    current = stats.Tally.combined(categories)
    previous = stats.total(db, user, scope, period.previous(), zone, now, definitions)
    now_by = stats.today_counts(db, user, scope, window, by=by)
    return {
        "period": period, "previous": period.previous(), "defs": definitions, "rates": RATES,
        # Open cases now, per group; the whole is their sum (one query).
        "now_by": now_by,
        "today": {name: sum(counts[name] for counts in now_by.values()) for name in ("open", "due_soon", "overdue")},
        "current": current, "before": previous,
        "current_rates": current.rates(definitions), "before_rates": previous.rates(definitions),
        "weeks": stats.weekly(db, user, scope, today(), zone, now, definitions),
        "categories": sorted(categories, key=lambda t: -t["recorded"]),
        "channels": sorted(stats.Tally.regrouped(mixes, 1), key=lambda t: -t["recorded"]),
        "groups": stats.tallies(db, user, scope, period, zone, now, definitions, by=by) if by else [],
        "by_department": [t for t in stats.Tally.regrouped(mixes, 2) if t.key is not None],
        "links": Links(period, scope.args(), definitions), "count_of": count_of,
        "rate_label": lambda name: labels.label(labels.RATES, name),
        "channel_label": lambda code: labels.label(labels.CHANNELS, code),
        "can_open_hotspot": lambda h: can(current_user, Permission.GRID_MANAGE, h.building.grid),
    }


# -- pages ---------------------------------------------------------------------------------------

@bp.route("/")
@login_required
def home():
    """Open the user's dashboard: the area's for the street office and auditors, else the first led grid's."""
    if sees_area(current_user):
        return redirect(url_for("dashboard.area", **request.args))
    led = sorted(grid_ids(current_user, Role.GRID_LEADER))
    if not led:
        abort(403, _("The numbers are for grid leaders, the street office and auditors."))
    return redirect(url_for("dashboard.grid", grid_id=led[0], **request.args))


@bp.route("/grids/<int:grid_id>")
@login_required
def grid(grid_id: int):
    """A grid's dashboard: its figures and each member's."""
    db = get_session()
    grid = db.get(Grid, grid_id) or abort(404)
    if not sees_grid(current_user, grid):
        abort(403)
    period, period_problems = chosen_period(request.args)
    scope = stats.Scope(grid_id=grid.id)
    data = overview(current_user, scope, period, by="handler")
    members = stats.ranked([m for m in data["groups"] if m.key is not None], data["defs"])
    now_by_member = data["now_by"]
    return render_template("dashboard/grid.html", grid=grid, members=members, now_by_member=now_by_member,
                           names=stats.user_names(db, [m.key for m in members] + list(now_by_member)),
                           led=stats.grid_names(db, sorted(grid_ids(current_user, Role.GRID_LEADER))),
                           hotspots=_hotspots(grid_ids=[grid.id]), period_problems=period_problems, **data)


@bp.route("/area")
@login_required
def area():
    """The street office's and auditors' dashboard: every grid and department of their area, ranked."""
    if not sees_area(current_user):
        abort(403)
    db = get_session()
    period, period_problems = chosen_period(request.args)
    data = overview(current_user, stats.Scope(), period, by="grid")
    definitions = data["defs"]
    grids = stats.ranked(data["groups"], definitions)
    departments = stats.ranked(data["by_department"], definitions)
    now_by_grid = data["now_by"]
    names = stats.grid_names(db, sorted({g.key for g in grids} | set(now_by_grid)))
    return render_template("dashboard/area.html", grid_rows=_grid_rows(grids, names, now_by_grid, data["links"],
                                                                       definitions),
                           departments=departments,
                           department_names=stats.department_names(db, [d.key for d in departments]),
                           hotspots=_hotspots(), period_problems=period_problems, **data)


def percent(value: float | None) -> str:
    """Return a rate as the pages show it ("—" when nothing counts yet)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _grid_rows(grids: list[stats.Tally], names: Mapping[int, tuple[str, str]], now: Mapping[Any, Mapping[str, int]],
               links: Links, definitions: stats.Definitions) -> list[dict[str, Any]]:
    """Return the ranking's rows ready to show: hundreds of grids render fast from plain values (no url_for or
    rates in the template; its one macro per row renders 400 in about 14 ms)."""
    grid_page = url_for("dashboard.grid", grid_id=0).removesuffix("0")
    query = ("?" + urlencode(request.args)) if request.args else ""
    rows = []
    for tally in grids:
        rates = tally.rates(definitions)
        code, name = names.get(tally.key, ("?", "?"))
        satisfaction = rates["satisfaction_rate"]
        rows.append({"code": code, "name": name, "page": f"{grid_page}{tally.key}{query}",
                     "recorded": tally["recorded"], "recorded_link": links.figure("recorded", grid=tally.key),
                     "response": percent(rates["response_rate"]), "on_time": percent(rates["on_time_rate"]),
                     "resolution": percent(rates["resolution_rate"]), "satisfaction": percent(satisfaction),
                     "bar": None if satisfaction is None else f"{min(max(satisfaction, 0.0), 1.0) * 100:.1f}",
                     "overdue": tally["overdue"], "overdue_link": links.figure("overdue", grid=tally.key),
                     "overdue_now": now.get(tally.key, {}).get("overdue", 0),
                     "overdue_now_link": links.now("overdue", grid=tally.key)})
    return rows


def _hotspots(grid_ids: list[int] | None = None) -> Sequence[Hotspot]:
    """Return the current hotspots the user may see."""
    return hotspots.current(get_session(), current_user, clock.now(), current_app.config["GRIDLOOP"], grid_ids)


# -- reports -------------------------------------------------------------------------------------

def sees_report(user: User, scope: str, scope_id: int) -> bool:
    """Return whether the user may read a report of this scope (as the dashboards: leaders, the area)."""
    db = get_session()
    if user.is_admin or audits_district(user):
        return True
    if scope == ReportScope.GRID:
        grid = db.get(Grid, scope_id)
        return grid is not None and sees_grid(user, grid)
    if scope == ReportScope.COMMUNITY:
        return scope_id in community_ids(user)
    if scope == ReportScope.DEPARTMENT:
        return bool(community_ids(user)) or scope_id in department_ids(user)
    return False


def _scope_name(scope: str, scope_id: int) -> str:
    """Return the name of a report's grid, department or community."""
    table: Any = {"grid": Grid, "department": Department, "community": Community}.get(scope)
    row = get_session().get(table, scope_id) if table is not None else None
    return (f"{row.code} {row.name}" if isinstance(row, Grid) else row.name) if row is not None else "?"


@bp.route("/reports", methods=["GET", "POST"], endpoint="reports")
@login_required
def reports_page():
    """The kept reports of a scope, and a form producing one now."""
    scope = request.args.get("scope") or request.form.get("scope") or ""
    scope_id = request.args.get("scope_id", type=int) or request.form.get("scope_id", type=int) or 0
    if not scope:
        return _area_reports()
    if scope not in set(ReportScope) or not sees_report(current_user, scope, scope_id):
        abort(403)
    form = ReportForm(scope=scope, scope_id=str(scope_id), day=today())
    if form.validate_on_submit():
        if form.period.data not in set(ReportPeriod):
            abort(400)
        report = reports.produce(get_session(), ReportPeriod(form.period.data), ReportScope(scope), scope_id,
                                 form.day.data, local_zone(), due_window().now, defs(), labels.report_text(),
                                 by=current_user)
        flash(_("Report produced."), "success")
        return redirect(url_for("dashboard.report", report_id=report.id))
    kept = stats.kept_reports(get_session(), scope, scope_id)
    return render_template("reports/index.html", form=form, kept=kept, scope=scope, scope_id=scope_id,
                           scope_name=_scope_name(scope, scope_id)), 422 if form.is_submitted() else 200


def _area_reports():
    """Open the reports of the user's first scope: a community for the area, else a led grid."""
    if communities := sorted(community_ids(current_user)):
        return redirect(url_for("dashboard.reports", scope="community", scope_id=communities[0]))
    if led := sorted(grid_ids(current_user, Role.GRID_LEADER)):
        return redirect(url_for("dashboard.reports", scope="grid", scope_id=led[0]))
    abort(403)


def _report(report_id: int) -> Report:
    """Load a kept report the user may read: 404 if missing, 403 otherwise."""
    report = get_session().get(Report, report_id) or abort(404)
    if not sees_report(current_user, report.scope, report.scope_id):
        abort(403)
    return report


@bp.route("/reports/<int:report_id>")
@login_required
def report(report_id: int):
    """The printable (A4) page of a kept report."""
    kept = _report(report_id)
    figures = json.loads(kept.figures)
    return render_template("reports/report.html", report=kept, figures=figures,
                           scope_name=_scope_name(kept.scope, kept.scope_id), rates=reports.RATES,
                           rate_label=lambda name: labels.label(labels.RATES, name))


@bp.route("/reports/<int:report_id>.xlsx")
@login_required
def report_xlsx(report_id: int):
    """Download a kept report's workbook."""
    kept = _report(report_id)
    name = f"gridloop-{kept.scope}-{kept.scope_id}-{kept.period}-{kept.starts_on.isoformat()}.xlsx"
    # The scheduler keeps the figures only: the workbook is built from them, in the reader's language.
    book = kept.xlsx if kept.xlsx is not None else reports.workbook(json.loads(kept.figures), labels.report_text())
    return Response(book, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- hotspots ------------------------------------------------------------------------------------

@bp.route("/hotspots/<int:hotspot_id>", methods=["GET", "POST"])
@login_required
def hotspot(hotspot_id: int):
    """A hotspot's cases, and the form opening its one proactive case (主动发现)."""
    spot = get_session().get(Hotspot, hotspot_id) or abort(404)
    grid = spot.building.grid
    if not sees_grid(current_user, grid):
        abort(403)
    manages = can(current_user, Permission.GRID_MANAGE, grid)
    numbers = "、".join(c.number for c in spot.cases)
    form = ProactiveCaseForm(resident_name=current_user.display_name, resident_phone=current_user.phone,
                             description=_("Proactive case for the hotspot: %(numbers)s.", numbers=numbers))
    if request.method == "POST":
        if not manages:
            abort(403)
        command = form.to_command(spot.building_id, spot.category)
        if command is not None:
            try:
                case = hotspot_service.open_proactive_case(services(), current_user, spot, command)
            except DomainError as exc:
                add_service_error(form, exc)
            else:
                flash(_("Proactive case %(number)s opened.", number=case.number), "success")
                return redirect(url_for("cases.detail", case_id=case.id))
    return render_template("dashboard/hotspot.html", hotspot=spot, form=form, manages=manages), \
        422 if form.errors or form.form_errors else 200
