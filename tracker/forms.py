"""WTForms for login, intake and each task type; CSRF comes from Flask-WTF."""

from __future__ import annotations

import phonenumbers
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, HiddenField, IntegerField, PasswordField, RadioField, SelectChoice, SelectField,
                     SelectMultipleField, StringField, TextAreaField)
from wtforms.widgets import CheckboxInput, ListWidget
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from . import labels


def choices(pairs) -> list[SelectChoice]:
    """Turn (value, label) pairs into WTForms choices."""
    return [SelectChoice(value, text) for value, text in pairs]


def _choices(table: dict) -> list[SelectChoice]:
    """Turn a label table into WTForms choices."""
    return choices(table.items())


def add_service_error(form: FlaskForm, exc) -> None:
    """Show a service's DomainError on its field, or on the form as a whole."""
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [exc.localized()]
    else:
        form.form_errors.append(exc.localized())


#: Value of the "—" placeholder option in select fields.
NO_CHOICE = -1
#: The largest id a database row can have (32-bit integer keys).
MAX_ID = 2**31 - 1


def id_value(value) -> int:
    """Coerce a posted id: an integer a row can have (or the placeholder); anything else is not a choice."""
    number = int(value)
    if not NO_CHOICE <= number <= MAX_ID:
        raise ValueError(f"{value!r} is not an id")
    return number


class ChinesePhone:
    """Validate a mainland China phone number and normalize it to E.164."""

    def __call__(self, form, field) -> None:
        """Check the number, replacing the field data with its E.164 form."""
        try:
            number = phonenumbers.parse(field.data or "", "CN")
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValidationError(_l("Not a valid phone number: enter an 11-digit mobile number or a landline with area code, e.g. 13812345678 or 010-12345678."))
        field.data = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


#: What a token may do, as people choose it on their profile page (narrowest first); see models.TokenScope.
TOKEN_SCOPES = {
    "open311": _l("Open311 filing only: file residents' requests and follow them (for residents' apps)"),
    "read": _l("Read only: see cases, tasks and lists as you may, change nothing"),
    "full": _l("Full: everything you may do, including acting on cases"),
}
#: The scopes' short names, for the list of tokens.
TOKEN_SCOPE_NAMES = {"open311": _l("Open311 filing"), "read": _l("Read only"), "full": _l("Full")}


class TokenForm(FlaskForm):
    """Name a new API token after the program that will use it; choose what it may do and for how long."""

    name = StringField(_l("What the token is for"), validators=[
        DataRequired(message=_l("Name the token after the program that will use it.")), Length(max=100)])
    scope = RadioField(_l("What the token may do"), choices=_choices(TOKEN_SCOPES), validators=[
        InputRequired(message=_l("Choose what the token may do: Open311 filing only, read only, or full."))])
    # The range is the service's rule (tokens.create); the form only reads a whole number.
    expires_days = IntegerField(_l("Expires after (days)"), validators=[Optional()])


class IntakeForm(FlaskForm):
    resident_name = StringField(_l("Resident name"), validators=[DataRequired(), Length(max=100)])
    resident_phone = StringField(_l("Resident phone"), validators=[DataRequired(), ChinesePhone()])
    building_id = SelectField(_l("Building"), coerce=id_value, validate_choice=True,
                              validators=[InputRequired(message=_l("Choose the building the request is about."))])
    address_detail = StringField(_l("Unit / room"), validators=[Optional(), Length(max=200)])
    category = SelectField(_l("Category"), validators=[DataRequired()])
    description = TextAreaField(_l("What the resident asks"), validators=[DataRequired(), Length(max=4000)])
    channel = SelectField(_l("Channel"), choices=_choices(labels.STAFF_CHANNELS), validators=[DataRequired()])
    urgency = SelectField(_l("Urgency"), choices=_choices(labels.URGENCIES), default="normal")
    green_channel = SelectField(_l("Green channel"), choices=_choices(labels.GREEN_CHANNEL), default="")
    disposition = RadioField(_l("Disposition"), default="dispatch", choices=choices([
        ("dispatch", _l("Needs handling: send to the grid leader")),
        ("on_spot", _l("Answered on the spot")),
    ]))
    # No Optional(): it would stop the chain before validate_reply sees an empty on-the-spot reply.
    reply = TextAreaField(_l("Reply given to the resident"), validators=[Length(max=4000)])

    def validate_building_id(self, field) -> None:
        """The "—" placeholder (-1) is not a building."""
        if field.data == NO_CHOICE:
            raise ValidationError(_l("Choose the building the request is about."))

    def validate_reply(self, field) -> None:
        """An on-the-spot answer needs the reply text."""
        if self.disposition.data == "on_spot" and not (field.data or "").strip():
            raise ValidationError(_l("Write the reply given to the resident."))


