"""WTForms for login, intake and each task type; CSRF comes from Flask-WTF."""

from __future__ import annotations

import enum
import functools
import types
import typing
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Length, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from . import labels
from .codes import Disposition
from .services.commands import (
    MAX_ID,
    AddCover,
    AddNote,
    C,
    CloseDeskSession,
    Command,
    CreateToken,
    HandOverTasks,
    InvalidCommand,
    PlanDeskSessions,
    PlanVisits,
    ReassignTask,
    Recall,
    RecordCase,
    RecordVisit,
    RegisterHousehold,
    SaveReplyTemplate,
    SetDeliveryPreference,
    build,
)


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
def id_value(value) -> int:
    """Coerce a posted id: an integer a row can have (or the placeholder); anything else is not a choice."""
    if value in ("", None):
        return NO_CHOICE  # nothing chosen: the command says what to choose
    number = int(value)
    if not NO_CHOICE <= number <= MAX_ID:
        raise ValueError(f"{value!r} is not an id")
    return number


# -- forms and commands: task forms built from their commands, commands built from posted forms -------

#: Coded fields shown as a drop-down list rather than radio buttons.
SELECTS = frozenset({"deadline_class"})
#: The choice a task form starts with where its command has no default (programs must say it).
FORM_DEFAULTS = {"disposition": "dispatch", "dispatch_to": "member", "deadline_class": "general",
                 "handle_action": "done", "decision": "approve"}
#: Text fields longer than this are typed in a text area.
SHORT_TEXT = 200


def task_form(form_key: str) -> type[TaskForm]:
    """Return the web form of a kind of user task, built from its command (services.cases.TASKS)."""
    from .services.cases import TASKS
    return _form_class(TASKS[form_key].command)


@functools.cache
def _form_class(command: type[Command]) -> type[TaskForm]:
    """Build a form class with one field per command field: its widget, label, choices and HTML hints."""
    fields = {name: _field(name, info) for name, info in command.model_fields.items()}
    return type(f"{command.__name__}Form", (TaskForm,), {**fields, "command": command})


def _field(name: str, info: FieldInfo):
    """Return the WTForms field for one command field."""
    label = _l(info.description or name)
    kind, choices_ = _kind(info.annotation)
    default = FORM_DEFAULTS.get(name) if info.default is PydanticUndefined else info.default
    hints = _hints(info)
    if choices_ is not None:
        table = labels.CHOICES[name]
        field_class = SelectField if name in SELECTS else RadioField
        return field_class(label, choices=choices([(c.value, table[c.value]) for c in choices_]),
                           default=getattr(default, "value", default), render_kw=hints,
                           validate_choice=False)
    if kind is bool:
        return BooleanField(label, default=bool(default), render_kw=hints)
    if kind is int and _is_id(info):
        return SelectField(label, coerce=id_value, validate_choice=False, render_kw=hints)
    if kind is int:
        return IntegerField(label, validators=[Optional()], render_kw=hints)
    long_text = (hints.get("maxlength") or 0) > SHORT_TEXT
    return (TextAreaField if long_text else StringField)(label, default=default or "", render_kw=hints)


def _kind(annotation: Any) -> tuple[type, list | None]:
    """Return a field's base type (Optional unwrapped) and, for a coded field, its choices."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind(args[0])
    if typing.get_origin(annotation) is typing.Annotated:
        return _kind(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return bool, None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str, list(annotation)
    return annotation, None


def _constraint(info: FieldInfo, name: str) -> Any:
    """Return a length or range constraint of a field (min_length, max_length, ge, le), or None."""
    items = [*info.metadata, *_nested_metadata(info.annotation)]
    for item in items:
        if isinstance(item, FieldInfo):  # Annotated[int, Field(ge=1)] keeps its constraints inside
            items += item.metadata
        elif getattr(item, name, None) is not None:
            return getattr(item, name)
    return None


def _nested_metadata(annotation: Any) -> list:
    """Return the constraints inside an Optional or Annotated type."""
    found = []
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            found += list(arg.__metadata__)
        elif typing.get_origin(arg) in (typing.Union, types.UnionType):
            found += _nested_metadata(arg)
    return found


def _is_id(info: FieldInfo) -> bool:
    """Whether a field holds a row id (chosen from a list)."""
    return _constraint(info, "le") == MAX_ID


def _hints(info: FieldInfo) -> dict[str, Any]:
    """Return the HTML attributes that tell a browser the field's rules before it is sent."""
    hints: dict[str, Any] = {}
    if (longest := _constraint(info, "max_length")) is not None:
        hints["maxlength"] = longest
    if info.is_required() and _constraint(info, "min_length") and not _kind(info.annotation)[1]:
        hints["required"] = True
    if (low := _constraint(info, "ge")) is not None and not _is_id(info):
        hints["min"], hints["max"] = low, _constraint(info, "le")
    return hints


