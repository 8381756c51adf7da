"""The OpenAPI 3.1 document of /api/v1. Its request schemas are also what the API validates bodies with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import labels
from .queries import stats
from .services import commands

VERSION = "1.0.0"
#: The largest row id (PostgreSQL's integer); bigger ids are refused before they reach the database.
MAX_ID = 2**31 - 1


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIME = {"type": "string", "format": "date-time"}
VERSION_FIELD = {"type": "integer", "minimum": 1,
                 "description": "The case's `version` when you read it; a stale version gets 409."}


def _body(properties: dict, required: list[str]) -> dict:
    """A closed request object: unknown fields are refused."""
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def command_schema(command: type[commands.Command], definitions: dict[str, dict]) -> dict:
    """Return a command's request schema; the enums it names go into ``definitions`` (components)."""
    schema = commands.json_schema(command)
    definitions.update(schema.pop("$defs", {}))
    return schema


def task_data(definitions: dict[str, dict]) -> dict[str, dict]:
    """Return what completing each kind of task takes: its command's schema, by form key."""
    from .services.cases import TASKS
    return {key: command_schema(kind.command, definitions) for key, kind in TASKS.items()}


#: A case on either end of a duplicate link (重复件).
DUPLICATE = {"type": "object", "properties": {"id": {"type": "integer"}, "number": {"type": "string"},
                                              "released": {"type": "boolean"}},
             "required": ["id", "number", "released"]}
#: An open or recent case a new case may repeat: no more of it than this, and only if the caller may read it.
POSSIBLE_DUPLICATE = {"type": "object", "properties": {
    "id": {"type": "integer"}, "number": {"type": "string"}, "status": {"enum": list(labels.STATUSES)},
    "created_at": {"type": "string", "format": "date-time"}},
    "required": ["id", "number", "status", "created_at"], "additionalProperties": False}


