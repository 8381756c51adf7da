"""Reply templates (常用语): a grid's leaders list, add, change and delete them."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from .. import labels, queries
from ..db import get_session
from ..errors import DomainError, NotFound
from ..forms import NO_CHOICE, ReplyTemplateForm, add_service_error, build_command, choices
from ..models import ReplyTemplate, Role
from ..permissions import PermissionDenied, grid_ids
from ..services import replies
from ..services.commands import SaveReplyTemplate
from . import services

bp = Blueprint("replies", __name__, url_prefix="/replies")


@bp.app_context_processor
def _intake_templates() -> dict:
    """Give templates ``intake_reply_templates()``: the on-the-spot replies of the user's grids (the intake form)."""
    def intake_reply_templates() -> list[ReplyTemplate]:
        grids = sorted(grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER))
        return list(queries.reply_templates(get_session(), grids, use="reply")) if grids else []
    return {"intake_reply_templates": intake_reply_templates}


def _led() -> list[int]:
    """Return the grids the user leads (every grid for an administrator), or refuse the page."""
    led = sorted(grid_ids(current_user, Role.GRID_LEADER))
    if not led and current_user.is_admin:
        led = queries.all_grid_ids(get_session())
    if not led:
        abort(403, _("Reply templates are kept by grid leaders."))
    return led


def _form(led: list[int], template: ReplyTemplate | None = None) -> ReplyTemplateForm:
    """Build the template form with the grids the user leads and the categories."""
    form = ReplyTemplateForm(obj=template)
    names = {i: f"{code} · {name}" for i, code, name in queries.grid_options(get_session(), current_user)}
    form.grid_id.choices = choices([(NO_CHOICE, "—")] + [(i, names.get(i, f"#{i}")) for i in led]) \
        if len(led) > 1 else choices([(i, names.get(i, f"#{i}")) for i in led])
    form.category.choices = choices([("", _("Every category"))] + labels.category_choices())
    return form


def _load(template_id: int) -> ReplyTemplate:
    """Load a template of a grid the user leads: 404, 403."""
    try:
        return replies.get_template(services(), current_user, template_id)
    except NotFound:
        abort(404)
    except PermissionDenied:
        abort(403)


@bp.route("/")
@login_required
def index():
    """List the templates of the grids the user leads, with the form to add one."""
    led = _led()
    return _page(led, _form(led))


def _page(led: list[int], form: ReplyTemplateForm, status: int = 200, editing: ReplyTemplate | None = None):
    """Render the list with the (add or edit) form."""
    found = queries.reply_templates(get_session(), led)
    grids = {i: code for i, code, _name in queries.grid_options(get_session(), current_user)}
    return render_template("replies/index.html", templates=found, form=form, editing=editing, grids=grids,
                           delete_form=FlaskForm(), uses=labels.REPLY_USES), status


@bp.post("/")
@login_required
def create():
    """Add a template."""
    led = _led()
    form = _form(led)
    command = build_command(form, SaveReplyTemplate)
    if command is None:
        return _page(led, form, 422)
    try:
        template = replies.create_template(services(), current_user, command)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return _page(led, form, 422)
    flash(_("Reply template %(title)s saved.", title=template.title), "success")
    return redirect(url_for("replies.index"))


@bp.route("/<int:template_id>", methods=["GET", "POST"])
@login_required
def edit(template_id: int):
    """Change a template."""
    led = _led()
    template = _load(template_id)
    form = _form(led, template)
    if not form.is_submitted():
        return _page(led, form, editing=template)
    command = build_command(form, SaveReplyTemplate)
    if command is None:
        return _page(led, form, 422, editing=template)
    try:
        replies.update_template(services(), current_user, template.id, command)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return _page(led, form, 422, editing=template)
    flash(_("Reply template %(title)s saved.", title=command.title), "success")
    return redirect(url_for("replies.index"))


@bp.post("/<int:template_id>/delete")
@login_required
def delete(template_id: int):
    """Delete a template."""
    _led()
    template = _load(template_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    title = template.title
    replies.delete_template(services(), current_user, template.id)
    flash(_("Reply template %(title)s deleted.", title=title), "success")
    return redirect(url_for("replies.index"))


__all__ = ["bp"]