def command_data(form: FlaskForm, command: type[Command]) -> dict[str, Any]:
    """Return the form's values for the command's fields; fields left empty ("—", nothing chosen) are left out."""
    data = {}
    for name in command.model_fields:
        field = getattr(form, name, None)
        if field is None:
            continue
        value = field.data
        if isinstance(field, SelectField) and field.coerce is id_value and value in (NO_CHOICE, 0):
            value = None
        if value is not None:  # nothing sent or chosen: the command's default applies, or it says what is missing
            data[name] = value
    return data


def build_command(form: FlaskForm, command: type[C], **extra: Any) -> C | None:
    """Check the posted form (CSRF, values that are no number or date) and build its command.

    Every problem is shown at once, each on its field (or on the form): the form's own, then the
    command's for the fields the form found nothing wrong with. Return None when there is any.
    """
    readable = form.validate()
    try:
        built = build(command, {**command_data(form, command), **extra})
    except InvalidCommand as exc:
        for error in exc.errors:
            field = getattr(form, error.field.split(".")[0], None)
            if field is None:
                form.form_errors.append(error.localized())
            elif not field.errors:  # a value the form could not read is already named
                field.errors = [*field.errors, error.localized()]
        return None
    return built if readable else None


def rules_from(command: type[Command]):
    """Give a hand-written form's fields the HTML hints of its command's rules (which alone decide)."""
    def decorate(form_class):
        for name, info in command.model_fields.items():
            unbound = getattr(form_class, name, None)
            if isinstance(unbound, UnboundField) and unbound.field_class is not HiddenField:
                unbound.kwargs["render_kw"] = {**_hints(info), **(unbound.kwargs.get("render_kw") or {})}
        form_class.command = command
        return form_class
    return decorate


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


@rules_from(CreateToken)
class TokenForm(FlaskForm):
    """Name a new API token after the program that will use it; choose what it may do and for how long."""

    name = StringField(_l("What the token is for"))
    scope = RadioField(_l("What the token may do"), choices=_choices(TOKEN_SCOPES), validate_choice=False)
    # The range is CreateToken's rule; the form only reads a whole number.
    expires_days = IntegerField(_l("Expires after (days)"), validators=[Optional()])


@rules_from(SetDeliveryPreference)
class DeliveryForm(FlaskForm):
    """Which channels my notifications also go out by (SetDeliveryPreference's rules)."""

    email = StringField(_l("E-mail address"), render_kw={"type": "email", "autocomplete": "email"})
    email_on = BooleanField(_l("Send my notifications by e-mail"))
    webhook_on = BooleanField(_l("Send my notifications by text message or WeChat Work"))


class TaskForm(FlaskForm):
    """Every task form carries the case version it was loaded with."""

    version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$", message=_l(
        "The form is damaged; reload the page and try again."))])


@rules_from(RecordCase)
class IntakeForm(FlaskForm):
    """Record a request at the desk; the rules are RecordCase's."""

    resident_name = StringField(_l("Resident name"))
    resident_phone = StringField(_l("Resident phone"))
    building_id = SelectField(_l("Building"), coerce=id_value, validate_choice=False)
    address_detail = StringField(_l("Unit / room"))
    category = SelectField(_l("Category"), validate_choice=False)
    description = TextAreaField(_l("What the resident asks"))
    channel = SelectField(_l("Channel"), choices=_choices(labels.STAFF_CHANNELS), validate_choice=False)
    urgency = SelectField(_l("Urgency"), choices=_choices(labels.URGENCIES), default="normal", validate_choice=False)
    green_channel = SelectField(_l("Green channel"), choices=_choices(labels.GREEN_CHANNEL), default="",
                                validate_choice=False)
    disposition = RadioField(_l("Disposition"), default="dispatch", validate_choice=False, choices=choices([
        ("dispatch", _l("Needs handling: send to the grid leader")),
        ("on_spot", _l("Answered on the spot")),
    ]))
    reply = TextAreaField(_l("Reply given to the resident"))
    # A one-time key made when the page is shown: sending the form again (a double click, a retry) shows
    # the case already made from it instead of making another (services.duplicates). Optional.
    intake_key = HiddenField()

    def to_command(self) -> RecordCase | None:
        """Build the intake command (the disposition radio says whether it was answered on the spot)."""
        command = build_command(self, RecordCase, answered_on_spot=self.disposition.data == Disposition.ON_SPOT)
        if self.disposition.data not in set(Disposition):  # after validating, which clears field errors
            self.disposition.errors = [_l("Choose whether it was answered on the spot or needs handling.")]
            return None
        return command


