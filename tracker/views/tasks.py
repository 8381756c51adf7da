"""One page per task type: show the task's form and complete it; claim pool tasks."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import queries
from ..db import get_session
from ..errors import ConflictError, DomainError
from ..forms import ClaimForm, ReassignForm, TaskForm, add_service_error, build_command, choices, task_form
from ..models import Task, TaskStatus
from ..permissions import Permission, PermissionDenied, can
from ..services.cases import claim_task, complete_task, sign_for
from . import services

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _load(task_id: str) -> Task:
    """Load a task the user may read: 404 if missing, 403 if out of scope."""
    task = get_session().get(Task, task_id) or abort(404)
    if not can(current_user, Permission.TASK_READ, task):
        abort(403)
    return task


def _form_for(task: Task) -> TaskForm:
    """Build the task's own form, with choices that depend on the case."""
    form = task_form(task.form_key)()
    if not form.is_submitted():
        form.version.data = str(task.case.version)
    if task.form_key == "dispatch":
        db = get_session()
        members = queries.members_of(db, task.grid_id)
        form.handler_id.choices = choices([(0, "—")] + [(u.id, u.display_name) for u in members])
        departments = queries.departments(db)
        form.department_id.choices = choices([(0, "—")] + [(d.id, d.name) for d in departments])
    return form


def _render(task: Task, form: TaskForm, status: int = 200, reassign: ReassignForm | None = None):
    """Render the task page for its form key; leaders also get the reassign form."""
    if reassign is None and task.status == TaskStatus.OPEN and can(current_user, Permission.TASK_REASSIGN, task):
        reassign = _reassign_form(task)
    may_release = can(current_user, Permission.TASK_RELEASE, task)
    return render_template(f"tasks/{task.form_key}.html", task=task, case=task.case, form=form,
                           may_act=can(current_user, Permission.TASK_COMPLETE, task),
                           claim_form=ClaimForm(version=str(task.case.version)), reassign_form=reassign,
                           may_release=may_release), status


def _reassign_form(task: Task) -> ReassignForm:
    """Build the reassign form: the people of the task's lane in its grid."""
    form = ReassignForm()
    if not form.is_submitted():
        form.version.data = str(task.case.version)
    people = queries.members_of(get_session(), task.grid_id, task.role)
    form.assignee_id.choices = choices([(0, "—")] + [(u.id, u.display_name) for u in people
                                                     if u.id != task.assignee_id])
    return form


@bp.route("/<task_id>", methods=["GET", "POST"])
@login_required
def detail(task_id: str):
    """Show the task form; on POST complete the task through the service."""
    task = _load(task_id)
    form = _form_for(task)
    if not form.is_submitted():
        return _render(task, form)
    if task.status == TaskStatus.OPEN and not can(current_user, Permission.TASK_COMPLETE, task):
        abort(403)
    command = build_command(form, form.command) if form.validate() else None
    if command is None:
        return _render(task, form, 422)
    try:
        case = complete_task(services(), current_user, task.id, int(form.version.data), command)
    except PermissionDenied:
        abort(403)
    except ConflictError as exc:
        get_session().rollback()
        form.form_errors.append(exc.localized())
        return _render(_load(task_id), form, 409)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return _render(_load(task_id), form, 422)
    flash(_("%(task)s done for case %(number)s.", task=task.title, number=case.number), "success")
    return redirect(url_for("cases.detail", case_id=case.id))


def _version_action(task_id: str, action, done_message: str):
    """POST a form that carries only the case version (claim, sign for) to ``action``; back to the task."""
    task = _load(task_id)
    form = ClaimForm()
    if not form.validate():
        abort(400)
    try:
        action(services(), current_user, task.id, int(form.version.data))
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        task = _load(task_id)
        page_form = _form_for(task)
        page_form.form_errors.append(exc.localized())
        return _render(task, page_form, 409 if isinstance(exc, ConflictError) else 422)
    flash(done_message, "success")
    return redirect(url_for("tasks.detail", task_id=task_id))


@bp.post("/<task_id>/claim")
@login_required
def claim(task_id: str):
    """Take a pool task into my inbox."""
    return _version_action(task_id, claim_task, _("Task claimed: it is in your inbox now."))


@bp.post("/<task_id>/sign")
@login_required
def sign(task_id: str):
    """Sign for (签收) a handling task."""
    return _version_action(task_id, sign_for, _("Signed for: the leader can see the case reached you."))
