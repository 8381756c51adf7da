"""Display labels for coded values, in the current UI language."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_babel import get_locale, lazy_gettext as _l

CHANNELS = {
    "walk_in": _l("Walk-in"), "phone": _l("Phone"), "wechat": _l("WeChat"), "app": _l("App"),
    "mobile_desk": _l("Mobile desk"), "visit": _l("Door-to-door visit"), "hotline_12345": _l("12345 hotline"),
    "qr_code": _l("QR code form"), "proactive": _l("Found proactively"),
    "api": _l("Program (API)"), "open311": _l("Open311 app"),
}
#: Channels staff may pick in a form: how the resident reached them. "Program (API)" and "Open311 app"
#: name doors the system records itself (a case's ``intake``); no one can claim them for another door.
STAFF_CHANNELS = {k: v for k, v in CHANNELS.items() if k not in ("api", "open311", "qr_code")}
#: The door a case came in through (``Case.intake``), recorded by the system.
DOORS = {"web": _l("Web page"), "api": _l("Program (API)"), "open311": _l("Open311 app"),
         "public": _l("Public resident form")}
#: Channels a program may give through the JSON API: what staff may pick, or simply "a program".
API_CHANNELS = {**STAFF_CHANNELS, "api": CHANNELS["api"]}
URGENCIES = {"normal": _l("Normal"), "urgent": _l("Urgent"), "emergency": _l("Emergency")}
GREEN_CHANNEL = {"": _l("None"), "elderly": _l("Elderly"), "disabled": _l("Disabled"), "sick": _l("Sick")}
STATUSES = {
    "recording": _l("To record & reply"), "dispatching": _l("To dispatch"), "handling": _l("Handling"),
    "extension_review": _l("Extension review"), "callback": _l("Callback"),
    "archive_review": _l("Archive review"), "archived": _l("Archived"),
}
OUTCOMES = {"satisfied": _l("Satisfied"), "basic": _l("Basically satisfied"),
            "dissatisfied": _l("Dissatisfied"), "unreachable": _l("Unreachable")}
DEADLINE_CLASSES = {"emergency": _l("Emergency"), "utilities": _l("Water, power, gas, heating"),
                    "general": _l("General"), "complex": _l("Complex")}
DISPATCH_TO = {"member": _l("A grid member"), "department": _l("Refer to a department")}
HANDLE_ACTIONS = {"done": _l("Done"), "return": _l("Return (wrongly routed)"), "extend": _l("Ask for extension")}
ACTIONS = {
    "case.opened": _l("Case recorded"), "task.claimed": _l("Task claimed"),
    "case.hotspot_linked": _l("Opened for a hotspot"),
    "task.record_reply": _l("Recorded & replied"), "task.dispatch": _l("Dispatched"),
    "task.handle": _l("Handled"), "task.review_extension": _l("Extension decided"),
    "task.callback": _l("Callback"), "task.review_archive": _l("Archive review"),
    "task.supervise": _l("Supervision opinion"), "task.signed": _l("Signed for"),
    "case.recalled": _l("Recalled from the department (撤回)"),
    "timer.sign_for": _l("Sign-for limit passed"), "timer.reminder": _l("Reminder sent (催办)"),
    "timer.supervision": _l("Limit reached: supervision (督办)"),
    "timer.escalation": _l("Escalated to the street office"),
    "task.reassigned": _l("Task reassigned"), "task.released": _l("Task put back in the pool"),
    "task.handed_over": _l("Task handed over"),
    "audit.fields_recorded": _l("Grid, recorder, number and process version put on the chain (upgrade)"),
    "audit.intake_recorded": _l("Intake door put on the chain (upgrade)"),
    "case.intake_corrected": _l("Intake door corrected: filed through Open311"),
    "case.moved": _l("Moved with its building to another grid"),
    "case.files_attached": _l("Photos attached"), "mediation.recorded": _l("Mediation recorded (矛盾调解)"),
    "mediation.referred": _l("Failed mediation referred on"),
    "case.linked": _l("Linked as a duplicate (重复件)"), "case.unlinked": _l("Duplicate unlinked"),
    "case.duplicate_linked": _l("A duplicate was linked to this case"),
    "case.duplicate_unlinked": _l("A duplicate was unlinked from this case"),
    "case.followed_main": _l("The main case's result passed on (duplicate)"),
    "case.duplicate_released": _l("Result passed on to a duplicate"),
}
#: Where a reply template (常用语) is inserted.
REPLY_USES = {"reply": _l("On-the-spot reply"), "result": _l("Handling result"), "callback": _l("Callback script")}
CARE_GROUPS = {
    "": _l("None"), "elderly_alone": _l("Elderly living alone"), "left_behind_child": _l("Left-behind child"),
    "hardship": _l("Hardship"), "migrant": _l("Migrant population"),
}
WEEKDAYS = {1: _l("Mon"), 2: _l("Tue"), 3: _l("Wed"), 4: _l("Thu"), 5: _l("Fri"), 6: _l("Sat"), 7: _l("Sun")}
#: Where a mobile desk session (流动办公桌) stands (models.DeskStatus).
DESK_STATUSES = {"planned": _l("Planned"), "open": _l("Open now"), "closed": _l("Closed")}
DEADLINE_FILTERS = {"": _l("Any"), "overdue": _l("Overdue"), "mine": _l("My overdue"),
                    "due_soon": _l("Due soon")}

#: The process's user tasks and timers by BPMN id (audit events name them; a timeline shows these, never the id).
TASK_NAMES = {
    "record_reply": _l("Record & reply"), "dispatch": _l("Dispatch / refer"),
    "handle_member": _l("Handling by a grid member"), "handle_department": _l("Handling by a department"),
    "review_extension": _l("Extension review"), "callback": _l("Callback"), "review_archive": _l("Archive review"),
    "supervise": _l("Supervision (督办)"), "escalate": _l("Street office supervision"),
    "t_sign_for": _l("Sign-for limit"), "t_remind": _l("Reminder (催办)"), "t_supervise": _l("Limit reached"),
    "t_escalate": _l("Escalation to the street office"),
}
#: Why a timer sent no notice (stored in English on the audit chain; shown translated).
SKIPPED = {"already signed for": _l("Already signed for"),
           "already reminded for this limit": _l("Already reminded for this limit")}

#: Audited fields holding moments (shown in local time).
TIME_FIELDS = ("due_at", "archived_at", "signed_at")
FIELDS = {
    "status": _l("Status"), "resident_name": _l("Resident"), "resident_phone": _l("Phone"),
    "hotspot_cases": _l("The hotspot's cases"),
    "building_id": _l("Building"), "address_detail": _l("Address detail"), "category": _l("Category"),
    "description": _l("Description"), "channel": _l("Channel"), "urgency": _l("Urgency"),
    "green_channel": _l("Green channel"), "reply": _l("Reply"), "dispatch_to": _l("Dispatched to"),
    "handler_id": _l("Handler"), "department_id": _l("Department"), "deadline_class": _l("Deadline class"),
    "due_at": _l("Due"), "result": _l("Result"), "outcome": _l("Callback outcome"),
    "reopen_count": _l("Reopened"), "callback_attempts": _l("Callback attempts"),
    "extension_days": _l("Extension days"), "archived_at": _l("Archived at"), "assignee": _l("Assignee"),
    "answered_on_spot": _l("Answered on the spot"), "handle_action": _l("Outcome"), "text": _l("Result, or reason"),
    "satisfaction": _l("Resident's answer"), "note": _l("Note"), "comment": _l("Comment"),
    "extension_approved": _l("Extension approved"), "signed_at": _l("Signed for at"),
    "resident_email": _l("E-mail"), "latitude": _l("Latitude"), "longitude": _l("Longitude"),
    "media_url": _l("Photo link"), "number": _l("Case number"), "grid_id": _l("Grid"),
    "created_by_id": _l("Recorded by"), "process_hash": _l("Process version"), "intake": _l("Intake door"),
    "timer": _l("Timer"), "skipped": _l("Not sent"), "reason": _l("Reason"), "archive_decision": _l("Review decision"),
    "dispatch_note": _l("Dispatch note"), "stand_in": _l("Stand-in (代班)"),
    "files": _l("Photos"), "mediation": _l("Mediation"), "mediation_parties": _l("Parties"),
    "mediation_mediators": _l("Mediators"), "mediation_agreement": _l("What was agreed"),
    "mediation_accepted": _l("Both parties accept"), "mediation_follow_up_on": _l("Follow-up date"),
    "mediation_referred_to": _l("Referred to"),
    "duplicate_of": _l("Duplicate of"), "duplicate": _l("Duplicate"), "main_case": _l("Main case"),
}
#: The choices of each coded field of a task form (the command's values), by field name.
CHOICES = {
    "disposition": {"dispatch": _l("Needs handling: send to the grid leader"), "on_spot": _l("Answered on the spot")},
    "dispatch_to": DISPATCH_TO, "deadline_class": DEADLINE_CLASSES, "handle_action": HANDLE_ACTIONS,
    "decision": {"approve": _l("Approve the extension"), "refuse": _l("Refuse")}, "satisfaction": OUTCOMES,
    "archive_decision": {"archive": _l("Archive the record"), "rework": _l("Send back for rework (退回重办)")},
}
#: Coded fields and the label table for their values.
VALUE_TABLES = {
    "status": STATUSES, "channel": CHANNELS, "urgency": URGENCIES, "green_channel": GREEN_CHANNEL,
    "outcome": OUTCOMES, "satisfaction": OUTCOMES, "deadline_class": DEADLINE_CLASSES,
    "handle_action": HANDLE_ACTIONS, "dispatch_to": DISPATCH_TO, "intake": DOORS,
    "archive_decision": {"archive": _l("Archived"), "rework": _l("Sent back for rework (退回重办)")},
}


def category_label(code: str) -> str:
    """Return a category's label in the current language."""
    pair = current_app.config["GRIDLOOP"]["categories"].get(code) \
        or current_app.extensions.get("gridloop.category_labels", {}).get(code)  # one no longer offered
    if pair is None:
        return code
    return pair[0] if str(get_locale()).startswith("zh") else pair[1]