class ClaimForm(TaskForm):
    """Claim a pool task (or sign for a handling task); only the version and CSRF token."""


@rules_from(RecordVisit)
class VisitForm(FlaskForm):
    """Record a routine visit: the diary note, and optionally a case it raised (RecordVisit's rules)."""

    version = HiddenField()
    note = TextAreaField(_l("Diary note: what you saw and talked about"))
    raise_case = BooleanField(_l("The visit raised a request: open a case"))
    category = SelectField(_l("Category"), validate_choice=False)
    description = TextAreaField(_l("The request"))


@rules_from(AddNote)
class NoteForm(FlaskForm):
    """A diary note outside a planned visit (AddNote's rules)."""

    text = TextAreaField(_l("Diary note"))


@rules_from(RegisterHousehold)
class HouseholdForm(FlaskForm):
    """Register a household for visits (RegisterHousehold's rules)."""

    building_id = SelectField(_l("Building"), coerce=id_value, validate_choice=False)
    address_detail = StringField(_l("Unit and room"))
    head_name = StringField(_l("Person visited"))
    phone = StringField(_l("Phone"))
    care_group = SelectField(_l("Care group"), choices=_choices(labels.CARE_GROUPS), validate_choice=False)
    note = TextAreaField(_l("Note"))


WEEKDAY_CHOICES = [(1, _l("Mon")), (2, _l("Tue")), (3, _l("Wed")), (4, _l("Thu")), (5, _l("Fri")),
                   (6, _l("Sat")), (7, _l("Sun"))]


@rules_from(PlanVisits)
class PlanForm(FlaskForm):
    """Plan visits: fixed person, fixed weekdays, fixed time (PlanVisits' rules)."""

    member_id = SelectField(_l("Grid member"), coerce=id_value, validate_choice=False)
    weekdays = SelectMultipleField(_l("Weekdays"), coerce=id_value, choices=choices(WEEKDAY_CHOICES),
                                   option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False),
                                   validate_choice=False)
    time_of_day = StringField(_l("Time (HH:MM)"), default="09:30")
    on_holiday = RadioField(_l("On public holidays"), default="keep", validate_choice=False, choices=choices([
        ("keep", _l("Visit anyway")), ("skip", _l("Skip the visit"))]))


@rules_from(ReassignTask)
class ReassignForm(TaskForm):
    """A leader gives an open task to a named person, with a reason (ReassignTask's rules)."""

    assignee_id = SelectField(_l("Give the task to"), coerce=id_value, validate_choice=False)
    reason = StringField(_l("Reason"))


@rules_from(HandOverTasks)
class HandoverForm(FlaskForm):
    """Hand every open task of one member over to one or several others (HandOverTasks' rules)."""

    member_id = SelectField(_l("Hand over the tasks of"), coerce=id_value, validate_choice=False)
    # Not "To": that msgid is the date filters' end date (结束日期); these are people.
    to_ids = SelectMultipleField(_l("Hand them over to"), coerce=id_value, validate_choice=False,
                                 option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))
    mode = RadioField(_l("Share out"), default="even", validate_choice=False, choices=choices([
        ("even", _l("Evenly, in deadline order")), ("least_loaded", _l("Each to whoever has the fewest open tasks"))]))
    reason = StringField(_l("Reason"))
    # Set by the preview: the task set the leader saw; confirming a different set is refused.
    fingerprint = HiddenField()


class IsoDateField(DateField):
    """A date typed as YYYY-MM-DD, with a message saying so when it is not one."""

    def process_formdata(self, valuelist) -> None:
        """Parse the date, replacing WTForms' generic message; nothing typed is no date (the command says so)."""
        if not valuelist or not (valuelist[0] or "").strip():
            self.data = None
            return
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01.")) from None


