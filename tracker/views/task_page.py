"""The task page, shared by the blueprints that act on one task: tasks (complete, claim, sign for) and
leader (reassign, release). A helper module, not a blueprint: load a task (404, 403), build its form
and the reassign form, render the page.
"""

from __future__ import annotations

from flask import abort, render_template
from flask_babel import gettext as _
from flask_login import current_user

from .. import queries
from ..db import get_session
from ..forms import ClaimForm, ReassignForm, TaskForm, choices, task_form
from ..models import Task, TaskStatus
from ..permissions import Permission, can
from ..services import assign
from ..services.locks import find_locked_task
from . import services


def load(task_id: str, *, for_change: bool = False) -> Task:
    """Load a task the user may read: 404 if missing, 403 if out of scope.

    ``for_change``: with its case locked, in the one query the service changing it takes (locks.lock_task).
    """
    task = (find_locked_task(services(), task_id) if for_change else get_session().get(Task, task_id)) or abort(404)
    if not can(current_user, Permission.TASK_READ, task):
        abort(403)
    return task


def form_for(task: Task) -> TaskForm:
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


def render(task: Task, form: TaskForm, status: int = 200, reassign: ReassignForm | None = None):
    """Render the task page for its form key; leaders also get the reassign form."""
    if reassign is None and task.status == TaskStatus.OPEN and can(current_user, Permission.TASK_REASSIGN, task):
        reassign = reassign_form(task)
    may_release = can(current_user, Permission.TASK_RELEASE, task)
    return render_template(f"tasks/{task.form_key}.html", task=task, case=task.case, form=form,
                           may_act=can(current_user, Permission.TASK_COMPLETE, task),
                           claim_form=ClaimForm(version=str(task.case.version)), reassign_form=reassign,
                           may_release=may_release), status


def reassign_form(task: Task) -> ReassignForm:
    """Build the reassign form: the people of the task's lane in its grid."""
    form = ReassignForm()
    if not form.is_submitted():
        form.version.data = str(task.case.version)
    people = queries.members_of(get_session(), task.grid_id, task.role)
    away = queries.away_today(get_session(), task.grid_id, assign.local_today(services()))
    form.assignee_id.choices = choices([(0, "—")] + [
        (u.id, _("%(name)s (away until %(until)s)", name=u.display_name, until=away[u.id].ends_on.isoformat())
         if u.id in away else u.display_name) for u in people if u.id != task.assignee_id])
    return form
