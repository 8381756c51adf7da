"""Leaders move work: the workload board, reassign and release, bulk handover, stand-in cover."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from .. import queries
from ..db import get_session
from ..errors import ConflictError, DomainError
from ..forms import NO_CHOICE, ClaimForm, CoverForm, HandoverForm, add_service_error, build_command, choices
from ..models import Cover, Grid, Role, Task
from ..permissions import Permission, PermissionDenied, can, grid_ids
from ..services import assign
from ..services.cases import recall_case
from ..services.commands import AddCover, HandOverTasks, ReassignTask, Recall
from . import due_window, services, task_page

bp = Blueprint("leader", __name__)


def _grid(grid_id: int) -> Grid:
    """Load a grid the user leads: 404 if missing, 403 otherwise."""
    grid = get_session().get(Grid, grid_id) or abort(404)
    if not can(current_user, Permission.GRID_MANAGE, grid):
        abort(403)
    return grid


@bp.route("/board")
@login_required
def board_home():
    """Open the board of the (first) grid the user leads."""
    grids = sorted(grid_ids(current_user, Role.GRID_LEADER))
    if current_user.is_admin and not grids:
        grids = queries.all_grid_ids(get_session())
    if not grids:
        abort(403, _("The workload board is for grid leaders."))
    return redirect(url_for("leader.board", grid_id=grids[0]))


@bp.route("/grids/<int:grid_id>/board")
@login_required
def board(grid_id: int):
    """Workload per member (open, due soon, overdue), the pool, decisions waiting, stand-ins."""
    grid = _grid(grid_id)
    return _board_page(grid, _cover_form(grid))


def _board_page(grid: Grid, cover_form: CoverForm, status: int = 200):
    """Render the board; a refused stand-in form comes back filled in, with its errors."""
    db = get_session()
    board = queries.workload(db, grid.id, due_window())
    covers = queries.current_covers(db, grid.id, assign.local_today(services()))
    grids = queries.led_grids(db, current_user)
    return render_template("leader/board.html", grid=grid, grids=grids, people=board.people, counts=board.counts,
                           pool=board.pool, decisions=board.decisions, kinds=_decision_kinds(board.decisions),
                           covers=covers, cover_form=cover_form, end_form=FlaskForm()), status


def _decision_kinds(tasks: list[Task]) -> dict[str, str]:
    """Name what each leader-lane task waits for: a return (退单), an extension, supervision, ..."""
    kinds = {}
    redispatch = [t.case_id for t in tasks if t.form_key == "dispatch" and t.case.dispatch_to]
    back = queries.came_back(get_session(), redispatch)
    for task in tasks:
        if task.form_key == "dispatch" and task.case.dispatch_to:
            kinds[task.id] = back.get(task.case_id, "return")
        elif task.form_key == "review_extension":
            kinds[task.id] = "extension"
        else:
            kinds[task.id] = task.form_key
    return kinds


def _cover_form(grid: Grid) -> CoverForm:
    """Build the stand-in form with the grid's members."""
    form = CoverForm()
    members = queries.members_of(get_session(), grid.id)
    people = choices([(NO_CHOICE, "—")] + [(u.id, u.display_name) for u in members])
    form.member_id.choices = people
    form.stand_in_id.choices = people
    return form


