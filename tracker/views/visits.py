"""Households, visit plans, routine visits and the resident diary."""

from __future__ import annotations

import re
import secrets

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import media, queries
from ..db import get_session
from ..errors import ConflictError, DomainError
from ..forms import HouseholdForm, NoteForm, PlanForm, VisitForm, add_service_error, build_command, choices
from ..labels import category_choices
from ..models import Household, Role, Visit
from ..permissions import Permission, PermissionDenied, can, grid_ids
from ..services import attachments, visits
from ..services.commands import AddNote, PlanVisits, RecordVisit, RegisterHousehold
from . import services

bp = Blueprint("visits", __name__)


def _household(household_id: int) -> Household:
    """Load a household the user may read."""
    household = get_session().get(Household, household_id) or abort(404)
    if not can(current_user, Permission.HOUSEHOLD_READ, household):
        abort(403)
    return household


def _household_form() -> HouseholdForm:
    """The new-household form, with the buildings of the grids the user leads."""
    form = HouseholdForm()
    buildings = queries.household_buildings(get_session(), current_user)
    form.building_id.choices = choices([(b.id, f"{b.grid.code} · {b.name}") for b in buildings])
    return form


@bp.route("/households", methods=["GET", "POST"])
@login_required
def households():
    """List households with their plans; leaders register new ones."""
    db = get_session()
    form = _household_form() if (current_user.is_admin or grid_ids(current_user, Role.GRID_LEADER)) else None
    status = 200
    if form is not None and form.is_submitted():
        command = build_command(form, RegisterHousehold)
        if command is not None:
            try:
                household = visits.add_household(services(), current_user, command)
            except PermissionDenied:
                abort(403)
            except DomainError as exc:
                db.rollback()
                add_service_error(form, exc)
                status = 422
            else:
                flash(_("Household registered; now plan its visits."), "success")
                return redirect(url_for("visits.household", household_id=household.id))
        else:
            status = 422
    rows = queries.households(db, current_user)
    return render_template("visits/households.html", rows=rows, form=form), status


def _plan_form(household: Household) -> PlanForm:
    """The visit-plan form with the household's grid members."""
    form = PlanForm()
    members = queries.members_of(get_session(), household.grid_id)
    form.member_id.choices = choices([(u.id, u.display_name) for u in members])
    return form


@bp.route("/households/<int:household_id>", methods=["GET", "POST"])
@login_required
def household(household_id: int):
    """A household's page: plans, visit history, diary notes; add a note or (leaders) a plan."""
    db = get_session()
    row = _household(household_id)
    note_form, plan_form = NoteForm(prefix="note"), _plan_form(row)
    status = 200
    if request.method == "POST":
        try:
            if "note-text" in request.form:
                command = build_command(note_form, AddNote)
                if command is not None:
                    visits.add_note(services(), current_user, row, command)
                    flash(_("Diary note saved."), "success")
                    return redirect(url_for("visits.household", household_id=row.id))
            elif (command := build_command(plan_form, PlanVisits)) is not None:
                visits.add_plan(services(), current_user, row, command)
                flash(_("Visit plan saved; visits start on the next plan day."), "success")
                return redirect(url_for("visits.household", household_id=row.id))
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            db.rollback()
            add_service_error(plan_form if "note-text" not in request.form else note_form, exc)
        status = 422
    history = queries.visit_history(db, row.id)
    notes = queries.diary_notes(db, row.id)
    return render_template("visits/household.html", household=row, history=history, notes=notes,
                           note_form=note_form, plan_form=plan_form,
                           may_note=can(current_user, Permission.HOUSEHOLD_NOTE, row),
                           may_plan=can(current_user, Permission.HOUSEHOLD_MANAGE, row.grid)), status


@bp.route("/visits/<int:visit_id>", methods=["GET", "POST"])
@login_required
def visit(visit_id: int):
    """Record a routine visit: diary note, and optionally a case the visit raised."""
    db = get_session()
    row = db.get(Visit, visit_id) or abort(404)
    if not can(current_user, Permission.HOUSEHOLD_READ, row.household):
        abort(403)
    form = VisitForm()
    form.category.choices = choices(category_choices())
    if not form.is_submitted():
        form.version.data = str(row.version)
        return render_template("visits/visit.html", visit=row, form=form, record_key=secrets.token_hex(16),
                               may_act=can(current_user, Permission.VISIT_COMPLETE, row),
                               photos=queries.visit_photos(db, row.id))
    if not can(current_user, Permission.VISIT_COMPLETE, row) and row.status == "open":
        abort(403)
    status = 422
    command = build_command(form, RecordVisit)
    if command is not None:
        try:
            # Every photo is checked before anything is written: a bad one refuses the whole record.
            photos = attachments.check_uploads(services(), media.request_uploads())
            visits.complete_visit(services(), current_user, row.id, command, _record_key(), photos,
                                  media.current_store())
        except PermissionDenied:
            abort(403)
        except ConflictError as exc:
            db.rollback()
            form.form_errors.append(exc.localized())
            status = 409
        except DomainError as exc:
            db.rollback()
            add_service_error(form, exc)
        else:
            flash(_("Visit recorded in the diary."), "success")
            return redirect(url_for("visits.household", household_id=row.household_id))
    row = db.get(Visit, visit_id)
    return render_template("visits/visit.html", visit=row, form=form, record_key=_record_key(),
                           may_act=can(current_user, Permission.VISIT_COMPLETE, row),
                           photos=queries.visit_photos(db, visit_id)), status


#: A record's one-time key: what the form or an offline phone sends (a UUID fits).
RECORD_KEY = re.compile(r"[A-Za-z0-9-]{8,64}")


def _record_key() -> str | None:
    """Return the posted record's one-time key, or None when it has none (or a damaged one)."""
    key = request.form.get("record_key", "").strip()
    return key if RECORD_KEY.fullmatch(key) else None