def category_choices() -> list[tuple[str, str]]:
    """Return (code, label) for every configured category."""
    return [(code, category_label(code)) for code in current_app.config["GRIDLOOP"]["categories"]]


#: (locale, table id) -> the table with its lazy strings resolved once per language.
_resolved: dict[tuple[str, int], dict[str, str]] = {}


def label(table: dict, value: str | None) -> str:
    """Look a coded value up in a label table, falling back to the code."""
    if value is None:
        return ""
    key = (str(get_locale()), id(table))
    resolved = _resolved.get(key)
    if resolved is None:
        resolved = _resolved[key] = {code: str(text) for code, text in table.items()}
    return resolved.get(value, value)


def task_label(name: str | None) -> str:
    """Return a task's or timer's name for people ("" for one without a label: never the internal id)."""
    return label(TASK_NAMES, name) if name in TASK_NAMES else ""


def change_rows(changes: dict[str, Any], names: dict[str, dict[int, str]]) -> list[tuple[str, str, str]]:
    """Return an event's changes as (field, old, new) for people, once each.

    A form field whose value a case field records too (the handling text and the result, the resident's
    answer and the callback outcome) shows once, as the case field; a change people cannot see (the
    same minute before and after) is left out.
    """
    shown = [(name.startswith("form."), name.removeprefix("form."), pair) for name, pair in changes.items()]
    case_values = {display_value(field, pair[1], names) for is_form, field, pair in shown if not is_form}
    rows = []
    for is_form, field, (old, new) in shown:
        before, after = display_value(field, old, names), display_value(field, new, names)
        if before == after or (is_form and after in case_values):
            continue
        rows.append((label(FIELDS, field), before, after))
    return rows