def schemas(categories: list[str], channels: list[str]) -> dict[str, dict]:
    """Return the component schemas (categories and channels come from the configuration)."""
    person = {"type": "object", "properties": {"id": INT, "name": STR}, "required": ["id", "name"]}
    definitions: dict[str, dict] = {}
    new_case = command_schema(commands.RecordCase, definitions)
    # Refined from the configuration: the categories configured, and the channels a program may give.
    new_case["properties"]["category"] = {"enum": categories}
    new_case["properties"]["channel"] = {
        "enum": list(labels.API_CHANNELS),
        "description": "How the resident reached you; \"open311\" is set by the system for Open311 filings."}
    tasks = task_data(definitions)
    reassignment = command_schema(commands.ReassignTask, definitions)
    recall = command_schema(commands.Recall, definitions)
    link_duplicate = command_schema(commands.LinkDuplicate, definitions)
    handover = command_schema(commands.HandOverTasks, definitions)
    return {**definitions, **{f"TaskData_{key}": schema for key, schema in tasks.items()},
            "NewCase": new_case,
        "Problem": {
            "type": "object", "description": "RFC 9457 problem details.",
            "properties": {"type": STR, "title": STR, "status": INT, "detail": STR,
                           "errors": {"type": "array", "items": {
                               "type": "object", "properties": {"field": STR, "message": STR},
                               "required": ["field", "message"]}}},
            "required": ["type", "title", "status"]},
        "Person": person,
        "Attachment": {"type": "object", "properties": {
            "id": INT, "kind": {"enum": ["intake", "before", "after", "visit", "mediation"]}, "sha256": STR,
            "content_type": STR, "size": INT, "width": INT, "height": INT, "file_name": STR, "created_at": TIME,
            "urls": {"type": "object", "properties": {"display": STR, "thumb": STR, "original": STR}}},
            "required": ["id", "kind", "sha256", "content_type", "size", "urls"]},
        "AttachmentList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Attachment")}},
                           "required": ["items"]},
        "Me": {"type": "object", "properties": {
            "id": INT, "username": STR, "display_name": STR, "is_admin": {"type": "boolean"},
            "roles": {"type": "array", "items": {"type": "object", "properties": {
                "role": STR, "grid_id": _nullable(INT), "department_id": _nullable(INT),
                "community_id": _nullable(INT)}, "required": ["role"]}}},
            "required": ["id", "username", "display_name", "is_admin", "roles"]},
        "Task": {"type": "object", "properties": {
            "id": STR, "case_id": INT, "case_number": STR, "name": STR, "title": STR,
            "form_key": {"enum": list(tasks)}, "lane": STR, "role": STR, "grid_id": INT,
            "department_id": _nullable(INT), "assignee": _nullable(_ref("Person")),
            "status": {"enum": ["open", "done"]}, "due_at": _nullable(TIME), "created_at": TIME,
            "completed_at": _nullable(TIME)},
            "required": ["id", "case_id", "case_number", "name", "title", "form_key", "lane", "role", "grid_id",
                         "assignee", "status", "due_at", "created_at"]},
        "TaskList": {"type": "object", "properties": {"items": {"type": "array", "items": _ref("Task")}},
                     "required": ["items"]},
        "Case": {"type": "object", "properties": {
            "id": INT, "number": STR, "status": {"enum": list(labels.STATUSES)}, "version": INT,
            "grid": {"type": "object", "properties": {"id": INT, "code": STR}, "required": ["id", "code"]},
            "building": {"type": "object", "properties": {"id": INT, "name": STR}, "required": ["id", "name"]},
            "category": STR, "channel": STR, "urgency": STR, "green_channel": STR, "resident_name": STR,
            "created_at": TIME, "due_at": _nullable(TIME), "outcome": _nullable(STR),
            "archived_at": _nullable(TIME)},
            "required": ["id", "number", "status", "version", "grid", "building", "category", "channel",
                         "urgency", "green_channel", "resident_name", "created_at", "due_at", "outcome",
                         "archived_at"]},
        "CaseList": {"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Case")},
            "next_cursor": _nullable(STR)}, "required": ["items", "next_cursor"]},
        "CaseDetail": {"allOf": [_ref("Case"), {"type": "object", "properties": {
            "resident_phone": STR, "address_detail": STR, "description": STR, "reply": STR, "result": STR,
            "dispatch_to": _nullable(STR), "handler": _nullable(_ref("Person")),
            "department": _nullable({"type": "object", "properties": {"id": INT, "name": STR}}),
            "deadline": {"type": "object", "properties": {
                "class": _nullable(STR), "dispatched_at": _nullable(TIME), "sign_for_at": _nullable(TIME),
                "signed_at": _nullable(TIME), "remind_at": _nullable(TIME), "due_at": _nullable(TIME),
                "escalate_at": _nullable(TIME), "overdue": {"type": "boolean"}},
                "required": ["class", "due_at", "overdue"]},
            "reopen_count": INT, "tasks": {"type": "array", "items": _ref("Task")}, "audit_head": _nullable(STR),
            "duplicate_of": _nullable({**DUPLICATE, "description": "The main case this duplicate (重复件) follows; "
                                       "`released`: its result has reached this case."}),
            "duplicates": {"type": "array", "items": DUPLICATE,
                           "description": "The duplicates following this case, oldest link first."}},
            "required": ["description", "deadline", "tasks"]}]},
        "PossibleDuplicates": {"type": "object", "properties": {
            "case_id": INT, "items": {"type": "array", "items": POSSIBLE_DUPLICATE, "description": (
                "Open or recent cases this one may repeat (重复件), found as the desk's intake warning finds them "
                "([duplicates] in config.toml: the same phone, or the same building and category within "
                "`window_days` and a similar description), most alike first, at most `max_shown`; taken as at "
                "the case's recording, so asking again lists the same cases. Only cases you may read (as GET "
                "/cases/{case_id}). Link a real duplicate with POST /cases/{case_id}/link.")}},
            "required": ["case_id", "items"]},
        "Event": {"type": "object", "properties": {
            "seq": INT, "at": TIME, "actor": _nullable(_ref("Person")), "actor_name": STR, "action": STR,
            "task_name": _nullable(STR), "changes": {"type": "object"}, "prev_hash": STR, "hash": STR},
            "required": ["seq", "at", "actor", "actor_name", "action", "task_name", "changes", "prev_hash", "hash"]},
        "History": {"type": "object", "properties": {"case_id": INT, "number": STR,
                                                     "events": {"type": "array", "items": _ref("Event")}},
                    "required": ["case_id", "number", "events"]},
        "Verification": {"type": "object", "properties": {
            "case_id": INT, "ok": {"type": "boolean"}, "events": INT, "broken_seq": _nullable(INT),
            "problem": STR, "head": STR}, "required": ["case_id", "ok", "events", "broken_seq", "problem", "head"]},
        "VersionBody": _body({"version": VERSION_FIELD}, ["version"]),
        "Completion": {"type": "object", "properties": {
            "version": VERSION_FIELD,
            "data": {"oneOf": [_ref(f"TaskData_{key}") for key in tasks],
                     "description": "The fields of the task's form_key (TaskData_<form_key>): " + ", ".join(tasks)}},
            "required": ["version", "data"], "additionalProperties": False},
        "Reassignment": reassignment, "Handover": handover, "Recall": recall, "LinkDuplicate": link_duplicate,
        "HandoverResult": {"type": "object", "properties": {
            "done": {"type": "boolean"}, "fingerprint": STR,
            "moves": {"type": "array", "items": {"type": "object", "properties": {
                "task_id": STR, "case_number": STR, "to": _ref("Person")},
                "required": ["task_id", "case_number", "to"]}}},
            "required": ["done", "fingerprint", "moves"]},
        "Workload": {"type": "object", "properties": {
            "grid": {"type": "object", "properties": {"id": INT, "code": STR, "name": STR}},
            "people": {"type": "array", "items": {"type": "object", "properties": {
                "user": _ref("Person"), "open": INT, "due_soon": INT, "overdue": INT},
                "required": ["user", "open", "due_soon", "overdue"]}},
            "pool": INT, "waiting_for_decision": {"type": "array", "items": _ref("Task")}},
            "required": ["grid", "people", "pool", "waiting_for_decision"]},
        "Figures": {"type": "object", "properties": {
            "counts": {"type": "object", "additionalProperties": INT, "description":
                       "Cases under each figure (README \"The numbers\"): recorded, on_spot, dispatched, "
                       "response_due, responded, handling_due, on_time, overdue, handled, reached, satisfied, "
                       "basic, dissatisfied, reopened."},
            "rates": {"type": "object", "additionalProperties": _nullable({"type": "number"}), "description":
                      "response_rate, on_time_rate, overdue_rate, resolution_rate, satisfaction_rate, "
                      "reopen_rate, on_spot_share (0 to 1) and handling_hours; null where nothing counts yet."}},
            "required": ["counts", "rates"]},
        "Stats": {"type": "object", "properties": {
            "period": {"type": "object", "properties": {"kind": STR, "from": {"type": "string", "format": "date"},
                                                        "to": {"type": "string", "format": "date"}}},
            "previous": {"type": "object", "properties": {"from": {"type": "string", "format": "date"},
                                                          "to": {"type": "string", "format": "date"}}},
            "as_of": TIME, "definitions": {"type": "object"},
            "total": _ref("Figures"), "previous_total": _ref("Figures"),
            "groups": {"type": "array", "items": {"allOf": [_ref("Figures"), {"type": "object", "properties": {
                "key": {"type": ["integer", "string", "null"]}}, "required": ["key"]}]}}},
            "required": ["period", "previous", "as_of", "definitions", "total", "previous_total"]},
        "Buildings": {"type": "object", "properties": {"items": {"type": "array", "items": {
            "type": "object", "properties": {"id": INT, "name": STR, "address": STR, "grid_id": INT,
                                             "grid_code": STR}}}}, "required": ["items"]},
    }


