"""Administration screens: people and roles, places, departments, categories, calendar, imports, the trail."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, TextAreaField

from .. import labels
from ..db import get_session, write_intent
from ..errors import DomainError
from ..forms import IsoDateField, add_service_error, build_command, choices, id_value, rules_from
from ..models import Building, Community, Department, Grid, User
from ..permissions import PermissionDenied
from ..services import admin, onboarding
from ..services.commands import (
    GrantRole,
    SaveBuilding,
    SaveCalendarDay,
    SaveCategory,
    SaveCommunity,
    SaveDepartment,
    SaveGrid,
    SavePerson,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")

ROLES = {"grid_member": _l("Grid member"), "grid_leader": _l("Grid leader"),
         "department_handler": _l("Department handler"), "auditor": _l("Auditor"),
         "street_office": _l("Street office")}
KIND_NAMES = {"people": _l("People"), "buildings": _l("Buildings"), "households": _l("Households")}
#: What the admin trail's events and the objects they changed are called.
TRAIL_ACTIONS = {
    "user.saved": _l("Person saved"), "user.password_reset": _l("Password reset"),
    "user.password_set": _l("Password set from the command line"), "user.role_granted": _l("Role given"),
    "user.role_revoked": _l("Role taken away"), "user.enabled": _l("Account enabled"),
    "user.disabled": _l("Account disabled"), "community.saved": _l("Community saved"), "grid.saved": _l("Grid saved"),
    "building.saved": _l("Building saved"), "department.saved": _l("Department saved"),
    "category.saved": _l("Category saved"), "calendar.day_saved": _l("Calendar day marked"),
    "calendar.day_removed": _l("Calendar day unmarked"), "import.people": _l("People imported"),
    "import.buildings": _l("Buildings imported"), "import.households": _l("Households imported"),
}
TRAIL_TARGETS = {"user": _l("Person"), "community": _l("Community"), "grid": _l("Grid"), "building": _l("Building"),
                 "department": _l("Department"), "category": _l("Category"), "day": _l("Day"), "sheet": _l("Sheet")}
TRAIL_FIELDS = {
    "username": _l("Username"), "display_name": _l("Name"), "phone": _l("Phone"), "duty_phone": _l("Duty phone"),
    "public_phone": _l("Show the phone on the public grid notice"), "is_admin": _l("Administrator"),
    "active": _l("Enabled"), "must_change_password": _l("Must change password"), "role": _l("Role"),
    "grid_id": _l("Grid"), "department_id": _l("Department"), "community_id": _l("Community"), "name": _l("Name"),
    "code": _l("Code"), "address": _l("Address"), "latitude": _l("Latitude"), "longitude": _l("Longitude"),
    "open_cases_moved": _l("Open cases moved"), "name_zh": _l("Chinese name"), "name_en": _l("English name"),
    "deadline_class": _l("Default time limit"), "working": _l("Extra working day"), "note": _l("Note"),
    "tasks_released": _l("Tasks back to their pools"), "api_tokens_revoked": _l("API tokens revoked"),
    "created": _l("New"), "changed": _l("Changed"), "roles": _l("Roles given"), "sha256": _l("File SHA-256"),
    "office_hours": _l("Office hours"), "service_items": _l("Service items (one a line)"),
}


@bp.before_app_request
def _refresh_reference() -> None:
    """Read categories and calendar days on the first request and after a change made here; other processes'
    changes are read by a background thread, so no request pays for them."""
    if request.endpoint == "static":
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        admin.refresh(app, get_session())
    except SQLAlchemyError:  # a database not yet migrated (or gone): keep config.toml's, the page says the rest
        get_session().rollback()
    if not app.testing:  # tests run one process and change what they read
        _keep_fresh(app)


_started: set[tuple[int, int]] = set()
_starting = threading.Lock()


def _keep_fresh(app: Flask) -> None:
    """Start this process's refresh thread once (a forked worker starts its own)."""
    key = (os.getpid(), id(app))
    with _starting:
        if key in _started:
            return
        _started.add(key)
    # The thread holds the app weakly: an app dropped (a test's, or a reloaded one) ends its thread.
    threading.Thread(target=_refresh_loop, args=(weakref.ref(app),), name="gridloop-reference", daemon=True).start()


def refresh_round(app: Flask) -> None:
    """Read categories and calendar days again, as the refresh thread does every few seconds."""
    write_intent.set(False)  # a read: on SQLite it must not take the write lock
    with app.app_context():
        admin.refresh(app, get_session(), force=True)


