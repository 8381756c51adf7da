"""Commands: one typed input per use case, carrying every rule of its fields once.

The HTML forms, the JSON API and Open311 are adapters that build these; services take them and
check only what needs the database (a handler of this grid, a known category). The API's request
schemas are generated from them, and their errors read the same whichever door the input came
through: each is an English message template (translated at the boundary) on a named field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..codes import (
    ArchiveDecision,
    AttachmentKind,
    CareGroup,
    Channel,
    DeadlineClass,
    Decision,
    DispatchTo,
    Disposition,
    GreenChannel,
    HandleAction,
    HandoverMode,
    OnHoliday,
    Outcome,
    ReplyUse,
    Urgency,
)
from ..errors import N_, InvalidInput
from ..models import Role, TokenScope

if TYPE_CHECKING:
    from ..queries import stats

#: The largest id a row can have (PostgreSQL's integer).
MAX_ID = 2**31 - 1


def _problem(template: str, **params: Any) -> PydanticCustomError:
    """Return a field error whose message is one of ours (an English template, translated later)."""
    return PydanticCustomError("gridloop", template, params)


#: What a phone number that is not one is told.
PHONE_MESSAGE = N_("Not a valid phone number: enter an 11-digit mobile number or a landline with area code, "
                   "e.g. 13812345678 or 010-12345678.")


def e164(value: str) -> str | None:
    """Return a mainland China phone number in E.164 (+8613812345678), or None if it is not one."""
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone(value: str) -> str:
    """Return a mainland China phone number in E.164, or refuse it."""
    if (number := e164(value)) is None:
        raise _problem(PHONE_MESSAGE)
    return number


def _http_url(value: str) -> str:
    """Accept an empty value or an http(s) address naming a host."""
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", value)):
        raise _problem(N_("Give a web address starting with http:// or https://."))
    return value


def _email(value: str) -> str:
    """Accept an empty value or something shaped like an e-mail address."""
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise _problem(N_("Not an e-mail address, e.g. name@example.cn."))
    return value


def _text(max_length: int, *, required: bool = False) -> Any:
    """A stripped text of at most ``max_length`` characters (at least one when required)."""
    return Annotated[str, Field(min_length=1 if required else 0, max_length=max_length)]


def titled(title: str) -> Any:
    """Name a field for people: the API document's description, the form's label (translated there)."""
    return Field(description=title)


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Phone = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_phone)]


#: Format characters a text may carry at its ends without showing them (stripped like whitespace).
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad" + "".join(map(chr, range(0x2000, 0x200b))) + " \t\r\n\u3000"


class Command(BaseModel):
    """A use case's input: closed (unknown fields are refused), stripped, immutable once built."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True, use_enum_values=False)
    #: Field name -> the message shown when that field is missing, empty or not one of the choices.
    messages: ClassVar[Mapping[str, str]] = {}

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """Refuse text holding a NUL character, which no database stores (PostgreSQL fails on it); strip
        invisible characters from its ends."""
        if isinstance(value, str) and "\x00" in value:
            raise _problem(N_("Remove the NUL character (\\x00) from this field."))
        if isinstance(value, str):
            # Invisible characters at either end (zero-width spaces, a byte-order mark pasted from a chat)
            # go with the whitespace: a text of nothing else is empty, as a required field may not be.
            return value.strip(INVISIBLE)
        return value


# -- recording a case --------------------------------------------------------------------------------

class RecordCase(Command):
    """Record a resident's request (the web form, the JSON API, Open311, a visit)."""

    # First, so that the phone's rule can read it.
    channel: Channel
    resident_name: _text(100, required=True)
    # Required, but for a case raised on a door-to-door visit (the household may have given none) or filed
    # by a resident's app (Open311 makes it optional).
    resident_phone: Annotated[str, Field(max_length=40, description=N_(
        "A mainland China number, e.g. 13812345678 or 010-12345678."), examples=["13812345678", "010-12345678"],
        json_schema_extra={"minLength": 1})]
    building_id: Id
    address_detail: _text(200) = ""
    category: _text(40, required=True)
    description: _text(4000, required=True)
    urgency: Urgency = Urgency.NORMAL
    green_channel: GreenChannel = GreenChannel.NONE
    # Decided at intake (answered on the spot, or sent on); None leaves the record-and-reply step for the grid.
    answered_on_spot: bool | None = False
    reply: _text(4000) = Field("", validate_default=True)
    # From programs (the API, Open311): optional contact and position details.
    resident_email: Annotated[_text(254), AfterValidator(_email)] = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    media_url: Annotated[_text(500), AfterValidator(_http_url)] = ""

    messages: ClassVar[Mapping[str, str]] = {
        "resident_name": N_("Write the resident's name."),
        "building_id": N_("Choose the building the request is about."),
        "category": N_("Choose a category from the list."),
        "description": N_("Write what the resident asks (up to 4,000 characters)."),
        "channel": N_("Choose how the resident reached you."),
    }

    @field_validator("resident_phone")
    @classmethod
    def _phone_unless_visited(cls, phone: str, info: ValidationInfo) -> str:
        """Check and normalise the phone; only a visit or an Open311 filing may leave it out."""
        # Open311 makes the phone optional; a visit's household may have given none (the visits service,
        # not the input, says so through the validation context).
        if not phone and (info.data.get("channel") == Channel.OPEN311
                          or (info.context or {}).get("household_visit")):
            return phone
        return _phone(phone)

    @field_validator("reply")
    @classmethod
    def _reply_when_answered(cls, reply: str, info: ValidationInfo) -> str:
        """An on-the-spot answer needs the reply text."""
        if info.data.get("answered_on_spot") and not reply:
            raise _problem(N_("Write the reply given to the resident."))
        return reply


