"""The resident: every case of one phone or household, the intake's look-up, and linking duplicates (重复件)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import labels
from ..db import get_session
from ..errors import DomainError
from ..forms import build_command
from ..models import Case, Household, Role, utcnow
from ..permissions import Permission, PermissionDenied, can, grid_ids
from ..queries import residents as found
from ..services import duplicates
from ..services.commands import LinkDuplicate
from ..services.residents import local_phone, phone_query
from . import services
from .intake_checks import LinkForm, UnlinkForm, new_intake_key

bp = Blueprint("residents", __name__)
bp.add_app_template_filter(local_phone, "local_phone")
# The intake form's one-time key, made when the page is shown (services.duplicates).
bp.add_app_template_global(new_intake_key, "new_intake_key")

#: The most cases the intake's look-up lists.
LOOKUP_LIMIT = 10


@bp.route("/residents")
@login_required
def index():
    """Every case of one phone (any written form, or a few of its digits) the user may read, newest first."""
    text = request.args.get("phone", "").replace("\x00", "").strip()[:40]
    query = phone_query(text) if text else None
    cases = found.resident_cases(get_session(), current_user, query) if query else []
    return render_template("residents/index.html", phone=text, query=query, cases=cases,
                           problem=bool(text) and query is None)


@bp.route("/residents/household/<int:household_id>")
@login_required
def household(household_id: int):
    """Every case of one household: its phone, or its building and room."""
    db = get_session()
    home = db.get(Household, household_id) or abort(404)
    if not can(current_user, Permission.HOUSEHOLD_READ, home):
        abort(403)
    return render_template("residents/index.html", phone=home.phone, query=None, household=home,
                           cases=found.household_cases(db, current_user, home), problem=False)


@bp.route("/residents/lookup")
@login_required
def lookup():
    """For the intake: the open and recent cases of a phone the user may read, as JSON."""
    if not grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER) and not current_user.is_admin:
        abort(403)
    text = request.args.get("phone", "").replace("\x00", "").strip()[:40]
    query = phone_query(text)
    if query is None:
        return jsonify({"phone": text, "cases": [], "more_url": None})
    window, _least, _shown = duplicates.settings(current_app.config["GRIDLOOP"])
    since = utcnow() - dt.timedelta(days=window)
    rows = found.open_or_recent(get_session(), current_user, query, since, LOOKUP_LIMIT)
    return jsonify({"phone": local_phone(query.exact) if query.exact else text,
                    "cases": [_brief(case) for case in rows],
                    "more_url": url_for("residents.index", phone=text)})


def _brief(case: Case) -> dict:
    """A case as the intake's look-up lists it (labels in the person's language)."""
    return {"number": case.number, "url": url_for("cases.detail", case_id=case.id),
            "status": labels.label(labels.STATUSES, case.status), "open": case.status != "archived",
            "category": labels.category_label(case.category), "building": case.building.name,
            "created": case.created_at.isoformat(), "description": case.description[:80]}


@bp.post("/cases/<int:case_id>/link")
@login_required
def link(case_id: int):
    """Link the case to the main case it repeats; it follows that case's handling."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    form = LinkForm()
    command = build_command(form, LinkDuplicate)
    if command is None:
        for problem in [*form.form_errors, *(e for f in form for e in f.errors)]:
            flash(str(problem), "error")
        return redirect(url_for("cases.detail", case_id=case_id))
    try:
        duplicates.link_duplicate(services(), current_user, case_id, command)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("cases.detail", case_id=case_id))
    flash(_("Linked as a duplicate: the case follows its main case and gets its result and a callback."), "success")
    return redirect(url_for("cases.detail", case_id=case_id))


@bp.post("/cases/<int:case_id>/unlink")
@login_required
def unlink(case_id: int):
    """Unlink a duplicate still following its main case."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    form = UnlinkForm()
    if not form.validate():
        abort(400)
    try:
        duplicates.unlink_duplicate(services(), current_user, case_id, int(form.version.data))
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("cases.detail", case_id=case_id))
    flash(_("Unlinked: the case waits for its own handling again."), "success")
    return redirect(url_for("cases.detail", case_id=case_id))