def _refresh_loop(ref: weakref.ref[Flask]) -> None:
    """Refresh every REFRESH_SECONDS while the app lives; a database away for a moment is tried again the next
    round."""
    while True:
        time.sleep(admin.REFRESH_SECONDS)
        app = ref()
        if app is None:
            return
        try:
            refresh_round(app)
        except Exception:
            app.logger.warning("could not read categories and calendar days", exc_info=True)
        del app  # not held while sleeping


@bp.before_request
@login_required
def _admins_only() -> None:
    """Every admin screen is for administrators only."""
    if not current_user.is_admin:
        abort(403)


# -- forms -----------------------------------------------------------------------------------------

@rules_from(SavePerson)
class PersonForm(FlaskForm):
    """A person's account."""

    username = StringField(_l("Username"))
    display_name = StringField(_l("Name"))
    phone = StringField(_l("Phone"))
    duty_phone = StringField(_l("Duty phone"))
    public_phone = BooleanField(_l("Show the phone on the public grid notice"))
    is_admin = BooleanField(_l("Administrator"))


@rules_from(GrantRole)
class RoleForm(FlaskForm):
    """A role in a scope."""

    role = SelectField(_l("Role"), choices=choices(ROLES.items()), validate_choice=False)
    grid_id = SelectField(_l("Grid"), coerce=id_value, validate_choice=False)
    department_id = SelectField(_l("Department"), coerce=id_value, validate_choice=False)
    community_id = SelectField(_l("Community (auditor: empty for the whole district)"), coerce=id_value,
                               validate_choice=False)


@rules_from(SaveCommunity)
class CommunityForm(FlaskForm):
    """A community."""

    name = StringField(_l("Community name"))


@rules_from(SaveGrid)
class GridForm(FlaskForm):
    """A grid."""

    community_id = SelectField(_l("Community"), coerce=id_value, validate_choice=False)
    code = StringField(_l("Grid code"))
    name = StringField(_l("Grid name"))
    office_hours = StringField(_l("Office hours"))
    service_items = TextAreaField(_l("Service items (one a line)"))


@rules_from(SaveBuilding)
class BuildingForm(FlaskForm):
    """A building compound."""

    grid_id = SelectField(_l("Grid"), coerce=id_value, validate_choice=False)
    name = StringField(_l("Building name"))
    address = StringField(_l("Address"))
    latitude = StringField(_l("Latitude"))
    longitude = StringField(_l("Longitude"))
    open_cases = RadioField(_l("Its open cases"), validate_choice=False, choices=choices([
        ("stay", _l("Stay with the old grid")), ("move", _l("Move with the building to the new grid"))]))


@rules_from(SaveDepartment)
class DepartmentForm(FlaskForm):
    """A department."""

    code = StringField(_l("Department code"))
    name = StringField(_l("Department name"))


@rules_from(SaveCategory)
class CategoryForm(FlaskForm):
    """A case category."""

    code = StringField(_l("Category code"))
    name_zh = StringField(_l("Chinese name"))
    name_en = StringField(_l("English name"))
    department_id = SelectField(_l("Default department"), coerce=id_value, validate_choice=False)
    deadline_class = SelectField(_l("Default time limit"), validate_choice=False)
    active = BooleanField(_l("Offered for new cases"), default=True)


@rules_from(SaveCalendarDay)
class CalendarForm(FlaskForm):
    """An extra holiday or working day."""

    day = IsoDateField(_l("Day (YYYY-MM-DD)"))
    working = RadioField(_l("The day is"), validate_choice=False, default="0", coerce=lambda v: v in ("1", True),
                         choices=choices([("0", _l("An extra holiday (no work)")),
                                          ("1", _l("An extra working day (调休)"))]))
    note = StringField(_l("Note"))


class ImportForm(FlaskForm):
    """Upload a sheet to preview."""

    sheet = FileField(_l("XLSX or CSV file"))


class ConfirmImportForm(FlaskForm):
    """Import a previewed sheet, by its digest."""

    digest = HiddenField()


def _optional(value: str | None) -> str | None:
    """Return None for an empty text box (an optional number left out)."""
    return value.strip() if value and value.strip() else None


def _save(form: FlaskForm, command: type, action: Callable[[Any], Any], **extra: Any) -> Any:
    """Build the command and run the service; show its problem on the form. Return its result, or None."""
    built = build_command(form, command, **extra)
    if built is None:
        return None
    try:
        result = action(built)
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        add_service_error(form, exc)
        return None
    admin.invalidate(current_app)
    return result if result is not None else True