def _problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict, *, body: str | None = None, params: list | None = None,
        op_id: str) -> dict:
    """One operation with the errors every call can get."""
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": {
        **responses, "401": _problem("No valid token: send `Authorization: Bearer <token>` (unknown, revoked and "
                                     "expired tokens are refused; the detail says which)."),
        "429": _problem("Too many requests for this token; wait and retry.")}}
    op["responses"].setdefault("403", _problem("The token's scope does not allow this call (the detail names the "
                                               "scope needed), or your role does not."))
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
        op["responses"]["400"] = _problem("The body is not the JSON object described here.")
        op["responses"]["422"] = _problem("The data breaks a rule; `errors` names each field.")
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def query_parameters(command: type[commands.Command], names: Sequence[str]) -> list[dict]:
    """Return the query parameters ``names`` a command is built from, as its own schema describes its fields (each
    optional: a parameter is never null)."""
    properties = commands.json_schema(command)["properties"]
    params = []
    for name in names:
        schema = dict(properties[name])
        description = schema.pop("description", "")
        if schema.get("default", "") is None:
            del schema["default"]
        given = [s for s in schema.pop("anyOf", []) if s != {"type": "null"}]
        params.append(_query(name, {**schema, **(given[0] if given else {})}, description))
    return params


#: The header that makes recording a case safe to retry (a double send, a lost answer, an offline outbox).
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[\\x21-\\x7e]+$"},
    "description": "A one-time key of your own (e.g. a UUID) for this case. Sending the same request again with "
                   "the same key from the same account records nothing new and answers 200 with the case made the "
                   "first time; the same key with another body is refused (409). Keys are kept per account, for "
                   "`[duplicates] intake_key_days` (30 by default): a repeat after that is a new request and "
                   "records a new case.",
    "example": "9b2f6c1e-4d0a-4f8e-a1c2-7f3e5d9b0a11",
}


