"""Case intake, list with filters, and detail with the audit timeline."""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import Select, func, or_, select

from .. import clock, labels
from ..db import get_session
from ..errors import DomainError
from ..forms import NO_CHOICE, IntakeForm, add_service_error, choices
from ..models import AuditEvent, Building, Case, CaseStatus, Department, Grid, Role, Task, TaskStatus, User
from ..permissions import (Permission, PermissionDenied, audits_district, can, community_ids, department_ids,
                           grid_ids, pool_filter, visible_cases)
from ..services.cases import open_case
from ..web import services

bp = Blueprint("cases", __name__, url_prefix="/cases")
#: The case list counts matching cases up to this many and shows "10,000+" beyond.
COUNT_CAP = 10_000


def _intake_form() -> IntakeForm:
    """Build the intake form with the buildings of the user's grids."""
    form = IntakeForm()
    grids = grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)
    buildings = get_session().scalars(select(Building).join(Building.grid).where(Building.grid_id.in_(grids))
                                      .order_by(Grid.code, Building.name)).all()
    form.building_id.choices = choices([(NO_CHOICE, "—")] + [(b.id, f"{b.grid.code} · {b.name}") for b in buildings])
    form.category.choices = choices(labels.category_choices())
    return form


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    """Record a resident's request."""
    form = _intake_form()
    if not grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER):
        abort(403, _("Only grid members and grid leaders record cases."))
    intake = form.to_command() if form.validate_on_submit() else None
    if intake is not None:
        try:
            case = open_case(services(), current_user, intake)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            add_service_error(form, exc)
            return render_template("cases/new.html", form=form), 422
        flash(_("Case %(number)s recorded.", number=case.number), "success")
        return redirect(url_for("cases.detail", case_id=case.id))
    status = 422 if form.is_submitted() else 200
    return render_template("cases/new.html", form=form), status


def filters() -> dict:
    """Read list filters from the query string (NUL characters dropped: no database stores them)."""
    args = request.args
    return {k: args.get(k, "").replace("\x00", "").strip()
            for k in ("status", "grid", "category", "channel", "date_from", "date_to", "q", "deadline")}


def _parse_date(value: str) -> dt.datetime | None:
    """Parse YYYY-MM-DD into a UTC midnight, or None (also for dates a day can't be added to)."""
    try:
        day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return day if day.year < 9999 else None