# -- the task forms ------------------------------------------------------------------------------------

class TaskCommand(Command):
    """What completing one kind of user task takes."""

    def workflow_data(self) -> dict[str, Any]:
        """Return the fields as the workflow and the audit trail record them."""
        return self.model_dump(mode="json")


class RecordReply(TaskCommand):
    """Settle the record-and-reply step: answered on the spot, or sent on for handling."""

    disposition: Annotated[Disposition, titled(N_("Disposition"))]
    reply: Annotated[_text(4000), titled(N_("Reply given to the resident"))] = Field("", validate_default=True)

    @field_validator("reply")
    @classmethod
    def _reply_when_answered(cls, reply: str, info: ValidationInfo) -> str:
        """An on-the-spot answer needs the reply text."""
        if info.data.get("disposition") == Disposition.ON_SPOT and not reply:
            raise _problem(N_("Write the reply given to the resident."))
        return reply

    def workflow_data(self) -> dict[str, Any]:
        """Return what the service records."""
        return {"answered_on_spot": self.disposition == Disposition.ON_SPOT, "reply": self.reply}


class Dispatch(TaskCommand):
    """Send the case to a grid member or refer it to a department, with a time limit."""

    dispatch_to: Annotated[DispatchTo, titled(N_("Send to"))]
    handler_id: Annotated[Id | None, titled(N_("Grid member"))] = Field(None, validate_default=True)
    department_id: Annotated[Id | None, titled(N_("Department"))] = Field(None, validate_default=True)
    deadline_class: Annotated[DeadlineClass, titled(N_("Time limit"))]
    # The dispatch note (派单意见): what the leader tells the handler; shown on the handling task.
    dispatch_note: Annotated[_text(2000), titled(N_("Dispatch note for the handler"))] = ""

    messages: ClassVar[Mapping[str, str]] = {"deadline_class": N_("Choose a time limit from the list.")}

    @field_validator("handler_id")
    @classmethod
    def _handler_for_a_member(cls, handler_id: int | None, info: ValidationInfo) -> int | None:
        """Dispatching to a member needs the member."""
        if info.data.get("dispatch_to") == DispatchTo.MEMBER and handler_id is None:
            raise _problem(N_("Choose the grid member who will handle it."))
        return handler_id

    @field_validator("department_id")
    @classmethod
    def _department_for_a_referral(cls, department_id: int | None, info: ValidationInfo) -> int | None:
        """A referral needs the department."""
        if info.data.get("dispatch_to") == DispatchTo.DEPARTMENT and department_id is None:
            raise _problem(N_("Choose the department to refer it to."))
        return department_id


