"""One page per task type: show the task's form and complete it; claim pool tasks."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..db import get_session
from ..errors import ConflictError, DomainError
from ..forms import ClaimForm, add_service_error, build_command
from ..models import TaskStatus
from ..permissions import Permission, PermissionDenied, can
from ..services.cases import claim_task, complete_task, sign_for
from . import services, task_page

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@bp.route("/<task_id>", methods=["GET", "POST"])
@login_required
def detail(task_id: str):
    """Show the task form; on POST complete the task through the service."""
    task = task_page.load(task_id, for_change=request.method == "POST")
    form = task_page.form_for(task)
    if not form.is_submitted():
        return task_page.render(task, form)
    if task.status == TaskStatus.OPEN and not can(current_user, Permission.TASK_COMPLETE, task):
        abort(403)
    command = build_command(form, form.command)
    if command is None:
        return task_page.render(task, form, 422)
    try:
        case = complete_task(services(), current_user, task.id, int(form.version.data), command)
    except PermissionDenied:
        abort(403)
    except ConflictError as exc:
        get_session().rollback()
        form.form_errors.append(exc.localized())
        return task_page.render(task_page.load(task_id), form, 409)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return task_page.render(task_page.load(task_id), form, 422)
    flash(_("%(task)s done for case %(number)s.", task=task.title, number=case.number), "success")
    return redirect(url_for("cases.detail", case_id=case.id))


def _version_action(task_id: str, action, done_message: str):
    """POST a form that carries only the case version (claim, sign for) to ``action``; back to the task."""
    task = task_page.load(task_id)
    form = ClaimForm()
    if not form.validate():
        abort(400)
    try:
        action(services(), current_user, task.id, int(form.version.data))
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        task = task_page.load(task_id)
        page_form = task_page.form_for(task)
        page_form.form_errors.append(exc.localized())
        return task_page.render(task, page_form, 409 if isinstance(exc, ConflictError) else 422)
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