def _grid_filter(value: str) -> int | None:
    """Return the grid id a filter names, or None (ASCII digits of a sane size only: '²' is a digit too)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def filtered_cases(f: dict) -> Select:
    """Return the query for the cases the user may read, narrowed by the list filters ``f``."""
    query = visible_cases(current_user, select(Case))
    if f["status"]:
        query = query.where(Case.status == f["status"])
    if (grid := _grid_filter(f["grid"])) is not None:
        query = query.where(Case.grid_id == grid)
    if f["category"]:
        query = query.where(Case.category == f["category"])
    if f["channel"]:
        query = query.where(Case.channel == f["channel"])
    if start := _parse_date(f["date_from"]):
        query = query.where(Case.created_at >= start)
    if end := _parse_date(f["date_to"]):
        query = query.where(Case.created_at < end + dt.timedelta(days=1))
    if f["deadline"] in labels.DEADLINE_FILTERS and f["deadline"]:
        query = _deadline_filter(query, f["deadline"])
    if f["q"]:
        like = f"%{f['q']}%"
        query = query.where(Case.number.like(like) | Case.resident_name.like(like) | Case.description.like(like))
    return query


@bp.route("/")
@login_required
def index():
    """List the cases the user may read, filtered and paginated."""
    f = filters()
    query = filtered_cases(f)
    db = get_session()
    size = current_app.config["GRIDLOOP"]["app"]["page_size"]
    page = min(max(1, request.args.get("page", 1, type=int)), 100_000)
    # Find the page's ids first (index-only), then load those rows: sorting wide rows is what costs.
    order = (Case.created_at.desc(), Case.id.desc())
    ids = db.scalars(query.with_only_columns(Case.id).order_by(*order).offset((page - 1) * size)
                     .limit(size + 1)).all()
    rows = db.scalars(select(Case).where(Case.id.in_(ids)).order_by(*order)).all() if ids else []
    # Counting millions of rows on every page view is the slowest part of a list; stop at a cap.
    counted = query.with_only_columns(Case.id).limit(COUNT_CAP + 1)  # index-only where possible
    total = db.scalar(select(func.count()).select_from(counted.subquery()))
    pages = -(-total // size) if total <= COUNT_CAP else None
    return render_template("cases/index.html", cases=rows[:size], filters=f, page=page, pages=pages,
                           has_next=len(rows) > size, grid_options=_grid_options(f["grid"]),
                           total=total if total <= COUNT_CAP else f"{COUNT_CAP:,}+")


def _deadline_filter(query, which: str):
    """Restrict to overdue cases, cases due soon, or overdue tasks I must act on."""
    now = clock.now()
    running = Case.status.in_((CaseStatus.HANDLING, CaseStatus.EXTENSION_REVIEW))
    if which == "overdue":
        return query.where(running, Case.due_at < now)
    if which == "due_soon":
        soon = now + dt.timedelta(hours=current_app.config["GRIDLOOP"]["deadlines"]["due_soon_hours"])
        return query.where(running, Case.due_at >= now, Case.due_at < soon)
    mine = select(Task.case_id).where(
        Task.status == TaskStatus.OPEN, Task.due_at < now,
        or_(Task.assignee_id == current_user.id, Task.assignee_id.is_(None) & pool_filter(current_user)))
    return query.where(Case.id.in_(mine))


def _grid_options(selected: str) -> Markup:
    """The grid filter's <option>s. A district or community auditor sees hundreds of grids: built
    here from plain rows, this is a few times cheaper than a template loop over ORM objects."""
    option = Markup('<option value="{}"{}>{} {}</option>')
    rows = get_session().execute(visible_grids().with_only_columns(Grid.id, Grid.code, Grid.name))
    return Markup("").join(option.format(i, Markup(" selected") if str(i) == selected else "", code, name)
                           for i, code, name in rows)


def visible_grids():
    """Return a query for the grids the user may filter the case list by (from roles, not from cases)."""
    query = select(Grid).order_by(Grid.code)
    if current_user.is_admin or audits_district(current_user):
        return query
    clauses = [Grid.id.in_(grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER))]
    if communities := community_ids(current_user):
        clauses.append(Grid.community_id.in_(communities))
    if departments := department_ids(current_user):
        clauses.append(Grid.id.in_(select(Case.grid_id).where(Case.department_id.in_(departments)).distinct()))
    return query.where(or_(*clauses))


@bp.route("/<int:case_id>")
@login_required
def detail(case_id: int):
    """Show a case: its data, current tasks, outcome and audit timeline."""
    db = get_session()
    case = db.get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    events = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)).all()
    timeline = [(e, json.loads(e.changes)) for e in events]
    return render_template("cases/detail.html", case=case, timeline=timeline, names=_referenced_names(timeline),
                           open_tasks=[t for t in case.tasks if t.status == "open"])


def _referenced_names(timeline) -> dict[str, dict[int, str]]:
    """Look up the people, grids, departments and buildings that audit changes refer to by id."""
    ids: dict[str, set[int]] = {"handler_id": set(), "department_id": set(), "building_id": set(), "grid_id": set(),
                                "created_by_id": set()}
    for _event, changes in timeline:
        for field, pair in changes.items():
            if field in ids:
                ids[field].update(v for v in pair if isinstance(v, int))
    db = get_session()
    people = dict(db.execute(select(User.id, User.display_name)
                             .where(User.id.in_(ids["handler_id"] | ids["created_by_id"]))).all())
    return {
        "handler_id": people, "created_by_id": people,
        "grid_id": dict(db.execute(select(Grid.id, Grid.name).where(Grid.id.in_(ids["grid_id"]))).all()),
        "department_id": dict(db.execute(select(Department.id, Department.name)
                                         .where(Department.id.in_(ids["department_id"]))).all()),
        "building_id": dict(db.execute(select(Building.id, Building.name).where(Building.id.in_(ids["building_id"]))).all()),
    }