class Handle(TaskCommand):
    """End the handling step: done with a result, returned with a reason, or an extension asked for."""

    handle_action: Annotated[HandleAction, titled(N_("Outcome"))]
    text: Annotated[_text(4000, required=True), titled(N_("Result, or reason"))]
    extension_days: Annotated[Annotated[int, Field(ge=1, le=30)] | None,
                              titled(N_("Extension (working days)"))] = Field(None, validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {
        "text": N_("Write the result, the reason for returning, or the reason for the extension."),
        "extension_days": N_("An extension is 1 to 30 working days."),
    }

    @field_validator("extension_days")
    @classmethod
    def _days_for_an_extension(cls, days: int | None, info: ValidationInfo) -> int | None:
        """An extension request says how many days."""
        if info.data.get("handle_action") == HandleAction.EXTEND and days is None:
            raise _problem(N_("Say how many working days the extension is for (1-30)."))
        return days


class ReviewExtension(TaskCommand):
    """Approve or refuse a requested extension."""

    decision: Annotated[Decision, titled(N_("Decision"))]
    comment: Annotated[_text(2000), titled(N_("Comment"))] = ""

    def workflow_data(self) -> dict[str, Any]:
        """Return what the service records."""
        return {"extension_approved": self.decision == Decision.APPROVE, "comment": self.comment}


class Callback(TaskCommand):
    """Record the resident's answer at the callback."""

    satisfaction: Annotated[Outcome, titled(N_("Resident's answer"))]
    note: Annotated[_text(2000), titled(N_("Note"))] = Field("", validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {"satisfaction": N_("Choose the resident's answer.")}

    @field_validator("note")
    @classmethod
    def _why_dissatisfied(cls, note: str, info: ValidationInfo) -> str:
        """A dissatisfied resident says why: the handler works again from that note."""
        if info.data.get("satisfaction") == Outcome.DISSATISFIED and not note:
            raise _problem(N_("Write what the resident is not satisfied with."))
        return note


class ReviewArchive(TaskCommand):
    """Archive the reviewed record, or send the case back to its handler for rework (退回重办) with a reason."""

    archive_decision: Annotated[ArchiveDecision, titled(N_("Decision"))] = ArchiveDecision.ARCHIVE
    confirm: Annotated[bool, titled(N_("I have reviewed the record; archive it"))] = Field(
        False, validate_default=True)
    comment: Annotated[_text(2000), titled(N_("Comment, or the reason for rework"))] = Field(
        "", validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {"confirm": N_("Tick the box to confirm the review.")}

    @field_validator("confirm")
    @classmethod
    def _confirmed_to_archive(cls, confirm: bool, info: ValidationInfo) -> bool:
        """Archiving needs the reviewer's confirmation."""
        if info.data.get("archive_decision", ArchiveDecision.ARCHIVE) == ArchiveDecision.ARCHIVE and not confirm:
            raise _problem(N_("Tick the box to confirm the review."))
        return confirm

    @field_validator("comment")
    @classmethod
    def _reason_for_rework(cls, comment: str, info: ValidationInfo) -> str:
        """Sending a case back needs the reason, which goes to the handler."""
        if info.data.get("archive_decision") == ArchiveDecision.REWORK and not comment:
            raise _problem(N_("Write why the case goes back for rework; the handler reads it."))
        return comment

    def workflow_data(self) -> dict[str, Any]:
        """Return what the service records."""
        return {"archive_decision": str(self.archive_decision), "comment": self.comment}


class Supervise(TaskCommand):
    """Send a supervision opinion (督办意见) to the handler."""

    note: Annotated[_text(2000, required=True), titled(N_("Supervision opinion for the handler"))]

    messages: ClassVar[Mapping[str, str]] = {"note": N_("Write the supervision opinion for the handler.")}


class Recall(Command):
    """Recall (撤回) a case referred to a department before the department finishes: back to dispatch."""

    version: Annotated[int, Field(ge=1, le=MAX_ID, description=N_(
        "The case's version when you read it; a stale version gets 409."))]
    reason: _text(500, required=True)

    messages: ClassVar[Mapping[str, str]] = {"reason": N_("Write why the case is recalled; the department reads it."),
                                             "version": N_("The form is damaged; reload the page and try again.")}


class LinkDuplicate(Command):
    """Link a case waiting for dispatch to the main case it repeats (重复件): it follows that case."""

    version: Annotated[int, Field(ge=1, le=MAX_ID, description=N_(
        "The case's version when you read it; a stale version gets 409."))]
    main_number: Annotated[_text(32, required=True), titled(N_("Main case number"))]

    messages: ClassVar[Mapping[str, str]] = {"main_number": N_("Give the number of the main case this one repeats."),
                                             "version": N_("The form is damaged; reload the page and try again.")}


class SaveReplyTemplate(Command):
    """Create or change a reply template (常用语) of a grid; {name} and {number} are filled in on insert."""

    grid_id: Id
    category: _text(40) = ""
    use: ReplyUse
    title: _text(100, required=True)
    text: _text(2000, required=True)

    messages: ClassVar[Mapping[str, str]] = {
        "grid_id": N_("Choose the grid the template is for."),
        "use": N_("Choose where the template is used."),
        "title": N_("Give the template a short title."),
        "text": N_("Write the template's text."),
    }


# -- moving work ---------------------------------------------------------------------------------------

class ReassignTask(Command):
    """Give an open task to a named person of its lane, with a reason."""

    version: Annotated[int, Field(ge=1, le=MAX_ID, description=N_(
        "The case's version when you read it; a stale version gets 409."))]
    assignee_id: Id
    reason: _text(200, required=True)

    messages: ClassVar[Mapping[str, str]] = {"assignee_id": N_("Choose who takes the task."),
                                             "reason": N_("Write why the task is reassigned."),
                                             "version": N_("The form is damaged; reload the page and try again.")}


class HandOverTasks(Command):
    """Hand every open task of one member over to one or several others."""

    member_id: Id
    to_ids: Annotated[list[Id], Field(min_length=1, max_length=100)]
    mode: HandoverMode
    reason: _text(200, required=True)
    # Set by the preview: the task set the leader saw; confirming a different set is refused.
    fingerprint: Annotated[_text(128), titled(N_("From the preview; send it back to carry the handover out."))] = ""

    messages: ClassVar[Mapping[str, str]] = {
        "member_id": N_("Choose the member whose tasks are handed over."),
        "to_ids": N_("Choose at least one member to take the tasks."),
        "reason": N_("Write why the tasks are handed over."),
    }


class AddCover(Command):
    """Stand-in cover (代班): between two dates new work for one member goes to another."""

    member_id: Id
    stand_in_id: Id
    starts_on: dt.date
    ends_on: dt.date
    reason: _text(200) = ""

    messages: ClassVar[Mapping[str, str]] = {
        "member_id": N_("Choose the member who is away."), "stand_in_id": N_("Choose the stand-in."),
        "starts_on": N_("Give the first day as YYYY-MM-DD."), "ends_on": N_("Give the last day as YYYY-MM-DD."),
    }

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, ends_on: dt.date, info: ValidationInfo) -> dt.date:
        """A cover ends on or after its first day."""
        if (starts_on := info.data.get("starts_on")) is not None and ends_on < starts_on:
            raise _problem(N_("The cover ends before it starts; check the dates."))
        return ends_on


C = TypeVar("C", bound=Command)


# -- visits -------------------------------------------------------------------------------------------

def _optional_phone(value: str) -> str:
    """Accept an empty phone, or a valid one in E.164."""
    return _phone(value) if value else value


class RegisterHousehold(Command):
    """Register a household of a building for routine visits (三定走访)."""

    building_id: Id
    address_detail: _text(200, required=True)
    head_name: _text(100, required=True)
    phone: Annotated[_text(40), AfterValidator(_optional_phone)] = ""
    care_group: CareGroup = CareGroup.NONE
    note: _text(2000) = ""

    messages: ClassVar[Mapping[str, str]] = {
        "building_id": N_("Choose the building the household lives in."),
        "address_detail": N_("Write the unit and room."),
        "head_name": N_("Write the name of the person visited."),
        "care_group": N_("Choose a care group from the list."),
    }


class PlanVisits(Command):
    """Plan visits: a fixed member, fixed weekdays, a fixed time."""

    member_id: Id
    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]
    time_of_day: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    on_holiday: OnHoliday = OnHoliday.KEEP

    messages: ClassVar[Mapping[str, str]] = {
        "member_id": N_("Choose a grid member of this household's grid."),
        "weekdays": N_("Choose at least one weekday."),
        "on_holiday": N_("Choose whether the visit happens on public holidays."),
    }

    @field_validator("time_of_day", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        """Say how to write a time that is not HH:MM."""
        if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value.strip()):
            raise _problem(N_("Write the time as HH:MM, e.g. 09:30."))
        return value.strip()


class AddNote(Command):
    """A dated diary note (民情日记) about a household outside a planned visit."""

    text: _text(4000, required=True)

    messages: ClassVar[Mapping[str, str]] = {"text": N_("Write the note.")}

class RecordVisit(Command):
    """Record a routine visit: the diary note, and optionally a case it raised for the household."""

    version: Annotated[int, Field(ge=1, le=MAX_ID)]
    note: _text(4000, required=True)
    raise_case: bool = False
    category: _text(40) = ""
    description: _text(4000) = Field("", validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {
        "note": N_("Write what you saw and talked about (the diary note)."),
        "version": N_("The form is damaged; reload the page and try again."),
    }

    @field_validator("description")
    @classmethod
    def _request_when_raised(cls, description: str, info: ValidationInfo) -> str:
        """A raised case needs its request written down."""
        if info.data.get("raise_case") and not description:
            raise _problem(N_("Describe the request the case is for."))
        return description


# -- accounts -----------------------------------------------------------------------------------------

class CreateToken(Command):
    """Issue an API token acting as its user within a scope, optionally for a number of days."""

    name: Annotated[_text(100, required=True), titled(N_("What the token is for"))]
    scope: TokenScope
    expires_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    messages: ClassVar[Mapping[str, str]] = {
        "name": N_("Name the token (up to 100 characters), e.g. the program that will use it."),
        "scope": N_("Choose what the token may do: Open311 filing only, read only, or full."),
        "expires_days": N_("Give the days until the token expires as a whole number from 1 to 3650, or "
                           "leave it empty for a token that lasts until revoked."),
    }


class SetDeliveryPreference(Command):
    """Choose how my notifications reach me besides the app: by e-mail, and by the webhook (SMS, WeChat Work)."""

    email: Annotated[_text(254), AfterValidator(_email), titled(N_("E-mail address"))] = ""
    email_on: Annotated[bool, titled(N_("Send my notifications by e-mail"))] = False
    webhook_on: Annotated[bool, titled(N_("Send my notifications by text message or WeChat Work"))] = False

    @field_validator("email_on")
    @classmethod
    def _address_when_on(cls, email_on: bool, info: ValidationInfo) -> bool:
        """E-mail needs an address to go to."""
        if email_on and not info.data.get("email") and "email" in info.data:
            raise _problem(N_("Give the e-mail address to send to, or turn e-mail off."))
        return email_on


# -- administration (admin screens, spreadsheet onboarding) --------------------------------------------

#: A login name: letters, digits and . _ - (what people type on a phone keyboard without surprises).
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"
#: A short code (grid, department, category): letters, digits, _ and -.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"


class SavePerson(Command):
    """Create or edit a person's account: login name, name, phones, administrator, what the notice shows."""

    username: Annotated[str, Field(pattern=USERNAME_PATTERN), titled(N_("Username"))]
    display_name: Annotated[_text(100, required=True), titled(N_("Name"))]
    phone: Annotated[_text(40), AfterValidator(_optional_phone), titled(N_("Phone"))] = ""
    duty_phone: Annotated[_text(40), AfterValidator(_optional_phone), titled(N_("Duty phone"))] = ""
    public_phone: Annotated[bool, titled(N_("Show the phone on the public grid notice"))] = False
    is_admin: Annotated[bool, titled(N_("Administrator"))] = False

    messages: ClassVar[Mapping[str, str]] = {
        "username": N_("A username is 2 to 64 letters, digits, dots, dashes or underscores, e.g. wangfang."),
        "display_name": N_("Write the person's name."),
    }


class GrantRole(Command):
    """Give a person a role in a grid, a department, a community, or (an auditor) the whole district."""

    role: Role
    grid_id: Id | None = None
    department_id: Id | None = None
    community_id: Id | None = Field(None, validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {"role": N_("Choose a role from the list.")}

    @field_validator("community_id")
    @classmethod
    def _scope_of_the_role(cls, community_id: int | None, info: ValidationInfo) -> int | None:
        """Each role names its scope: a grid, a department, a community (an auditor may name none)."""
        role = info.data.get("role")
        if role in (Role.GRID_MEMBER, Role.GRID_LEADER) and info.data.get("grid_id") is None:
            raise _problem(N_("Choose the grid of this role."))
        if role == Role.DEPARTMENT_HANDLER and info.data.get("department_id") is None:
            raise _problem(N_("Choose the department of this role."))
        if role == Role.STREET_OFFICE and community_id is None:
            raise _problem(N_("Choose the community of this role."))
        return community_id


class ChangePassword(Command):
    """Change one's own password: the current one, the new one twice."""

    current_password: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: Annotated[str, Field(min_length=1, max_length=200)]
    confirm_password: Annotated[str, Field(max_length=200)] = Field("", validate_default=True)

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)
    messages: ClassVar[Mapping[str, str]] = {"current_password": N_("Enter your current password."),
                                             "new_password": N_("Enter the new password.")}

    @field_validator("confirm_password")
    @classmethod
    def _typed_twice(cls, confirm: str, info: ValidationInfo) -> str:
        """The new password is typed twice alike."""
        if info.data.get("new_password") not in (None, confirm):
            raise _problem(N_("The two new passwords differ; type the same one twice."))
        return confirm


class SaveCommunity(Command):
    """Create or rename a community."""

    name: _text(100, required=True)

    messages: ClassVar[Mapping[str, str]] = {"name": N_("Write the community's name.")}


class SaveGrid(Command):
    """Create or edit a grid of a community."""

    community_id: Id
    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    name: _text(100, required=True)
    # Shown on the public grid notice: when the office is open, and what it does (one service a line).
    office_hours: _text(200) = ""
    service_items: _text(2000) = ""

    messages: ClassVar[Mapping[str, str]] = {
        "community_id": N_("Choose the community."),
        "code": N_("A code is up to 40 letters, digits, dashes or underscores, e.g. G1."),
        "name": N_("Write the grid's name."),
    }


class OpenCases(StrEnum):
    """What happens to a building's open cases when it moves to another grid."""

    STAY = "stay"
    MOVE = "move"


class SaveBuilding(Command):
    """Create or edit a building compound: name, address, position, grid."""

    grid_id: Id
    name: _text(100, required=True)
    address: _text(200) = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = Field(None, validate_default=True)
    # Only asked when the grid changes and the building has open cases.
    open_cases: OpenCases | None = None

    messages: ClassVar[Mapping[str, str]] = {
        "grid_id": N_("Choose the grid."),
        "name": N_("Write the building's name."),
        "latitude": N_("A latitude is a number from -90 to 90, e.g. 36.07."),
        "longitude": N_("A longitude is a number from -180 to 180, e.g. 115.2."),
        "open_cases": N_("Choose what happens to the building's open cases."),
    }

    @field_validator("longitude")
    @classmethod
    def _both_or_neither(cls, longitude: float | None, info: ValidationInfo) -> float | None:
        """A position has both coordinates or none."""
        if (longitude is None) != (info.data.get("latitude") is None) and "latitude" in info.data:
            raise _problem(N_("Give both latitude and longitude, or neither."))
        return longitude


class SaveDepartment(Command):
    """Create or edit a functional department."""

    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    name: _text(100, required=True)

    messages: ClassVar[Mapping[str, str]] = {
        "code": N_("A code is up to 40 letters, digits, dashes or underscores, e.g. G1."),
        "name": N_("Write the department's name."),
    }


class SaveCategory(Command):
    """Create or edit a case category: its names, default department and time limit, whether it is offered."""

    code: Annotated[str, Field(pattern=CODE_PATTERN)]
    name_zh: _text(100, required=True)
    name_en: _text(100, required=True)
    department_id: Id | None = None
    deadline_class: DeadlineClass | None = None
    active: bool = True

    messages: ClassVar[Mapping[str, str]] = {
        "code": N_("A code is up to 40 letters, digits, dashes or underscores, e.g. G1."),
        "name_zh": N_("Write the Chinese name."), "name_en": N_("Write the English name."),
        "deadline_class": N_("Choose a time limit from the list."),
    }


class SaveCalendarDay(Command):
    """Mark a day as an extra holiday or an extra working day (调休)."""

    day: dt.date
    working: bool
    note: _text(200) = ""

    messages: ClassVar[Mapping[str, str]] = {"day": N_("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01.")}


# -- mobile desk sessions (流动办公桌) -------------------------------------------------------------------

#: A local time of day, HH:MM.
CLOCK_PATTERN = r"([01][0-9]|2[0-3]):[0-5][0-9]"


def _clock(value: Any) -> Any:
    """Say how to write a time that is not HH:MM."""
    if not isinstance(value, str) or not re.fullmatch(CLOCK_PATTERN, value.strip()):
        raise _problem(N_("Write the time as HH:MM, e.g. 09:30."))
    return value.strip()


class PlanDeskSessions(Command):
    """Plan mobile desk sessions of a grid: one, or one a week on a fixed route (the places in turn)."""

    # In route order: week 1 at the first, week 2 at the second…; empty when the place is a free address.
    building_ids: Annotated[list[Id], Field(max_length=60)] = []
    address: _text(200) = Field(default="", validate_default=True)
    first_day: dt.date
    starts_at: Annotated[str, BeforeValidator(_clock)]
    ends_at: Annotated[str, BeforeValidator(_clock)]
    staff_ids: Annotated[list[Id], Field(min_length=1, max_length=30)]
    # How many weekly sessions (1: a single session).
    weeks: Annotated[int, Field(ge=1, le=26)] = 1

    messages: ClassVar[Mapping[str, str]] = {
        "first_day": N_("Give the first day as YYYY-MM-DD."),
        "staff_ids": N_("Choose at least one member of staff for the desk."),
        "weeks": N_("Plan 1 to 26 weekly sessions."),
    }

    @field_validator("address")
    @classmethod
    def _a_place(cls, address: str, info: ValidationInfo) -> str:
        """A session is held at a building compound or at a free address."""
        if not address and not info.data.get("building_ids"):
            raise _problem(N_("Choose the building compounds of the route, or write an address."))
        return address

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, ends_at: str, info: ValidationInfo) -> str:
        """A session ends after it starts."""
        if (starts_at := info.data.get("starts_at")) is not None and ends_at <= starts_at:
            raise _problem(N_("The session ends before it starts; check the times."))
        return ends_at


class CloseDeskSession(Command):
    """Close a mobile desk session, with a note for its summary."""

    note: _text(2000) = ""


# -- mediations (矛盾调解) and photos -------------------------------------------------------------------

class Party(Command):
    """One side of a dispute: a name and a phone (private: only staff who may read the case see them)."""

    name: _text(100, required=True)
    phone: Phone

    messages: ClassVar[Mapping[str, str]] = {"name": N_("Write the party's name.")}


class RecordMediation(Command):
    """Record a mediation of the case's dispute; a failed one may name where it is referred on."""

    parties: Annotated[list[Party], Field(min_length=2, max_length=10)]
    mediators: _text(200, required=True)
    agreement: _text(4000, required=True)
    accepted: bool
    follow_up_on: dt.date | None = None
    referred_to: _text(200) = Field("", validate_default=True)

    messages: ClassVar[Mapping[str, str]] = {
        "parties": N_("Name both parties of the dispute, each with a phone."),
        "mediators": N_("Name who mediated."),
        "agreement": N_("Write what was agreed, or why no agreement was reached."),
    }

    @field_validator("referred_to")
    @classmethod
    def _only_failed_are_referred(cls, referred_to: str, info: ValidationInfo) -> str:
        """Only a mediation the parties did not both accept is referred on."""
        if referred_to and info.data.get("accepted"):
            raise _problem(N_("Only a failed mediation is referred on; leave this empty when both accept."))
        return referred_to


class ReferMediation(Command):
    """Refer a failed mediation on, e.g. to legal aid (法律援助)."""

    referred_to: _text(200, required=True)

    messages: ClassVar[Mapping[str, str]] = {"referred_to": N_("Say where the dispute is referred, e.g. legal aid.")}


#: The kinds of photo a person adds to a case on its own (the others come with intake, visits and mediations).
UploadKind = Literal[AttachmentKind.INTAKE, AttachmentKind.BEFORE, AttachmentKind.AFTER]


class UploadAttachment(Command):
    """Add photos of one kind to a case, from its pages or the API; the files come beside the command."""

    kind: Annotated[UploadKind, titled(N_("What the photos show"))]

    messages: ClassVar[Mapping[str, str]] = {
        "kind": N_("Say what the photos show: intake (of the request), before or after (handling)."),
    }


# -- the numbers (README "The numbers") -----------------------------------------------------------------

#: The periods the numbers are read for (``queries.stats.PERIOD_KINDS``; a test keeps the two the same).
StatsPeriod = Literal["week", "month", "quarter", "custom"]
#: What the numbers can be grouped by (the keys of ``queries.stats.DIMENSIONS``; a test keeps them the same).
StatsGrouping = Literal["grid", "department", "handler", "category", "channel"]
#: The days a custom period may start and end on (the period before it stays a real date).
FIRST_STATS_DAY, LAST_STATS_DAY = dt.date(1900, 1, 1), dt.date(9998, 12, 31)
DATE_MESSAGE = N_("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01.")


def _iso_day(value: Any) -> Any:
    """Take a day written YYYY-MM-DD only (not a timestamp, nor a time of day)."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise _problem(DATE_MESSAGE)
    return value


def _digits(value: Any) -> Any:
    """Take an id written in ASCII digits only (not "5.0", "+5" or "5_000")."""
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+", value):
        raise _problem(N_("Enter a whole number."))
    return value


QueryDay = Annotated[dt.date | None, BeforeValidator(_iso_day)]
QueryId = Annotated[Id | None, BeforeValidator(_digits)]


class StatsQuery(Command):
    """What the numbers are asked for: a period (this week, month, quarter or custom days), whose cases, grouped how.

    ``GET /api/v1/stats`` builds it from its query parameters, and the dashboards from theirs (period, from, to);
    ``period_on`` gives the days. Every parameter is optional: this month, everything the reader may see.
    """

    period: Annotated[StatsPeriod, Field(
        description="Default: this month. `custom`: the days `from` to `to`.")] = "month"
    grid: Annotated[QueryId, Field(description="Only this grid.")] = None
    department: Annotated[QueryId, Field(description="Only this department.")] = None
    handler: Annotated[QueryId, Field(description="Only this member's cases.")] = None
    by: Annotated[StatsGrouping | None, Field(description="Also give the figures per group, ranked.")] = None
    # ``to`` before ``from``: the checks of a custom period run on ``from`` with both days known, and name it.
    last: Annotated[QueryDay, Field(
        alias="to", description="Last local day of a custom period, YYYY-MM-DD.")] = None
    first: Annotated[QueryDay, Field(
        alias="from", description="First local day of a custom period, YYYY-MM-DD.")] = None

    #: The query parameters, in the order the API document lists them.
    PARAMETERS: ClassVar[tuple[str, ...]] = ("period", "from", "to", "grid", "department", "handler", "by")
    messages: ClassVar[Mapping[str, str]] = {
        "period": N_("Choose this week, this month, this quarter or custom days."),
        "by": N_("Group by grid, department, handler, category or channel."),
    }

    @model_validator(mode="before")
    @classmethod
    def _days_always_checked(cls, data: Any) -> Any:
        """Check both days even when not given (a custom period needs them), under their parameters' names."""
        return {"from": None, "to": None, **data} if isinstance(data, Mapping) else data

    @field_validator("last")
    @classmethod
    def _custom_has_an_end(cls, last: dt.date | None, info: ValidationInfo) -> dt.date | None:
        """A custom period names its last day."""
        if last is None and info.data.get("period") == "custom":
            raise _problem(N_("Give the last day of the custom period."))
        return last

    @field_validator("first")
    @classmethod
    def _custom_days(cls, first: dt.date | None, info: ValidationInfo) -> dt.date | None:
        """A custom period names its first day, not after its last, at most ``MAX_CUSTOM_DAYS`` days long."""
        from ..queries.stats import MAX_CUSTOM_DAYS  # not at the top: the queries import the services
        if info.data.get("period") != "custom":
            return first
        if first is None:
            raise _problem(N_("Give the first day of the custom period."))
        if (last := info.data.get("last")) is None:
            return first  # missing or not a date: said on its own field
        if first > last:
            raise _problem(N_("The custom period starts after it ends; check the dates."))
        if first < FIRST_STATS_DAY or last > LAST_STATS_DAY:
            raise _problem(N_("A custom period lies between %(first)s and %(last)s."),
                           first=FIRST_STATS_DAY.isoformat(), last=LAST_STATS_DAY.isoformat())
        if (last - first).days >= MAX_CUSTOM_DAYS:
            raise _problem(N_("A custom period is at most %(days)s days; choose fewer days."), days=MAX_CUSTOM_DAYS)
        return first

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> StatsQuery:
        """Build the query from request parameters (the others are not the numbers' and are left alone), or raise
        InvalidCommand naming every wrong one."""
        return build(cls, {name: args[name] for name in cls.PARAMETERS if name in args})

    def period_on(self, today: dt.date) -> stats.Period:
        """Return the days asked for, ``today`` being the local day now (week, month, quarter: the one holding it)."""
        from ..queries import stats  # not at the top: the queries import the services
        return stats.period_of(self.period, today, self.first, self.last)


# -- errors ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldError:
    """One field's problem: an English template with its parameters, translated where it is shown."""

    field: str
    template: str
    params: Mapping[str, Any]

    def localized(self) -> str:
        """Return the message in the current UI language."""
        from flask_babel import gettext
        return gettext(self.template, **self.params)


class InvalidCommand(InvalidInput):
    """Input that breaks its command's rules; ``errors`` names every field at once."""

    def __init__(self, errors: list[FieldError]):
        super().__init__(errors[0].template, field=errors[0].field, **errors[0].params)
        self.errors = errors


#: Pydantic error type -> our message (templates use the error's context as parameters).
_GENERIC = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("At most %(max_length)s characters."),
    "too_short": N_("Choose at least one."),
    "too_long": N_("Choose at most %(max_length)s."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "float_type": N_("Enter a number."),
    "greater_than_equal": N_("Enter a number of at least %(ge)s."),
    "less_than_equal": N_("Enter a number of at most %(le)s."),
    "enum": N_("Choose one of: %(expected)s."),
    "literal_error": N_("Choose one of: %(expected)s."),
    "bool_parsing": N_("Answer yes or no (true or false)."),
    "bool_type": N_("Answer yes or no (true or false)."),
    "date_from_datetime_parsing": N_("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01."),
    "date_parsing": N_("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01."),
    "date_type": N_("Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01."),
    "extra_forbidden": N_("Unknown field: remove it (see the API document for the fields this takes)."),
    "string_type": N_("Write text here."),
    "list_type": N_("Give a list."),
}
#: Error types that mean "missing or not a choice": a command's own message for the field is clearer.
_CHOICE_OR_MISSING = {"missing", "string_too_short", "enum", "literal_error", "int_parsing", "int_type",
                      "greater_than_equal", "less_than_equal", "too_short", "date_from_datetime_parsing",
                      "date_parsing", "date_type"}


def build(command: type[C], data: Mapping[str, Any], *, from_json: bool = False,
          context: Mapping[str, Any] | None = None) -> C:
    """Build ``command`` from plain data, or raise InvalidCommand naming every field that is wrong.

    ``from_json``: the data is a JSON document's (the API's): its types must be JSON's exactly, as the
    published schema says ("5" is not an integer), while a form's text is converted.
    """
    try:
        if from_json:
            return command.model_validate_json(json.dumps(dict(data)), strict=True, context=context)
        return command.model_validate(dict(data), context=context)
    except ValidationError as exc:
        raise InvalidCommand([_field_error(command, error) for error in exc.errors()]) from None


def _field_error(command: type[Command], error: Mapping[str, Any]) -> FieldError:
    """Turn one pydantic error into our message on its field."""
    field = ".".join(str(part) for part in error["loc"]) or "__root__"
    kind, context = error["type"], dict(error.get("ctx") or {})
    if kind == "gridloop":  # our own template: pydantic leaves its %(name)s placeholders alone
        return FieldError(field, error["msg"], context)
    own = command.messages.get(str(error["loc"][0])) if error["loc"] else None
    if own and kind in _CHOICE_OR_MISSING:
        return FieldError(field, own, {})
    template = _GENERIC.get(kind, N_("Not a valid value."))
    return FieldError(field, template, {k: str(v) for k, v in context.items()})


def json_schema(command: type[Command]) -> dict[str, Any]:
    """Return the command's JSON Schema, as the API's request schemas are: closed objects, no titles."""
    schema = command.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    return _without_titles(schema)


def _without_titles(node: Any) -> Any:
    """Drop pydantic's generated titles (property names restated) from a schema."""
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node


__all__ = ["AddCover", "AddNote", "Callback", "Command", "CreateToken", "Dispatch", "FieldError", "Handle",
           "InvalidCommand", "HandOverTasks", "MAX_ID", "PlanVisits", "ReassignTask", "RecordCase", "RecordReply",
           "RecordVisit", "RegisterHousehold", "ReviewArchive", "ReviewExtension", "Supervise", "TaskCommand", "build",
           "json_schema", "Recall", "SaveReplyTemplate"]
__all__ += ["CloseDeskSession", "PlanDeskSessions"]
__all__ += ["LinkDuplicate"]
__all__ += ["Party", "RecordMediation", "ReferMediation", "UploadAttachment", "UploadKind"]
__all__ += ["StatsQuery"]