class TaskForm(FlaskForm):
    """Every task form carries the case version it was loaded with."""

    version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$", message=_l(
        "The form is damaged; reload the page and try again."))])


class RecordReplyForm(TaskForm):
    disposition = RadioField(_l("Disposition"), default="dispatch", choices=choices([
        ("dispatch", _l("Needs handling: send to the grid leader")),
        ("on_spot", _l("Answered on the spot")),
    ]))
    # No Optional(): it would stop the chain before validate_reply sees an empty on-the-spot reply.
    reply = TextAreaField(_l("Reply given to the resident"), validators=[Length(max=4000)])

    validate_reply = IntakeForm.validate_reply

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"answered_on_spot": self.disposition.data == "on_spot", "reply": self.reply.data or ""}


class DispatchForm(TaskForm):
    dispatch_to = RadioField(_l("Send to"), default="member", choices=choices([
        ("member", _l("A grid member")), ("department", _l("Refer to a department"))]))
    handler_id = SelectField(_l("Grid member"), coerce=id_value, validate_choice=False, validators=[Optional()])
    department_id = SelectField(_l("Department"), coerce=id_value, validate_choice=False, validators=[Optional()])
    deadline_class = SelectField(_l("Time limit"), choices=_choices(labels.DEADLINE_CLASSES), default="general")

    def validate_handler_id(self, field) -> None:
        """Dispatching to a member needs the member."""
        if self.dispatch_to.data == "member" and not field.data:
            raise ValidationError(_l("Choose the grid member who will handle it."))

    def validate_department_id(self, field) -> None:
        """A referral needs the department."""
        if self.dispatch_to.data == "department" and not field.data:
            raise ValidationError(_l("Choose the department to refer it to."))

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"dispatch_to": self.dispatch_to.data, "handler_id": self.handler_id.data,
                "department_id": self.department_id.data, "deadline_class": self.deadline_class.data}


class HandleForm(TaskForm):
    handle_action = RadioField(_l("Outcome"), default="done", choices=_choices(labels.HANDLE_ACTIONS))
    text = TextAreaField(_l("Result, or reason"), validators=[DataRequired(), Length(max=4000)])
    extension_days = IntegerField(_l("Extension (working days)"), validators=[Optional(), NumberRange(1, 30)])

    def validate_extension_days(self, field) -> None:
        """An extension request says how many days."""
        if self.handle_action.data == "extend" and not field.data:
            raise ValidationError(_l("Say how many working days the extension is for (1-30)."))

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"handle_action": self.handle_action.data, "text": self.text.data,
                "extension_days": self.extension_days.data}


class ReviewExtensionForm(TaskForm):
    decision = RadioField(_l("Decision"), default="approve", choices=choices([
        ("approve", _l("Approve the extension")), ("refuse", _l("Refuse"))]))
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"extension_approved": self.decision.data == "approve", "comment": self.comment.data or ""}


class CallbackForm(TaskForm):
    satisfaction = RadioField(_l("Resident's answer"), choices=_choices(labels.OUTCOMES),
                              validators=[InputRequired(message=_l("Choose the resident's answer."))])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"satisfaction": self.satisfaction.data, "note": self.note.data or ""}


class ReviewArchiveForm(TaskForm):
    confirm = BooleanField(_l("I have reviewed the record; archive it"),
                           validators=[DataRequired(message=_l("Tick the box to confirm the review."))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=2000)])

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"comment": self.comment.data or ""}


class SuperviseForm(TaskForm):
    note = TextAreaField(_l("Supervision opinion for the handler"), validators=[
        DataRequired(message=_l("Write the supervision opinion for the handler.")), Length(max=2000)])

    def workflow_data(self) -> dict:
        """Return what the service needs."""
        return {"note": self.note.data}


class ClaimForm(TaskForm):
    """Claim a pool task (or sign for a handling task); only the version and CSRF token."""


class VisitForm(FlaskForm):
    """Record a routine visit: the diary note, and optionally a case it raised."""

    version = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("Diary note: what you saw and talked about"), validators=[
        DataRequired(message=_l("Write what you saw and talked about (the diary note).")), Length(max=4000)])
    raise_case = BooleanField(_l("The visit raised a request: open a case"))
    category = SelectField(_l("Category"), validators=[Optional()])
    description = TextAreaField(_l("The request"), validators=[Optional(), Length(max=4000)])

    def validate_description(self, field) -> None:
        """A raised case needs its request written down."""
        if self.raise_case.data and not (field.data or "").strip():
            raise ValidationError(_l("Describe the request the case is for."))