def _status(form: FlaskForm) -> int:
    """Return 422 when the form was sent with problems."""
    return 422 if form.is_submitted() and (form.errors or form.form_errors) else 200


def _grid_choices(form_field: Any, empty: bool = False) -> None:
    """Offer every grid."""
    pairs = [(g.id, f"{g.community.name} · {g.code} {g.name}") for g in admin.grids(get_session())]
    form_field.choices = choices(([(0, "—")] if empty else []) + pairs)


def _department_choices(form_field: Any) -> None:
    """Offer every department, and none."""
    form_field.choices = choices([(0, "—")] + [(d.id, d.name) for d in admin.departments(get_session())])


def _community_choices(form_field: Any, empty: bool = False) -> None:
    """Offer every community."""
    pairs = [(c.id, c.name) for c in admin.communities(get_session())]
    form_field.choices = choices(([(0, "—")] if empty else []) + pairs)


# -- overview and trail -------------------------------------------------------------------------------

@bp.route("/")
def index():
    """The administration overview: what can be set up, and the trail's state."""
    return render_template("admin/index.html", kinds=KIND_NAMES)


@bp.route("/trail")
def trail():
    """The admin trail, newest first, and whether it verifies (naming the first broken event)."""
    db = get_session()
    events = [(event, json.loads(event.changes)) for event in admin.trail(db)]
    return render_template("admin/trail.html", events=events, report=admin.verify_trail(db), actions=TRAIL_ACTIONS,
                           targets=TRAIL_TARGETS, fields=TRAIL_FIELDS, roles=ROLES, show=_trail_value)


def _trail_value(value: Any) -> str:
    """Show a recorded value: yes and no, a role's name, nothing for none."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if value is None:
        return "—"
    return labels.label(ROLES, value) if value in ROLES else str(value)


# -- people ---------------------------------------------------------------------------------------

@bp.route("/people", methods=["GET", "POST"])
def people():
    """List people; create one (a temporary password, changed at the first login)."""
    db = get_session()
    form = PersonForm()
    if form.is_submitted():
        saved = _save(form, SavePerson, lambda c: admin.save_person(db, current_user, c))
        if saved:
            user, temporary = saved
            flash(_("%(name)s created. Temporary password (shown once, changed at the first login): %(password)s",
                    name=user.display_name, password=temporary), "success")
            return redirect(url_for("admin.person", user_id=user.id))
    return render_template("admin/people.html", form=form, people=admin.people(db), roles=ROLES), _status(form)


def _role_form() -> RoleForm:
    """The grant-role form with every grid, department and community."""
    form = RoleForm(prefix="role")
    _grid_choices(form.grid_id, empty=True)
    _department_choices(form.department_id)
    _community_choices(form.community_id, empty=True)
    return form


@bp.route("/people/<int:user_id>", methods=["GET", "POST"])
def person(user_id: int):
    """Edit a person; their roles, password reset, disabling."""
    db = get_session()
    user = _load(User, user_id)
    form = PersonForm(obj=user)
    if form.is_submitted() and _save(form, SavePerson, lambda c: admin.save_person(db, current_user, c, user.id)):
        flash(_("Saved."), "success")
        return redirect(url_for("admin.person", user_id=user.id))
    return _person_page(user, form, _role_form(), _status(form))


def _person_page(user: User, form: PersonForm, role_form: RoleForm, status: int = 200, handover=None):
    """Render a person's page."""
    return render_template("admin/person.html", user=user, form=form, role_form=role_form, roles=ROLES,
                           action_form=FlaskForm(), handover=handover, places=_places()), status


def _places() -> dict[str, dict[int, str]]:
    """Name grids, departments and communities by id (for the list of roles)."""
    db = get_session()
    return {"grid": {g.id: f"{g.code} {g.name}" for g in admin.grids(db)},
            "department": {d.id: d.name for d in admin.departments(db)},
            "community": {c.id: c.name for c in admin.communities(db)}}


@bp.post("/people/<int:user_id>/roles")
def grant_role(user_id: int):
    """Give the person a role."""
    db = get_session()
    user = _load(User, user_id)
    form = _role_form()
    if _save(form, GrantRole, lambda c: admin.grant_role(db, current_user, user.id, c)):
        flash(_("Role given."), "success")
        return redirect(url_for("admin.person", user_id=user.id))
    return _person_page(user, PersonForm(obj=user, formdata=None), form, 422)


