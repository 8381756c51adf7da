"""The task page, shared by the blueprints that act on one task: tasks (complete, claim, sign for) and
leader (reassign, release). A helper module, not a blueprint: load a task (404, 403), build its form
and the reassign form, render the page.
"""

from __future__ import annotations

from flask import abort, render_template
from flask_babel import gettext as _
from flask_login import current_user

from .. import clock, queries
from ..db import get_session
from ..forms import ClaimForm, ReassignForm, RecallForm, TaskForm, choices, task_form
from ..models import Role, Task, TaskStatus
from ..permissions import Permission, can
from ..services import assign
from ..services.cases import extended_due, propose_deadline_class, suggested_department_code
from ..services.locks import find_locked_task
from . import services

#: The reply templates (常用语) each task form offers, by form key: (their use, the text field they fill).
REPLY_FIELDS = {"record_reply": ("reply", "reply"), "handle": ("result", "text"), "callback": ("callback", "note")}


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
        # A form sent to be saved needs its choices only to check the pick against: the loads and the
        # suggestion label a page shown (render() adds them if the form comes back with a problem).
        _dispatch_choices(task, form, labelled=not form.is_submitted())
    return form


def _dispatch_choices(task: Task, form: TaskForm, *, labelled: bool = True) -> None:
    """Fill the dispatch form: each candidate with their open and overdue work, the proposed limit and department."""
    db, config, now = get_session(), services().config, clock.now()
    members = queries.members_of(db, task.grid_id)
    counts = queries.open_counts(db, [u.id for u in members], now) if labelled else {}
    form.handler_id.choices = choices([(0, "—")] + [
        (u.id, _load_label(u.display_name, counts.get(u.id)) if labelled else u.display_name) for u in members])
    suggested = queries.department_by_code(db, suggested_department_code(config, task.case.category)) \
        if labelled else None
    on_hand = queries.department_counts(db, now) if labelled else {}
    form.department_id.choices = choices([(0, "—")] + [
        (d.id, (_load_label(d.name, on_hand.get(d.id)) if labelled else d.name)
         + (_(" (suggested for this category)") if d == suggested else ""))
        for d in queries.departments(db)])
    if not form.is_submitted():
        form.deadline_class.data = str(propose_deadline_class(config, task.case))
        if suggested is not None:
            form.department_id.data = suggested.id


def _load_label(name: str, counts: tuple[int, int] | None) -> str:
    """Name a dispatch candidate with the work they have open and overdue now."""
    open_, overdue = counts or (0, 0)
    return _("%(name)s — %(open)s open, %(overdue)s overdue", name=name, open=open_, overdue=overdue)


def reply_templates(task: Task) -> list:
    """Return the reply templates the task's text field offers (its grid's, for its category), or none."""
    if task.form_key not in REPLY_FIELDS or task.status != TaskStatus.OPEN:
        return []
    return list(queries.reply_templates(get_session(), [task.grid_id], task.case.category,
                                        REPLY_FIELDS[task.form_key][0]))


def render(task: Task, form: TaskForm, status: int = 200, reassign: ReassignForm | None = None,
           recall_form: RecallForm | None = None):
    """Render the task page for its form key; leaders also get the reassign form."""
    if task.form_key == "dispatch" and form.is_submitted():  # back with a problem: label the choices again
        _dispatch_choices(task, form)
    if reassign is None and task.status == TaskStatus.OPEN and can(current_user, Permission.TASK_REASSIGN, task):
        reassign = reassign_form(task)
    may_release = can(current_user, Permission.TASK_RELEASE, task)
    return render_template(f"tasks/{task.form_key}.html", task=task, case=task.case, form=form,
                           may_act=can(current_user, Permission.TASK_COMPLETE, task),
                           claim_form=ClaimForm(version=str(task.case.version)), reassign_form=reassign,
                           may_release=may_release, notes=queries.case_notes(get_session(), task.case_id),
                           replies=reply_templates(task), reply_field=REPLY_FIELDS.get(task.form_key, ("", ""))[1],
                           recall_form=recall_form or recall_form_for(task),
                           extended_due=extended_due(services(), task.case)
                           if task.form_key == "review_extension" else None), status


def recall_form_for(task: Task) -> RecallForm | None:
    """Return the recall (撤回) form for a grid leader on an open department handling task, else None."""
    if task.status != TaskStatus.OPEN or task.form_key != "handle" or task.role != Role.DEPARTMENT_HANDLER \
            or not can(current_user, Permission.GRID_MANAGE, task.case.grid):
        return None
    form = RecallForm()
    if not form.is_submitted():
        form.version.data = str(task.case.version)
    return form


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