@rules_from(AddCover)
class CoverForm(FlaskForm):
    """Stand-in cover (代班): between two dates new work for one member goes to another (AddCover's rules)."""

    member_id = SelectField(_l("Member away"), coerce=id_value, validate_choice=False)
    stand_in_id = SelectField(_l("Stand-in"), coerce=id_value, validate_choice=False)
    starts_on = IsoDateField(_l("From"))
    ends_on = IsoDateField(_l("To (included)"))
    reason = StringField(_l("Reason"))


# -- the public resident form and status page; mobile desk sessions ---------------------------------------

@rules_from(RecordCase)
class PublicRequestForm(FlaskForm):
    """The resident form a grid poster's QR code opens (RecordCase's rules), with a small sum to answer."""

    resident_name = StringField(_l("Your name"))
    resident_phone = StringField(_l("Your phone"))
    building_id = SelectField(_l("Building compound"), coerce=id_value, validate_choice=False)
    address_detail = StringField(_l("Unit / room"))
    category = SelectField(_l("What it is about"), validate_choice=False, default="other")
    description = TextAreaField(_l("Your request"))
    # A signed arithmetic question (views.public): no outside captcha service.
    challenge = HiddenField()
    answer = StringField(_l("Answer"), validators=[DataRequired(_l("Answer the question.")), Length(max=3)])


class StatusForm(FlaskForm):
    """Follow a case by its number and the last four digits of the phone given."""

    number = StringField(_l("Case number"), validators=[DataRequired(_l("Write the case number.")), Length(max=32)])
    last_four = StringField(_l("Last four digits of your phone"), validators=[
        DataRequired(_l("Write the last four digits of your phone.")),
        Regexp(r"^\d{4}$", message=_l("Write the last four digits of your phone."))])


@rules_from(PlanDeskSessions)
class DeskPlanForm(FlaskForm):
    """Plan mobile desk sessions: the route's compounds in turn, or a free address (PlanDeskSessions' rules)."""

    building_ids = SelectMultipleField(_l("Building compounds, in route order"), coerce=id_value,
                                       validate_choice=False, option_widget=CheckboxInput(),
                                       widget=ListWidget(prefix_label=False))
    address = StringField(_l("Or a free address (a square, a market)"))
    first_day = IsoDateField(_l("First day"))
    starts_at = StringField(_l("From (HH:MM)"), default="09:00")
    ends_at = StringField(_l("To (HH:MM)"), default="11:30")
    staff_ids = SelectMultipleField(_l("Staff"), coerce=id_value, validate_choice=False,
                                    option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))
    weeks = IntegerField(_l("Weekly sessions"), default=1, validators=[Optional()])


@rules_from(CloseDeskSession)
class DeskCloseForm(FlaskForm):
    """Close a desk session with a note (CloseDeskSession's rules)."""

    note = TextAreaField(_l("Note for the summary"))


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


@rules_from(Recall)
class RecallForm(TaskForm):
    """A leader recalls (撤回) a case referred to a department, with a reason (Recall's rules)."""

    reason = StringField(_l("Why the case is recalled"))


@rules_from(SaveReplyTemplate)
class ReplyTemplateForm(FlaskForm):
    """A reply template (常用语) of a grid (SaveReplyTemplate's rules)."""

    grid_id = SelectField(_l("Grid"), coerce=id_value, validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)
    use = RadioField(_l("Used for"), default="reply", validate_choice=False, choices=_choices(labels.REPLY_USES))
    title = StringField(_l("Title"))
    text = TextAreaField(_l("Text ({name}: the resident's name, {number}: the case number)"))


class ProactiveCaseForm(FlaskForm):
    """Open a hotspot's proactive case (主动发现); RecordCase's rules (the place and category: the hotspot's)."""

    resident_name = StringField(_l("Contact name"))
    resident_phone = StringField(_l("Contact phone"))
    description = TextAreaField(_l("What the grid will do"))

    def to_command(self, building_id: int, category: str) -> RecordCase | None:
        """Build the intake of the proactive case."""
        return build_command(self, RecordCase, channel="proactive", building_id=building_id, category=category)


class ReportForm(FlaskForm):
    """Produce a report now: the period (a week or a month, by a day in it) of one scope."""

    period = SelectField(_l("Period"), choices=choices([("month", _l("Month")), ("week", _l("Week"))]),
                         default="month")
    scope = HiddenField()
    scope_id = HiddenField()
    day = IsoDateField(_l("A day in the period"))