@bp.post("/people/<int:user_id>/roles/<int:membership_id>/remove")
def revoke_role(user_id: int, membership_id: int):
    """Take a role away (the person's sessions end)."""
    return _account_action(user_id, lambda db, user: admin.revoke_role(db, current_user, user.id, membership_id),
                           _l("Role taken away; their sessions have ended."))


@bp.post("/people/<int:user_id>/password")
def reset_password(user_id: int):
    """Reset the password: a temporary one, shown once, to be changed at the next login."""
    db = get_session()
    user = _load(User, user_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    password = admin.reset_password(db, current_user, user.id)
    flash(_("Temporary password of %(name)s (shown once; they choose their own at the next login): %(password)s",
            name=user.display_name, password=password), "success")
    return redirect(url_for("admin.person", user_id=user.id))


@bp.post("/people/<int:user_id>/disable")
def disable(user_id: int):
    """Disable a person once their work is handed over."""
    return _account_action(user_id, lambda db, user: admin.set_active(db, current_user, user.id, False),
                           _l("Disabled; their sessions have ended."))


@bp.post("/people/<int:user_id>/enable")
def enable(user_id: int):
    """Enable a disabled person again."""
    return _account_action(user_id, lambda db, user: admin.set_active(db, current_user, user.id, True),
                           _l("Enabled."))


def _account_action(user_id: int, action: Callable[[Any, User], Any], done: Any):
    """Run one account action from a button; a handover still needed is shown on the person's page."""
    db = get_session()
    user = _load(User, user_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        action(db, user)
    except admin.HandoverNeeded as exc:
        db.rollback()
        return _person_page(user, PersonForm(obj=user, formdata=None), _role_form(), 409, handover=exc)
    except DomainError as exc:
        db.rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("admin.person", user_id=user.id))
    flash(str(done), "success")
    return redirect(url_for("admin.person", user_id=user.id))


# -- places ---------------------------------------------------------------------------------------

@bp.route("/places", methods=["GET", "POST"])
def places():
    """Communities and their grids: create either."""
    db = get_session()
    community_form = CommunityForm(prefix="community")
    grid_form = GridForm(prefix="grid")
    _community_choices(grid_form.community_id)
    if request.method == "POST":
        if request.form.get("what") == "community":
            if _save(community_form, SaveCommunity, lambda c: admin.save_community(db, current_user, c)):
                flash(_("Community saved."), "success")
                return redirect(url_for("admin.places"))
        elif _save(grid_form, SaveGrid, lambda c: admin.save_grid(db, current_user, c)):
            flash(_("Grid saved."), "success")
            return redirect(url_for("admin.places"))
    status = 422 if (community_form.errors or community_form.form_errors or grid_form.errors
                     or grid_form.form_errors) else 200
    return render_template("admin/places.html", community_form=community_form, grid_form=grid_form,
                           communities=admin.communities(db)), status


@bp.route("/grids/<int:grid_id>", methods=["GET", "POST"])
def grid(grid_id: int):
    """Edit a grid."""
    db = get_session()
    row = _load(Grid, grid_id)
    form = GridForm(obj=row)
    _community_choices(form.community_id)
    if form.is_submitted() and _save(form, SaveGrid, lambda c: admin.save_grid(db, current_user, c, row.id)):
        flash(_("Grid saved."), "success")
        return redirect(url_for("admin.places"))
    return render_template("admin/edit.html", form=form, title=_("Grid %(code)s", code=row.code),
                           back=url_for("admin.places")), _status(form)


@bp.route("/communities/<int:community_id>", methods=["GET", "POST"])
def community(community_id: int):
    """Rename a community."""
    db = get_session()
    row = _load(Community, community_id)
    form = CommunityForm(obj=row)
    if form.is_submitted() and _save(form, SaveCommunity,
                                     lambda c: admin.save_community(db, current_user, c, row.id)):
        flash(_("Community saved."), "success")
        return redirect(url_for("admin.places"))
    return render_template("admin/edit.html", form=form, title=row.name, back=url_for("admin.places")), \
        _status(form)


@bp.route("/buildings", methods=["GET", "POST"])
def buildings():
    """List buildings; add one."""
    db = get_session()
    form = BuildingForm()
    _grid_choices(form.grid_id)
    if form.is_submitted() and _save(form, SaveBuilding, lambda c: admin.save_building(db, current_user, c),
                                     **_position(form)):
        flash(_("Building saved."), "success")
        return redirect(url_for("admin.buildings"))
    return render_template("admin/buildings.html", form=form, buildings=admin.buildings(db)), _status(form)


def _position(form: BuildingForm) -> dict[str, Any]:
    """The building form's coordinates (empty boxes: no position) and its open-cases answer."""
    return {"latitude": _optional(form.latitude.data), "longitude": _optional(form.longitude.data),
            "open_cases": form.open_cases.data or None}


@bp.route("/buildings/<int:building_id>", methods=["GET", "POST"])
def building(building_id: int):
    """Edit a building; moving it to another grid asks what happens to its open cases."""
    db = get_session()
    row = _load(Building, building_id)
    form = BuildingForm(obj=row)
    _grid_choices(form.grid_id)
    if form.is_submitted() and _save(form, SaveBuilding,
                                     lambda c: admin.save_building(db, current_user, c, row.id), **_position(form)):
        flash(_("Building saved."), "success")
        return redirect(url_for("admin.buildings"))
    return render_template("admin/building.html", form=form, building=row,
                           open_cases=admin.open_cases_of(db, row.id)), _status(form)


@bp.route("/departments", methods=["GET", "POST"])
def departments():
    """List departments; add one."""
    db = get_session()
    form = DepartmentForm()
    if form.is_submitted() and _save(form, SaveDepartment, lambda c: admin.save_department(db, current_user, c)):
        flash(_("Department saved."), "success")
        return redirect(url_for("admin.departments"))
    return render_template("admin/departments.html", form=form, departments=admin.departments(db)), _status(form)


@bp.route("/departments/<int:department_id>", methods=["GET", "POST"])
def department(department_id: int):
    """Edit a department."""
    db = get_session()
    row = _load(Department, department_id)
    form = DepartmentForm(obj=row)
    if form.is_submitted() and _save(form, SaveDepartment,
                                     lambda c: admin.save_department(db, current_user, c, row.id)):
        flash(_("Department saved."), "success")
        return redirect(url_for("admin.departments"))
    return render_template("admin/edit.html", form=form, title=row.name, back=url_for("admin.departments")), \
        _status(form)


# -- categories and calendar -----------------------------------------------------------------------

def _category_form(**kw: Any) -> CategoryForm:
    """The category form with departments and time limits to choose from."""
    form = CategoryForm(**kw)
    _department_choices(form.department_id)
    form.deadline_class.choices = choices([("", "—"), *labels.DEADLINE_CLASSES.items()])
    return form


def _categories() -> list[admin.CategoryInfo]:
    """Return every category, config.toml's seed with the database's rows over it."""
    extensions, config = current_app.extensions, current_app.config["GRIDLOOP"]
    return admin.categories(get_session(), extensions.get("gridloop.category_seed", config["categories"]),
                            extensions.get("gridloop.dispatch_seed", config.get("dispatch", {})))


@bp.route("/categories", methods=["GET", "POST"])
def categories():
    """List categories (config.toml's seed and the database's); add or change one by its code."""
    db = get_session()
    form = _category_form()
    seed = current_app.extensions.get("gridloop.category_seed", current_app.config["GRIDLOOP"]["categories"])
    if form.is_submitted() and _save(form, SaveCategory,
                                     lambda c: admin.save_category(db, current_user, c, new=True, seed=seed),
                                     deadline_class=form.deadline_class.data or None):
        flash(_("Category saved."), "success")
        return redirect(url_for("admin.categories"))
    return render_template("admin/categories.html", form=form, categories=_categories(),
                           departments={d.id: d.name for d in admin.departments(db)}), _status(form)


@bp.route("/categories/<code>", methods=["GET", "POST"])
def category(code: str):
    """Edit one category."""
    db = get_session()
    found = next((c for c in _categories() if c.code == code), None) or abort(404)
    form = _category_form(obj=found)
    if not form.is_submitted():
        form.deadline_class.data = found.deadline_class or ""
    if form.is_submitted() and _save(form, SaveCategory, lambda c: admin.save_category(db, current_user, c),
                                     code=code, deadline_class=form.deadline_class.data or None):
        flash(_("Category saved."), "success")
        return redirect(url_for("admin.categories"))
    return render_template("admin/edit.html", form=form, title=code, back=url_for("admin.categories"),
                           fixed=("code",)), _status(form)


@bp.route("/calendar", methods=["GET", "POST"])
def calendar():
    """The working-day calendar's extra holidays and working days."""
    db = get_session()
    form = CalendarForm()
    if form.is_submitted() and _save(form, SaveCalendarDay, lambda c: admin.save_calendar_day(db, current_user, c)):
        flash(_("Day saved."), "success")
        return redirect(url_for("admin.calendar"))
    config = current_app.config["GRIDLOOP"]["calendar"]
    return render_template("admin/calendar.html", form=form, days=admin.calendar_days(db), config=config,
                           action_form=FlaskForm()), _status(form)


@bp.post("/calendar/<day>/remove")
def remove_day(day: str):
    """Remove a day's mark."""
    import datetime as dt
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        admin.remove_calendar_day(get_session(), current_user, dt.date.fromisoformat(day))
    except (ValueError, DomainError):
        abort(404)
    admin.invalidate(current_app)
    flash(_("Day removed."), "success")
    return redirect(url_for("admin.calendar"))


# -- spreadsheet onboarding ------------------------------------------------------------------------

@bp.route("/import/<kind>/template.<fmt>")
def import_template(kind: str, fmt: str):
    """Download the empty sheet of a kind, with its Chinese headers."""
    if kind not in onboarding.KINDS or fmt not in ("xlsx", "csv"):
        abort(404)
    mimetype = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "csv": "text/csv; charset=utf-8"}[fmt]
    return Response(onboarding.template(kind, fmt), mimetype=mimetype,
                    headers={"Content-Disposition": f"attachment; filename=gridloop-{kind}.{fmt}"})