def display_value(field: str, value, names: dict[str, dict[int, str]]) -> str:
    """Render an audited value for people: labels for codes, names for ids, local times."""
    from flask_babel import format_datetime, gettext
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if field == "category":
        return category_label(value)
    if field in VALUE_TABLES:
        return label(VALUE_TABLES[field], value)
    if field == "timer":
        return task_label(value) or gettext("Timer")
    if field == "skipped":
        return label(SKIPPED, value)
    if field == "files" and isinstance(value, list):  # photos attached: their names (the hashes are on the chain)
        return "、".join(str(f.get("name") or "") for f in value if isinstance(f, dict))
    if field == "mediation_parties" and isinstance(value, list):
        return "；".join(f"{p.get('name', '')} {p.get('phone', '')}".strip() for p in value if isinstance(p, dict))
    if field in names and isinstance(value, int):
        return names[field].get(value, f"#{value}")
    if field in TIME_FIELDS and isinstance(value, str):
        import datetime as dt
        try:
            return format_datetime(dt.datetime.fromisoformat(value), "yyyy-MM-dd HH:mm")
        except ValueError:
            return value
    return str(value)


# -- the numbers (dashboards, reports, the API's stats) ---------------------------------------------

#: Each rate's name.
RATES = {"response_rate": _l("Response rate"), "on_time_rate": _l("On-time rate"), "overdue_rate": _l("Overdue rate"),
         "resolution_rate": _l("Resolution rate"), "satisfaction_rate": _l("Satisfaction rate"),
         "reopen_rate": _l("Reopen rate"), "on_spot_share": _l("Answered on the spot"),
         "handling_hours": _l("Average handling time (working hours)")}


