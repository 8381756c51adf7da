"""Mobile desk sessions (流动办公桌): the list per grid, planning, the session page (open, record requests,
close) and its printable summary."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import labels
from ..codes import Channel, Disposition
from ..db import get_session
from ..errors import DomainError
from ..forms import (
    NO_CHOICE,
    ActionForm,
    DeskCloseForm,
    DeskPlanForm,
    IntakeForm,
    add_service_error,
    build_command,
    choices,
)
from ..models import DeskSession, Grid, Role
from ..permissions import Permission, PermissionDenied, can, grid_ids
from ..queries import places
from ..services import assign, desk
from ..services.commands import CloseDeskSession, PlanDeskSessions, RecordCase
from . import services

bp = Blueprint("desk", __name__, url_prefix="/desk")


def _session(session_id: int) -> DeskSession:
    """Load a desk session the user may see: staff of its grid (or its own staff), admins."""
    row = get_session().get(DeskSession, session_id) or abort(404)
    if not (current_user.is_admin or row.grid_id in grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)
            or desk.may_work(current_user, row)):
        abort(403)
    return row


@bp.route("/")
@login_required
def index():
    """List the desk sessions of the user's grids, per grid, from a week ago on."""
    db = get_session()
    mine = grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)
    if current_user.is_admin:
        mine |= set(places.all_grid_ids(db))
    grids = sorted(places.grids_by_id(db, mine).values(), key=lambda g: g.code)
    today = assign.local_today(services())
    since = today.fromordinal(today.toordinal() - 7)
    sessions = places.desk_sessions(db, mine, since=since)
    per_grid = {g.id: [s for s in sessions if s.grid_id == g.id] for g in grids}
    counts = places.desk_counts(db, [s.id for s in sessions], desk.RESOLVED)
    return render_template("desk/index.html", grids=grids, per_grid=per_grid, today=today, counts=counts,
                           leads=lambda grid: can(current_user, Permission.GRID_MANAGE, grid))


def _plan_form(grid: Grid) -> DeskPlanForm:
    """The planning form with the grid's buildings (in order: the route) and staff."""
    form = DeskPlanForm()
    form.building_ids.choices = choices([(b.id, b.name) for b in grid.buildings])
    people = {u.id: u for role in (Role.GRID_LEADER, Role.GRID_MEMBER)
              for u in places.members_of(get_session(), grid.id, role)}
    form.staff_ids.choices = choices([(u.id, u.display_name) for u in people.values()])
    return form


@bp.route("/grids/<int:grid_id>/plan", methods=["GET", "POST"])
@login_required
def plan(grid_id: int):
    """A leader plans sessions: one, or weekly on a route of compounds in turn."""
    db = get_session()
    grid = db.get(Grid, grid_id) or abort(404)
    if not can(current_user, Permission.GRID_MANAGE, grid):
        abort(403)
    form = _plan_form(grid)
    if not form.is_submitted():
        form.first_day.data = assign.local_today(services())  # type: ignore[assignment]  # a DateField
        return render_template("desk/plan.html", grid=grid, form=form)
    command = build_command(form, PlanDeskSessions)
    if command is not None:
        # Keep the route in the grid's order of compounds (the order the form lists them).
        order = {b.id: n for n, b in enumerate(grid.buildings)}
        command = command.model_copy(update={"building_ids": sorted(command.building_ids,
                                                                    key=lambda i: order.get(i, len(order)))})
        try:
            planned = desk.plan_sessions(services(), current_user, grid, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            db.rollback()
            add_service_error(form, exc)
        else:
            flash(_("%(count)d desk sessions planned.", count=len(planned)), "success")
            return redirect(url_for("desk.index"))
    return render_template("desk/plan.html", grid=grid, form=form), 422


def _intake_form(row: DeskSession) -> IntakeForm:
    """The intake form for the session: the grid's buildings, the place prefilled, the channel fixed."""
    form = IntakeForm()
    form.building_id.choices = choices([(NO_CHOICE, "—")] + [(b.id, b.name) for b in row.grid.buildings])
    form.category.choices = choices(labels.category_choices())
    if not form.is_submitted():
        form.building_id.data = row.building_id or NO_CHOICE
        form.address_detail.data = row.address
    return form


def _render(row: DeskSession, intake: IntakeForm | None = None, close: DeskCloseForm | None = None, status: int = 200):
    """Render the session page."""
    entries = places.desk_entries(get_session(), row.id)
    return render_template("desk/session.html", desk_session=row, entries=entries,
                           summary=desk.summarize(list(entries)), intake=intake or _intake_form(row),
                           close_form=close or DeskCloseForm(), action=ActionForm(),
                           may_work=desk.may_work(current_user, row), today=assign.local_today(services())), status


@bp.route("/<int:session_id>")
@login_required
def session_page(session_id: int):
    """A session: its place, staff and requests; open it, record requests, close it."""
    return _render(_session(session_id))


@bp.route("/<int:session_id>/open", methods=["POST"])
@login_required
def open_(session_id: int):
    """Open the session on its day."""
    row = _session(session_id)
    if not ActionForm().validate():
        return _render(row, status=400)
    try:
        desk.open_session(services(), current_user, row)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("desk.session_page", session_id=row.id))
    flash(_("Session opened: record the requests as they come."), "success")
    return redirect(url_for("desk.session_page", session_id=row.id))


@bp.route("/<int:session_id>/record", methods=["POST"])
@login_required
def record(session_id: int):
    """Record a request taken at the session: the intake form, channel mobile desk."""
    row = _session(session_id)
    form = _intake_form(row)
    command = build_command(form, RecordCase, channel=Channel.MOBILE_DESK,
                            answered_on_spot=form.disposition.data == Disposition.ON_SPOT)
    if form.disposition.data not in set(Disposition):
        form.disposition.errors = [_("Choose whether it was answered on the spot or needs handling.")]
        command = None
    if command is not None:
        try:
            case = desk.record_request(services(), current_user, row, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            add_service_error(form, exc)
        else:
            flash(_("Case %(number)s recorded.", number=case.number), "success")
            return redirect(url_for("desk.session_page", session_id=row.id) + "#taken")
    return _render(_session(session_id), intake=form, status=422)


@bp.route("/<int:session_id>/close", methods=["POST"])
@login_required
def close(session_id: int):
    """Close the session with a note; its summary follows."""
    row = _session(session_id)
    form = DeskCloseForm()
    command = build_command(form, CloseDeskSession)
    if command is not None:
        try:
            desk.close_session(services(), current_user, row, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            form.form_errors.append(exc.localized())
        else:
            flash(_("Session closed."), "success")
            return redirect(url_for("desk.summary", session_id=row.id))
    return _render(_session(session_id), close=form, status=422)


@bp.route("/<int:session_id>/summary")
@login_required
def summary(session_id: int):
    """The session's printable summary: taken, answered on the spot, sent on, resolved since."""
    row = _session(session_id)
    entries = places.desk_entries(get_session(), row.id)
    return render_template("desk/summary.html", desk_session=row, entries=entries,
                           summary=desk.summarize(list(entries)),
                           people=places.users_by_id(get_session(), [i for i in (row.opened_by_id, row.closed_by_id)
                                                                    if i is not None]))