@bp.route("/import", methods=["GET"])
def imports():
    """Choose what to import; download the templates."""
    return render_template("admin/import.html", kinds=KIND_NAMES, form=ImportForm(), sheet=None, kind=None,
                           max_mb=onboarding.MAX_BYTES // (1024 * 1024))


@bp.post("/import/<kind>")
def import_preview(kind: str):
    """Read an uploaded sheet and show what importing it would do, naming every bad row and cell."""
    if kind not in onboarding.KINDS:
        abort(404)
    limit = onboarding.MAX_BYTES + 64 * 1024  # the file and the form around it
    if (request.content_length or 0) > limit:
        abort(413)  # before reading any of it
    request.max_content_length = limit  # a body sent without a length stops being read at the limit
    form = ImportForm()
    upload = request.files.get("sheet")
    if not form.validate_on_submit() or upload is None or not upload.filename:
        form.sheet.errors = [_("Choose a file to upload.")]
        return _import_page(kind, form, None), 422
    data = upload.read(onboarding.MAX_BYTES + 1)
    try:
        sheet = onboarding.plan(get_session(), kind, data)
    except onboarding.SheetRefused as exc:
        form.sheet.errors = [exc.localized()]
        return _import_page(kind, form, None), 422
    if not sheet.ok:
        return _import_page(kind, form, sheet), 422
    onboarding.keep_upload(get_session(), current_user, kind, sheet.digest, data)
    return _import_page(kind, form, sheet)


def _import_page(kind: str, form: ImportForm, sheet: onboarding.Plan | None, result=None):
    """Render the import page."""
    confirm = ConfirmImportForm(formdata=None, digest=sheet.digest if sheet else "")
    return render_template("admin/import.html", kinds=KIND_NAMES, form=form, sheet=sheet, kind=kind,
                           confirm=confirm, result=result, max_mb=onboarding.MAX_BYTES // (1024 * 1024))


@bp.post("/import/<kind>/confirm")
def import_confirm(kind: str):
    """Import a previewed sheet: checked again in this transaction, then written all at once, or not at all."""
    form = ConfirmImportForm()
    digest = form.digest.data or ""
    if kind not in onboarding.KINDS or not form.validate_on_submit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        abort(400)
    db = get_session()
    data = onboarding.kept_upload(db, kind, digest)
    if data is None:
        flash(_("The previewed file is gone; upload it again."), "error")
        return redirect(url_for("admin.imports"))
    sheet = onboarding.plan(db, kind, data)
    if not sheet.ok:
        return _import_page(kind, ImportForm(formdata=None), sheet), 422
    try:
        result = onboarding.apply(db, current_user, sheet)
    except DomainError as exc:  # something changed since the check above, in this very transaction: nothing kept
        db.rollback()
        flash(exc.localized(), "error")
        return redirect(url_for("admin.imports"))
    onboarding.forget_upload(db, digest)
    return _import_page(kind, ImportForm(formdata=None), None, result=result)


def _load(model: type, object_id: int) -> Any:
    """Load a row for an admin screen or answer 404."""
    try:
        return admin.get(get_session(), model, object_id)
    except DomainError:
        abort(404)


__all__ = ["bp"]