class NoteForm(FlaskForm):
    """A diary note outside a planned visit."""

    text = TextAreaField(_l("Diary note"), validators=[DataRequired(message=_l("Write the note.")), Length(max=4000)])


class HouseholdForm(FlaskForm):
    """Register a household for visits."""

    building_id = SelectField(_l("Building"), coerce=id_value, validate_choice=False)
    address_detail = StringField(_l("Unit and room"), validators=[DataRequired(), Length(max=200)])
    head_name = StringField(_l("Person visited"), validators=[DataRequired(), Length(max=100)])
    phone = StringField(_l("Phone"), validators=[Optional(), ChinesePhone()])
    care_group = SelectField(_l("Care group"), choices=_choices(labels.CARE_GROUPS))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=2000)])


WEEKDAY_CHOICES = [(1, _l("Mon")), (2, _l("Tue")), (3, _l("Wed")), (4, _l("Thu")), (5, _l("Fri")),
                   (6, _l("Sat")), (7, _l("Sun"))]


class PlanForm(FlaskForm):
    """Plan visits: fixed person, fixed weekdays, fixed time."""

    member_id = SelectField(_l("Grid member"), coerce=id_value, validate_choice=False)
    weekdays = SelectMultipleField(_l("Weekdays"), coerce=id_value, choices=choices(WEEKDAY_CHOICES),
                                   option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False),
                                   validators=[DataRequired(message=_l("Choose at least one weekday."))])
    time_of_day = StringField(_l("Time (HH:MM)"), default="09:30", validators=[DataRequired()])
    on_holiday = RadioField(_l("On public holidays"), default="keep", choices=choices([
        ("keep", _l("Visit anyway")), ("skip", _l("Skip the visit"))]))


class ReassignForm(TaskForm):
    """A leader gives an open task to a named person, with a reason."""

    assignee_id = SelectField(_l("Give the task to"), coerce=id_value, validate_choice=False)
    reason = StringField(_l("Reason"), validators=[
        DataRequired(message=_l("Write why the task is reassigned.")), Length(max=200)])

    def validate_assignee_id(self, field) -> None:
        """The "—" placeholder is not a person."""
        if field.data in (None, 0):
            raise ValidationError(_l("Choose who takes the task."))


class HandoverForm(FlaskForm):
    """Hand every open task of one member over to one or several others."""

    member_id = SelectField(_l("Hand over the tasks of"), coerce=id_value, validate_choice=False)
    to_ids = SelectMultipleField(_l("To"), coerce=id_value, validate_choice=False, option_widget=CheckboxInput(),
                                 widget=ListWidget(prefix_label=False),
                                 validators=[DataRequired(message=_l("Choose at least one member to take the tasks."))])
    mode = RadioField(_l("Share out"), default="even", choices=choices([
        ("even", _l("Evenly, in deadline order")), ("least_loaded", _l("Each to whoever has the fewest open tasks"))]))
    reason = StringField(_l("Reason"), validators=[
        DataRequired(message=_l("Write why the tasks are handed over.")), Length(max=200)])
    # Set by the preview: the task set the leader saw; confirming a different set is refused.
    fingerprint = HiddenField()

    def validate_member_id(self, field) -> None:
        """The "—" placeholder is not a member."""
        if field.data in (None, 0):
            raise ValidationError(_l("Choose the member whose tasks are handed over."))


class IsoDateField(DateField):
    """A date typed as YYYY-MM-DD, with a message saying so when it is not one."""

    def process_formdata(self, valuelist) -> None:
        """Parse the date, replacing WTForms' generic message."""
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01.")) from None


class CoverForm(FlaskForm):
    """Stand-in cover (代班): between two dates new work for one member goes to another."""

    member_id = SelectField(_l("Member away"), coerce=id_value, validate_choice=False)
    stand_in_id = SelectField(_l("Stand-in"), coerce=id_value, validate_choice=False)
    starts_on = IsoDateField(_l("From"), validators=[InputRequired(message=_l("Give the first day as YYYY-MM-DD."))])
    ends_on = IsoDateField(_l("To (included)"), validators=[InputRequired(message=_l("Give the last day as YYYY-MM-DD."))])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


TASK_FORMS: dict[str, type[TaskForm]] = {
    "record_reply": RecordReplyForm,
    "dispatch": DispatchForm,
    "handle": HandleForm,
    "review_extension": ReviewExtensionForm,
    "callback": CallbackForm,
    "review_archive": ReviewArchiveForm,
    "supervise": SuperviseForm,
}
