"""Case intake, list with filters, and detail with the audit timeline."""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from .. import labels, media, queries
from ..codes import AttachmentKind
from ..db import get_session
from ..errors import DomainError
from ..forms import NO_CHOICE, IntakeForm, add_service_error, choices
from ..models import Case, Role
from ..permissions import Permission, PermissionDenied, can, grid_ids
from ..services import attachments
from ..services.cases import open_case
from . import due_window, intake_checks, local_zone, services

bp = Blueprint("cases", __name__, url_prefix="/cases")


def _intake_form() -> IntakeForm:
    """Build the intake form with the buildings of the user's grids."""
    form = IntakeForm()
    buildings = queries.recordable_buildings(get_session(), current_user)
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
    intake = form.to_command() if form.is_submitted() else None
    if intake is not None:
        if (answer := intake_checks.before_intake(form, intake)) is not None:  # sent again, or likely duplicates
            return answer
        try:
            # Every photo is checked before anything is written: a bad one refuses the whole intake.
            photos = attachments.check_uploads(services(), media.request_uploads())
            case = open_case(services(), current_user, intake)
            intake_checks.after_intake(case)
            attachments.attach(services(), media.current_store(), current_user, case, photos, AttachmentKind.INTAKE)
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


@bp.route("/")
@login_required
def index():
    """List the cases the user may read, filtered and paginated."""
    f = queries.case_filters(request.args)
    size = current_app.config["GRIDLOOP"]["app"]["page_size"]
    page = min(max(1, request.args.get("page", 1, type=int)), 100_000)
    found = queries.case_list(get_session(), current_user, f, due_window(), page, size, local_zone())
    total, cap = found.counted, queries.COUNT_CAP
    pages = -(-total // size) if total <= cap else None
    return render_template("cases/index.html", cases=found.cases, filters=f, page=page, pages=pages,
                           has_next=found.has_next, grid_options=_grid_options(f["grid"]),
                           total=total if total <= cap else f"{cap:,}+",
                           following=intake_checks.following(found.cases))


def _grid_options(selected: str) -> Markup:
    """The grid filter's <option>s. A district or community auditor sees hundreds of grids: built
    here from plain rows, this is a few times cheaper than a template loop over ORM objects."""
    option = Markup('<option value="{}"{}>{} {}</option>')
    rows = queries.grid_options(get_session(), current_user)
    return Markup("").join(option.format(i, Markup(" selected") if str(i) == selected else "", code, name)
                           for i, code, name in rows)


@bp.route("/<int:case_id>")
@login_required
def detail(case_id: int):
    """Show a case: its data, current tasks, outcome and audit timeline."""
    db = get_session()
    case = db.get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    timeline = [(e, json.loads(e.changes)) for e in queries.case_events(db, case.id)]
    return render_template("cases/detail.html", case=case, timeline=timeline,
                           names=queries.referenced_names(db, timeline),
                           open_tasks=[t for t in case.tasks if t.status == "open"],
                           duplicates=intake_checks.duplicate_panel(case))
