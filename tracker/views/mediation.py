"""Mediations (矛盾调解): the handler records one on the case; a failed one can be referred on."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField

from .. import media
from ..db import get_session
from ..errors import DomainError
from ..forms import IsoDateField, add_service_error, choices
from ..models import Case, Mediation
from ..permissions import Permission, PermissionDenied, can, handles_case
from ..services import mediation
from ..services.commands import InvalidCommand, RecordMediation, ReferMediation, build
from . import services

bp = Blueprint("mediation", __name__)


class MediationForm(FlaskForm):
    """A mediation: the two parties, the mediators, the agreement, acceptance, follow-up, referral."""

    party1_name = StringField(_l("First party"), render_kw={"maxlength": 100, "required": True})
    party1_phone = StringField(_l("First party's phone"), render_kw={"maxlength": 40, "inputmode": "tel"})
    party2_name = StringField(_l("Second party"), render_kw={"maxlength": 100, "required": True})
    party2_phone = StringField(_l("Second party's phone"), render_kw={"maxlength": 40, "inputmode": "tel"})
    mediators = StringField(_l("Mediators"), render_kw={"maxlength": 200, "required": True})
    agreement = TextAreaField(_l("What was agreed"), render_kw={"maxlength": 4000, "required": True})
    accepted = RadioField(_l("Do both parties accept?"), default="yes", validate_choice=False, choices=choices([
        ("yes", _l("Yes: both accept the agreement")), ("no", _l("No: the mediation failed"))]))
    follow_up_on = IsoDateField(_l("Follow-up date (a reminder goes to you that morning)"))
    referred_to = StringField(_l("Failed: referred to (e.g. legal aid centre)"), render_kw={"maxlength": 200})


class ReferForm(FlaskForm):
    """Refer a failed mediation on."""

    referred_to = StringField(_l("Refer to (e.g. legal aid centre)"), render_kw={"maxlength": 200, "required": True})


#: Where a command's error lands on the form: parties.0.name -> party1_name, and so on.
def _field_of(error_field: str) -> str:
    """Return the form field a command error names."""
    parts = error_field.split(".")
    if parts[0] == "parties" and len(parts) == 3 and parts[1].isdigit():
        return f"party{int(parts[1]) + 1}_{parts[2]}"
    return parts[0]


def _command(form: MediationForm) -> RecordMediation | None:
    """Build the command from the posted form, putting every problem on its field."""
    readable = form.validate()
    data: dict[str, Any] = {
        "parties": [{"name": form.party1_name.data or "", "phone": form.party1_phone.data or ""},
                    {"name": form.party2_name.data or "", "phone": form.party2_phone.data or ""}],
        "mediators": form.mediators.data or "", "agreement": form.agreement.data or "",
        "accepted": form.accepted.data == "yes", "follow_up_on": form.follow_up_on.data,
        "referred_to": form.referred_to.data or ""}
    try:
        command = build(RecordMediation, data)
    except InvalidCommand as exc:
        for error in exc.errors:
            field = getattr(form, _field_of(error.field), None)
            if field is None:
                form.form_errors.append(error.localized())
            elif not field.errors:
                field.errors = [*field.errors, error.localized()]
        return None
    return command if readable else None


def _case_for_change(case_id: int) -> Case:
    """Load a case (404) that the user handles (403)."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    if not handles_case(current_user, case):
        abort(403)
    return case


@bp.route("/cases/<int:case_id>/mediations/new", methods=["GET", "POST"])
@login_required
def new(case_id: int):
    """Record a mediation of the case's dispute, with photos; nothing is kept if anything is wrong."""
    case = _case_for_change(case_id)
    form = MediationForm()
    if not form.is_submitted():
        return render_template("mediation/new.html", case=case, form=form)
    command = _command(form)
    if command is None:
        return render_template("mediation/new.html", case=case, form=form), 422
    try:
        mediation.record(services(), media.current_store(), current_user, case.id, command, media.request_uploads())
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return render_template("mediation/new.html", case=case, form=form), 422
    flash(_("Mediation recorded for case %(number)s.", number=case.number), "success")
    return redirect(url_for("cases.detail", case_id=case.id, _anchor="mediations"))


@bp.post("/mediations/<int:mediation_id>/refer")
@login_required
def refer(mediation_id: int):
    """Refer a failed mediation on (e.g. to legal aid)."""
    row = get_session().get(Mediation, mediation_id) or abort(404)
    case = _case_for_change(row.case_id)
    form = ReferForm()
    if not form.validate():
        abort(400)
    try:
        command = build(ReferMediation, {"referred_to": form.referred_to.data or ""})
        mediation.refer(services(), current_user, row.id, command)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("cases.detail", case_id=case.id, _anchor="mediations"))
    flash(_("The mediation was referred to %(target)s.", target=command.referred_to), "success")
    return redirect(url_for("cases.detail", case_id=case.id, _anchor="mediations"))


@bp.app_context_processor
def _mediation_helpers() -> dict:
    """Give templates a case's mediations and the refer form (the case page shows them)."""
    return {"case_mediations": lambda case: mediation.of_case(get_session(), case.id),
            "mediation_parties": mediation.parties, "refer_form": lambda: ReferForm(formdata=None),
            "may_mediate": lambda case: handles_case(current_user, case)}