#: The figures a case list can be narrowed to (the numbers' links), by the list's ``fig`` value.
FIGURES = {"recorded": _l("recorded in the period"), "on_spot": _l("answered on the spot"),
           "dispatched": _l("dispatched"), "response_due": _l("response decided"),
           "responded": _l("signed for in time"), "response_late": _l("not signed for in time"),
           "handling_due": _l("handling decided"), "on_time": _l("handled in time"),
           "overdue": _l("handled late or overdue"), "handled": _l("handled"),
           "reached": _l("callback reached the resident"), "satisfied": _l("satisfied at the first callback"),
           "basic": _l("basically satisfied at the first callback"),
           "dissatisfied": _l("dissatisfied at the first callback"), "reopened": _l("reopened (重办)"),
           "open": _l("open now")}


def report_text() -> dict[str, str]:
    """Return a report's headings in the current language (the workbook's sheets and columns)."""
    return {**{name: str(text) for name, text in RATES.items()},
            "title": str(_l("GridLoop report")), "rates": str(_l("Rates")), "period": str(_l("Period")),
            "figure": str(_l("Figure")), "this_period": str(_l("This period")),
            "previous_period": str(_l("Previous period")), "recorded": str(_l("Recorded")),
            "overdue": str(_l("Overdue")), "name": str(_l("Name")), "by_grid": str(_l("Grids")),
            "by_department": str(_l("Departments")), "by_handler": str(_l("Members")),
            "overdue_cases": str(_l("Overdue cases")), "number": str(_l("Number")), "grid": str(_l("Grid")),
            "category": str(_l("Category")), "created": str(_l("Recorded at")), "due": str(_l("Due")),
            "handled": str(_l("Handled at"))}


def actor_label(event: Any) -> str:
    """Name who made an audit or admin event: the person, or the system (the scheduler, the shell), whose
    events carry the name "system" on their chain."""
    if getattr(event, "actor_id", None) is None and event.actor_name == "system":
        return str(_l("System"))
    return event.actor_name