def document(categories: list[str], channels: list[str]) -> dict:
    """Return the whole OpenAPI 3.1 document."""
    case_id = _path_param("case_id", ID)
    task_id = _path_param("task_id", STR)
    grid_id = _path_param("grid_id", ID)
    not_found = _problem("No such object, or not yours to see.")
    forbidden = _problem("Your role, or the token's scope (the detail names the one needed), does not allow this.")
    conflict = _problem("Someone changed it since you read it: read again and retry.")
    task_action = {"200": _json("The task after the action.", _ref("Task")), "403": forbidden, "404": not_found,
                   "409": conflict}
    filters = [
        _query("status", {"enum": list(labels.STATUSES)}), _query("grid", ID, "Grid id."),
        _query("category", {"enum": categories}), _query("channel", {"enum": channels}),
        _query("date_from", {"type": "string", "format": "date"},
               "Recorded on or after this local day (the configured time zone), YYYY-MM-DD."),
        _query("date_to", {"type": "string", "format": "date"},
               "Recorded on or before this local day (the configured time zone), YYYY-MM-DD."),
        _query("q", {"type": "string", "maxLength": 100},
               "Number (or part of it), resident name or description contains, or the handler's or recorder's "
               "username or name; or the resident's phone in any written form (13912345678, 139 1234 5678, +86…, "
               "010-12345678), or at least four of its digits."),
        _query("deadline", {"enum": ["overdue", "due_soon", "mine"]}),
        _query("department", ID, "Referred to this department."), _query("handler", ID, "Handled by this member."),
        _query("fig", {"enum": [*stats.FIGURES, *(f"{name}.original" for name in ("handling_due", "on_time",
                                                                                   "overdue"))]},
               "Only the cases behind one figure of /stats (README \"The numbers\"); linked duplicates left out."),
        _query("outcome", {"type": "string", "pattern": "^(satisfied|basic|dissatisfied)(,(satisfied|basic|"
                                                          "dissatisfied))*$"},
               "First callback answer that reached the resident, one of a comma-separated list."),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size, default 50."),
        _query("cursor", STR, "`next_cursor` of the previous page."),
    ]
    paths = {
        "/openapi.json": {"get": {"summary": "This document (public: no token needed)", "operationId": "openapi",
                                  "security": [], "responses": {"200": _json("The OpenAPI 3.1 document.", {
                                      "type": "object", "required": ["openapi", "paths"]})}}},
        "/me": {"get": _op("Who the token acts as", {"200": _json("The token's user.", _ref("Me"))}, op_id="me")},
        "/stats": {"get": _op("The numbers: the rates of a period against the previous one", {
            "200": _json("Counts and rates of the cases recorded in the period (and per group with `by`).",
                         _ref("Stats")),
            "400": _problem("A parameter is malformed."),
            "403": _problem("Only grid leaders (of their grids), the street office and auditors read the numbers.")},
            params=query_parameters(commands.StatsQuery, commands.StatsQuery.PARAMETERS), op_id="getStats")},
        "/buildings": {"get": _op("Buildings where I may record cases", {
            "200": _json("Buildings of my grids.", _ref("Buildings"))}, op_id="buildings")},
        "/cases": {
            "get": _op("List the cases I may read, newest first (keyset pages)", {
                "200": _json("One page.", _ref("CaseList")), "400": _problem("A filter or the cursor is malformed.")},
                params=filters, op_id="listCases"),
            "post": _op("Record a case (starts its closed loop)", {
                "201": _json("The new case (GET /cases/{case_id}/possible-duplicates lists the cases it may "
                             "repeat).", _ref("CaseDetail")), "403": forbidden,
                "200": _json("A repeat with an `Idempotency-Key` already used by this account for the same body: "
                             "the case already made (header `Idempotent-Replayed: true`); nothing new is "
                             "recorded.", _ref("CaseDetail")),
                "409": _problem("The `Idempotency-Key` was already used by this account for another body (the "
                                "detail names the case made from it): send a new key for a new case.")},
                body="NewCase", params=[IDEMPOTENCY_KEY], op_id="createCase")},
        "/cases/{case_id}": {"get": _op("A case with its tasks, deadline and outcome", {
            "200": _json("The case.", _ref("CaseDetail")), "403": forbidden, "404": not_found},
            params=[case_id], op_id="getCase")},
        "/cases/{case_id}/possible-duplicates": {"get": _op("The open or recent cases a case may repeat (重复件)", {
            "200": _json("The cases, most alike first.", _ref("PossibleDuplicates")), "403": forbidden,
            "404": not_found}, params=[case_id], op_id="possibleDuplicates")},
        "/cases/{case_id}/history": {"get": _op("Every audit event of the case", {
            "200": _json("The chain.", _ref("History")), "403": forbidden, "404": not_found},
            params=[case_id], op_id="caseHistory")},
        "/cases/{case_id}/attachments": {
            "get": _op("The case's photos", {"200": _json("Photos, oldest first.", _ref("AttachmentList")),
                                              "403": forbidden, "404": not_found},
                       params=[case_id], op_id="listAttachments"),
            "post": {**_op("Add photos to a case (JPEG, PNG or WebP; checked by content, all or none)", {
                "201": _json("The photos added; their SHA-256 hashes are on the case's audit chain.",
                             _ref("AttachmentList")),
                "400": _problem("A form field holds a NUL character."), "403": forbidden, "404": not_found,
                "413": _problem("The request is larger than `[media] max_request_mb`."),
                "422": _problem("`kind` is none of these, or a file is no accepted image, too large, or too many; "
                                "nothing was added.")},
                params=[case_id], op_id="addAttachments"),
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["kind", "photos"], "properties": {
                        "kind": {**commands.json_schema(commands.UploadAttachment)["properties"]["kind"],
                                 "description": "before/after: the case's handler; intake: its grid's staff."},
                        "photos": {"type": "array", "items": {"type": "string", "contentMediaType":
                                                               "application/octet-stream"}}}}}}}}},
        "/attachments/{attachment_id}/{variant}": {"get": _op("One photo: a display copy or thumbnail (JPEG, no EXIF), "
                                                              "or the original as received (EXIF and GPS kept)", {
            "200": {"description": "The image.", "content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}},
            "404": not_found},
            params=[_path_param("attachment_id", ID),
                    _path_param("variant", {"type": "string", "enum": ["display", "thumb", "original"]})],
            op_id="getAttachment")},
        "/cases/{case_id}/link": {"post": _op(
            "Link a case waiting for dispatch to the main case it repeats (重复件; grid leaders): its task closes, "
            "and when the main case is handled its result and a callback reach this case", {
                "200": _json("The case afterwards.", _ref("CaseDetail")), "403": forbidden, "404": not_found,
                "409": conflict}, body="LinkDuplicate", params=[case_id], op_id="linkDuplicate")},
        "/cases/{case_id}/unlink": {"post": _op(
            "Unlink a duplicate still following its main case (grid leaders): its waiting task opens again", {
                "200": _json("The case afterwards.", _ref("CaseDetail")), "403": forbidden, "404": not_found,
                "409": conflict}, body="VersionBody", params=[case_id], op_id="unlinkDuplicate")},
        "/cases/{case_id}/verify": {"get": _op("Verify the case's audit chain", {
            "200": _json("The result; `broken_seq` names the first broken event.", _ref("Verification")),
            "403": forbidden, "404": not_found}, params=[case_id], op_id="verifyCase")},
        "/tasks": {"get": _op("My open tasks, or the pool of my lanes", {
            "200": _json("Tasks.", _ref("TaskList")), "400": _problem("`scope` is neither mine nor pool.")},
            params=[_query("scope", {"enum": ["mine", "pool"]}, "Default: mine.")], op_id="listTasks")},
        "/tasks/{task_id}": {"get": _op("One task", {
            "200": _json("The task.", _ref("Task")), "403": forbidden, "404": not_found},
            params=[task_id], op_id="getTask")},
        "/tasks/{task_id}/claim": {"post": _op("Take a pool task", task_action, body="VersionBody",
                                               params=[task_id], op_id="claimTask")},
        "/tasks/{task_id}/sign": {"post": _op("Sign for (签收) a handling task", task_action, body="VersionBody",
                                              params=[task_id], op_id="signTask")},
        "/tasks/{task_id}/release": {"post": _op("Put a claimed task back in its pool", task_action,
                                                 body="VersionBody", params=[task_id], op_id="releaseTask")},
        "/tasks/{task_id}/complete": {"post": _op("Complete a task with its form's data", {
            "200": _json("The case afterwards.", _ref("CaseDetail")), "403": forbidden, "404": not_found,
            "409": conflict}, body="Completion", params=[task_id], op_id="completeTask")},
        "/tasks/{task_id}/reassign": {"post": _op("Give a task to a named person (grid leaders)", task_action,
                                                  body="Reassignment", params=[task_id], op_id="reassignTask")},
        "/tasks/{task_id}/recall": {"post": _op(
            "Recall (撤回) a case from the department handling it, back to dispatch (grid leaders); the task is the "
            "department's open handling task", {
                "200": _json("The case afterwards.", _ref("CaseDetail")), "403": forbidden, "404": not_found,
                "409": conflict}, body="Recall", params=[task_id], op_id="recallCase")},
        "/grids/{grid_id}/handover": {"post": _op(
            "Hand a member's open tasks over: without `fingerprint` a preview, with it the handover", {
                "200": _json("The moves (carried out when `done`).", _ref("HandoverResult")),
                "403": forbidden, "404": not_found, "409": conflict}, body="Handover", params=[grid_id],
            op_id="handover")},
        "/grids/{grid_id}/workload": {"get": _op("Open, due soon and overdue tasks per person (grid leaders)", {
            "200": _json("The board.", _ref("Workload")), "403": forbidden, "404": not_found},
            params=[grid_id], op_id="workload")},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "GridLoop API", "version": VERSION,
                 "description": "Everything the GridLoop web UI does, for programs. Authenticate with "
                                "`Authorization: Bearer <token>` (create tokens on your profile page or with "
                                "`flask create-token`); every call acts with that user's permissions, within "
                                "the token's scope: `read` tokens may only GET, `full` tokens may do everything "
                                "the user may, and `open311` tokens are for /open311/v2 only (403 here). A token "
                                "may expire (401). Errors are `application/problem+json` (RFC 9457)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas(categories, channels),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


__all__ = ["MAX_ID", "command_schema", "document", "schemas", "task_data"]