@bp.post("/grids/<int:grid_id>/covers")
@login_required
def add_cover(grid_id: int):
    """Arrange a stand-in cover."""
    grid = _grid(grid_id)
    form = _cover_form(grid)
    command = build_command(form, AddCover)
    if command is not None:
        try:
            cover = assign.add_cover(services(), current_user, grid.id, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            add_service_error(form, exc)
        else:
            flash(_("From %(start)s to %(end)s new work for %(member)s goes to %(stand_in)s.",
                    start=cover.starts_on, end=cover.ends_on, member=cover.member.display_name,
                    stand_in=cover.stand_in.display_name), "success")
            return redirect(url_for("leader.board", grid_id=grid.id))
    return _board_page(grid, form, 422)


@bp.post("/covers/<int:cover_id>/end")
@login_required
def end_cover(cover_id: int):
    """End a stand-in cover now."""
    cover = get_session().get(Cover, cover_id) or abort(404)
    grid = _grid(cover.grid_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    assign.end_cover(services(), current_user, cover.id)
    flash(_("Stand-in cover ended: new work goes to %(member)s again.", member=cover.member.display_name), "success")
    return redirect(url_for("leader.board", grid_id=grid.id))


# -- handover ------------------------------------------------------------------------------------

def _handover_form(grid: Grid) -> HandoverForm:
    """Build the handover form with the grid's members."""
    form = HandoverForm()
    members = [(u.id, u.display_name) for u in queries.members_of(get_session(), grid.id)]
    form.member_id.choices = choices([(0, "—")] + members)
    form.to_ids.choices = choices(members)
    if not form.is_submitted() and request.args.get("member", type=int):
        form.member_id.data = request.args.get("member", type=int)
    return form


@bp.route("/grids/<int:grid_id>/handover", methods=["GET", "POST"])
@login_required
def handover(grid_id: int):
    """Hand one member's open tasks to others: fill in, preview every move, confirm."""
    grid = _grid(grid_id)
    form = _handover_form(grid)
    if not form.is_submitted():
        return render_template("leader/handover.html", grid=grid, form=form, plan=None)
    command = build_command(form, HandOverTasks)
    if command is None:
        return render_template("leader/handover.html", grid=grid, form=form, plan=None), 422
    svc = services()
    try:
        if request.form.get("confirm") and command.fingerprint:
            plan = assign.hand_over(svc, current_user, grid.id, command)
            flash(_("%(count)s tasks of %(member)s handed over.", count=len(plan.moves),
                    member=plan.member.display_name), "success")
            return redirect(url_for("leader.board", grid_id=grid.id))
        plan = assign.plan_handover(svc, current_user, grid.id, command)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        form.fingerprint.data = ""
        add_service_error(form, exc)
        return render_template("leader/handover.html", grid=grid, form=form, plan=None), (
            409 if isinstance(exc, ConflictError) else 422)
    form.fingerprint.data = plan.fingerprint
    return render_template("leader/handover.html", grid=grid, form=form, plan=plan)


# -- one task --------------------------------------------------------------------------------------

@bp.post("/tasks/<task_id>/reassign")
@login_required
def reassign(task_id: str):
    """Give an open task to a named person with a reason."""
    task = task_page.load(task_id)
    if not can(current_user, Permission.TASK_REASSIGN, task):
        abort(403)
    form = task_page.reassign_form(task)
    command = build_command(form, ReassignTask)
    if command is not None:
        try:
            assign.reassign(services(), current_user, task.id, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            add_service_error(form, exc)
            status = 409 if isinstance(exc, ConflictError) else 422
        else:
            flash(_("Task reassigned to %(who)s.", who=task.assignee.display_name), "success")
            away = queries.away_today(get_session(), task.grid_id, assign.local_today(services())).get(task.assignee_id)
            if away is not None:
                flash(_("%(who)s is away until %(until)s (stand-in: %(stand_in)s); the task waits for them all the "
                        "same: reassign it if it cannot wait.", who=task.assignee.display_name,
                        until=away.ends_on.isoformat(), stand_in=away.stand_in.display_name), "warning")
            return redirect(url_for("tasks.detail", task_id=task.id))
    else:
        status = 422
    task = task_page.load(task_id)
    return task_page.render(task, task_page.form_for(task), status, reassign=form)


@bp.post("/tasks/<task_id>/recall")
@login_required
def recall(task_id: str):
    """Recall (撤回) a case from the department handling it: back to dispatch, the department told why."""
    task = task_page.load(task_id)
    form = task_page.recall_form_for(task)
    if form is None:
        abort(403)
    command = build_command(form, Recall)
    if command is not None:
        try:
            case = recall_case(services(), current_user, task.id, command)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            get_session().rollback()
            add_service_error(form, exc)
            status = 409 if isinstance(exc, ConflictError) else 422
        else:
            flash(_("Case %(number)s recalled: it waits for dispatch again.", number=case.number), "success")
            return redirect(url_for("cases.detail", case_id=case.id))
    else:
        status = 422
    task = task_page.load(task_id)
    return task_page.render(task, task_page.form_for(task), status, recall_form=form)


@bp.post("/tasks/<task_id>/release")
@login_required
def release(task_id: str):
    """Put a claimed task back in its pool."""
    task = task_page.load(task_id)
    if task.assignee_id is not None and not can(current_user, Permission.TASK_RELEASE, task):
        abort(403)
    form = ClaimForm()
    if not form.validate():
        abort(400)
    try:
        assign.release(services(), current_user, task.id, int(form.version.data))
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        task = task_page.load(task_id)
        page_form = task_page.form_for(task)
        page_form.form_errors.append(exc.localized())
        return task_page.render(task, page_form, 409 if isinstance(exc, ConflictError) else 422)
    flash(_("Task put back in the pool."), "success")
    return redirect(url_for("tasks.detail", task_id=task.id))


__all__ = ["bp"]
