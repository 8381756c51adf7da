"""The JSON API under /api/v1: everything the UI does, for programs, with bearer tokens and RFC 9457 errors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request, url_for
from flask_login import current_user
from jsonschema import Draft202012Validator, ValidationError
from werkzeug.exceptions import HTTPException

from .. import labels, media, openapi, queries
from ..db import get_session
from ..errors import N_, ConflictError, DomainError, InvalidInput, NotFound
from ..models import Attachment, Case, CaseStatus, Grid, Role, Task, TaskStatus, User
from ..permissions import Permission, PermissionDenied, audits_district, can, community_ids, grid_ids, in_lane
from ..queries import residents, stats
from ..services import assign, attachments, duplicates, tokens
from ..services.audit import verify_chain
from ..services.cases import TASKS, Door, claim_task, complete_task, open_case, recall_case, sign_for
from ..services.commands import (
    C,
    HandOverTasks,
    InvalidCommand,
    LinkDuplicate,
    ReassignTask,
    Recall,
    RecordCase,
    StatsQuery,
    UploadAttachment,
    build,
)
from ..services.locks import find_locked_task
from . import due_window, local_zone, presented_api_token, presented_token, services, token_expired

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PAGE = 50
MAX_PAGE = 200
#: The list filters, as the UI's case list has them.
FILTERS = queries.CASE_FILTERS
#: How deeply a JSON body may nest arrays and objects; the API's bodies need three levels.
MAX_DEPTH = 32
#: A JSON string (or an unterminated one, to the end), or a run of characters that are no brackets.
_NOT_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"?|[^\[\]{}"]+')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


# -- errors: RFC 9457 problem details -------------------------------------------------------------

def problem(status: int, title: str, detail: str = "", errors: list[dict] | None = None,
            kind: str | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """Return an application/problem+json response."""
    body: dict[str, Any] = {"type": f"urn:gridloop:problem:{kind}" if kind else "about:blank",
                            "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json")
    response.headers.update(headers or {})
    return response


def problem_for(error: HTTPException) -> Response:
    """Turn an HTTP error into problem details (unknown routes, wrong methods, rate limits, ...)."""
    detail = error.description or ""
    if error.code == 429:
        detail = f"Rate limit exceeded ({detail}); wait and retry."
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}  # e.g. 405's Allow
    if error.code == 429:
        retry = error.response.headers.get("Retry-After") if error.response is not None else None
        headers["Retry-After"] = retry or "60"
    return problem(error.code or 500, error.name, detail, headers=headers)


def _invalid(errors: list[dict], detail: str = "Some fields are wrong; see errors.") -> Response:
    return problem(422, "Invalid input", detail, errors, kind="invalid-input")


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return problem_for(error)


@bp.errorhandler(PermissionDenied)
def _denied(error: PermissionDenied):
    get_session().rollback()
    return problem(403, "Forbidden", "Your role does not allow this.", kind="forbidden")


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    get_session().rollback()
    message = error.localized()
    if isinstance(error, ConflictError):
        return problem(409, "Conflict", message, kind="conflict")
    if isinstance(error, NotFound):
        return problem(404, "Not Found", message)
    return _invalid([{"field": error.field or "", "message": message}], message)


# -- authentication ------------------------------------------------------------------------------

@bp.before_request
def _authenticate():
    """Act as the token's user within its scope; the session cookie is never used here (no CSRF to forge)."""
    if request.endpoint == "api.openapi_document":
        return None
    token = presented_api_token()
    if token is None:
        return problem(401, "Unauthorized", _unauthorized_detail(), kind="unauthorized",
                       headers={"WWW-Authenticate": 'Bearer realm="gridloop"'})
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    if refused := tokens.refusal(token, "api", writes, f"{request.method} {request.path}"):
        return problem(403, "Forbidden", refused, kind="token-scope")
    g._login_user = token.user  # Flask-Login's current_user for this request only; nothing goes in the session
    return None


def _unauthorized_detail() -> str:
    """Say why no token was accepted: none sent (or only in the URL), unknown or revoked, or expired."""
    if expired := token_expired():
        return str(expired)
    if presented_token():
        return "This token is unknown or revoked; create a new one on your profile page."
    if any(key.lower() in ("api_key", "access_token") for key in request.args):
        return ("A token in the URL is not accepted: URLs are written to access logs. Send it as the header "
                "Authorization: Bearer <token>, and revoke this one on your profile page if it was logged.")
    return "Send Authorization: Bearer <token>; create a token on your profile page."


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of this API (public)."""
    return jsonify(_document())


@functools.cache
def _document_for(categories: tuple[str, ...], channels: tuple[str, ...]) -> dict:
    return openapi.document(list(categories), list(channels))


def _document() -> dict:
    return _document_for(tuple(current_app.config["GRIDLOOP"]["categories"]), tuple(labels.CHANNELS))


# -- bodies ----------------------------------------------------------------------------------------

def _body(schema: str | dict) -> dict:
    """Return the JSON body, checked against its schema in the OpenAPI document (422 names each field)."""
    data = _json_object()
    document = _document()
    spec = document["components"]["schemas"][schema] if isinstance(schema, str) else schema
    validator = Draft202012Validator({**spec, "$defs": {}, "components": document["components"]})
    errors = _schema_errors(validator, data)
    if errors:
        abort(_invalid(errors))
    return data


def _json_object() -> dict:
    """Return the JSON body as an object, refusing bodies that nest too deep or are no object (400)."""
    if _depth(request.get_data(cache=True)) > MAX_DEPTH:
        # Parsing (and checking) that would recurse past Python's stack limit: refuse before parsing.
        abort(problem(400, "Bad Request", f"The JSON body nests arrays or objects more than {MAX_DEPTH} levels "
                                          "deep; the bodies described in the OpenAPI document need three.",
                      kind="too-deep"))
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(problem(400, "Bad Request", "Send a JSON object with Content-Type: application/json.",
                      kind="not-json"))
    return data


def _command(command: type[C], data: Mapping[str, Any], *, prefix: str = "",
             detail: str = "Some fields are wrong; see errors.") -> C:
    """Build a command from JSON data, or answer 422 naming every wrong field in the request's language."""
    try:
        return build(command, data, from_json=True)
    except InvalidCommand as exc:
        abort(_invalid([{"field": prefix + e.field, "message": e.localized()} for e in exc.errors], detail))


def _depth(raw: bytes) -> int:
    """Return how deeply a JSON text nests arrays and objects, without parsing it (brackets in strings skipped)."""
    try:
        text = raw.decode(json.detect_encoding(raw))
    except (UnicodeDecodeError, LookupError):
        return 0  # not JSON text at all: the parser refuses it
    brackets = _NOT_NESTING.sub("", text)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _schema_errors(validator: Draft202012Validator, data: Any, prefix: str = "") -> list[dict]:
    """The schema errors of ``data`` as problem ``errors``, each naming its field (dotted, after ``prefix``)."""
    return [{"field": field, "message": e.message}
            for e in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
            for field in _fields(e, prefix)]


def _fields(error: ValidationError, prefix: str = "") -> list[str]:
    """Name the fields an error is about: its place, the missing property, or each unexpected one."""
    path = [prefix] if prefix else []
    path += [str(p) for p in error.absolute_path]
    if error.validator == "required" and error.message.startswith("'"):
        names = [error.message.split("'")[1]]
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        names = sorted(set(error.instance) - set(error.schema.get("properties", {})))
    else:
        return [".".join(path)]
    return [".".join([*path, name]) for name in names]


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _person(user: User | None) -> dict | None:
    return {"id": user.id, "name": user.display_name} if user else None


def _task(task: Task) -> dict:
    return {"id": task.id, "case_id": task.case_id, "case_number": task.case.number, "name": task.name,
            "title": task.title, "form_key": task.form_key, "lane": task.lane, "role": task.role,
            "grid_id": task.grid_id, "department_id": task.department_id, "assignee": _person(task.assignee),
            "status": task.status, "due_at": _time(task.due_at), "created_at": _time(task.created_at),
            "completed_at": _time(task.completed_at)}


def _case(case: Case) -> dict:
    return {"id": case.id, "number": case.number, "status": case.status, "version": case.version,
            "grid": {"id": case.grid.id, "code": case.grid.code},
            "building": {"id": case.building.id, "name": case.building.name}, "category": case.category,
            "channel": case.channel, "urgency": case.urgency, "green_channel": case.green_channel,
            "resident_name": case.resident_name, "created_at": _time(case.created_at), "due_at": _time(case.due_at),
            "outcome": case.outcome, "archived_at": _time(case.archived_at)}


def _case_detail(case: Case) -> dict:
    running = case.status in (CaseStatus.HANDLING, CaseStatus.EXTENSION_REVIEW)
    return {**_case(case), "resident_phone": case.resident_phone, "address_detail": case.address_detail,
            "description": case.description, "reply": case.reply, "result": case.result,
            "dispatch_to": case.dispatch_to, "handler": _person(case.handler),
            "department": {"id": case.department.id, "name": case.department.name} if case.department else None,
            "deadline": {"class": case.deadline_class, "dispatched_at": _time(case.dispatched_at),
                         "sign_for_at": _time(case.sign_for_at), "signed_at": _time(case.signed_at),
                         "remind_at": _time(case.remind_at), "due_at": _time(case.due_at),
                         "escalate_at": _time(case.escalate_at),
                         "overdue": bool(running and case.due_at and due_window().overdue(case.due_at))},
            "reopen_count": case.reopen_count,
            "tasks": [_task(t) for t in case.tasks if t.status == TaskStatus.OPEN],
            "audit_head": case.audit_head}


def _duplicates(case: Case) -> dict:
    """The main case a duplicate follows, and the duplicates following a main case (重复件)."""
    link, followers = residents.links_touching(get_session(), case.id)
    return {"duplicate_of": {"id": link.main_case_id, "number": link.main_case.number,
                             "released": link.released_at is not None} if link else None,
            "duplicates": [{"id": row.case_id, "number": row.case.number, "released": row.released_at is not None}
                           for row in followers]}


def _fits(key: int | str) -> bool:
    """Whether a primary key column can hold ``key``: other keys never reach the database."""
    return 0 < key <= openapi.MAX_ID if isinstance(key, int) else len(key) <= 36 and "\x00" not in key


def _row(model: type, key: int | str) -> Any:
    """Return the row with this primary key, or None."""
    return get_session().get(model, key) if _fits(key) else None


def _load_case(case_id: int) -> Case:
    case = _row(Case, case_id)
    if case is None or not can(current_user, Permission.CASE_READ, case):
        abort(problem(404, "Not Found", f"No case {case_id} you may read."))
    return case


def _load_task(task_id: str, *, for_change: bool = False) -> Task:
    """Load a task the user may read (404 otherwise); ``for_change``: with its case locked, in the one
    query the service that changes it would take (locks.lock_task), which then reads nothing again."""
    if for_change:
        task = find_locked_task(services(), task_id) if _fits(task_id) else None
    else:
        task = _row(Task, task_id)
    if task is None or not can(current_user, Permission.TASK_READ, task):
        abort(problem(404, "Not Found", f"No task {task_id} you may read."))
    return task


# -- endpoints -----------------------------------------------------------------------------------

def _attachment(row: Attachment) -> dict:
    return {"id": row.id, "kind": row.kind, "sha256": row.sha256, "content_type": row.content_type,
            "size": row.size, "width": row.width, "height": row.height, "file_name": row.file_name,
            "created_at": _time(row.created_at),
            "urls": {v: url_for("api.get_attachment", attachment_id=row.id, variant=v)
                     for v in ("display", "thumb", "original")}}


@bp.get("/cases/<int:case_id>/attachments")
def list_attachments(case_id: int):
    """The case's photos, oldest first."""
    case = _load_case(case_id)
    return jsonify({"items": [_attachment(r) for r in attachments.of_case(get_session(), case.id)]})


@bp.post("/cases/<int:case_id>/attachments")
def upload_attachments(case_id: int):
    """Add photos to a case (multipart: ``kind`` and one or more ``photos``); all are refused if one is bad."""
    case = _load_case(case_id)
    # The command takes the form's fields but the files (``photos``, checked by the service by content).
    command = _command(UploadAttachment, {k: v for k, v in request.form.items() if k in UploadAttachment.model_fields})
    rows = attachments.add_photos(services(), media.current_store(), current_user, case.id, command,
                                  media.request_uploads())
    return jsonify({"items": [_attachment(r) for r in rows]}), 201


@bp.get("/attachments/<int:attachment_id>/<variant>")
def get_attachment(attachment_id: int, variant: str):
    """One photo of a case the token's user may read: display copy, thumbnail or original."""
    row = _row(Attachment, attachment_id)
    case = _row(Case, row.case_id) if row is not None and row.case_id is not None else None
    if case is None or variant not in ("display", "thumb", "original") \
            or not can(current_user, Permission.CASE_READ, case):
        return problem(404, "Not Found", f"No photo {attachment_id} you may see.")
    digest = {"display": row.display_sha256, "thumb": row.thumb_sha256, "original": row.sha256}[variant]
    try:
        body = media.current_store().get(digest)
    except FileNotFoundError:
        return problem(404, "Not Found", "The photo's file is missing from the store.")
    response = Response(body, mimetype=row.content_type if variant == "original" else "image/jpeg")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/me")
def me():
    """Who the token acts as."""
    user = current_user
    return jsonify({"id": user.id, "username": user.username, "display_name": user.display_name,
                    "is_admin": user.is_admin,
                    "roles": [{"role": m.role, "grid_id": m.grid_id, "department_id": m.department_id,
                               "community_id": m.community_id} for m in user.memberships]})


@bp.get("/stats")
def get_stats():
    """The numbers (README "The numbers"): the rates of a period against the previous one, optionally by group."""
    try:
        query = StatsQuery.from_args(request.args)
    except InvalidCommand as exc:
        return problem(400, "Bad Request", "A parameter is malformed; see errors.",
                       [{"field": e.field, "message": e.localized()} for e in exc.errors], kind="bad-filter")
    led = grid_ids(current_user, Role.GRID_LEADER)
    area = current_user.is_admin or audits_district(current_user) or bool(community_ids(current_user))
    grid = query.grid
    if not area and (not led or (grid if grid is not None else min(led)) not in led):
        raise PermissionDenied("the numbers are for grid leaders (of their grids), the street office and auditors")
    if not area and grid is None:
        grid = min(led)
    scope = stats.Scope(grid_id=grid, department_id=query.department, handler_id=query.handler)
    zone, now = local_zone(), due_window().now
    period = query.period_on(now.astimezone(zone).date())
    return jsonify(stats.summary(get_session(), current_user, scope, period, zone, now,
                                 stats.Definitions.from_config(current_app.config["GRIDLOOP"]), query.by))


@bp.get("/buildings")
def buildings():
    """The buildings where the user may record cases."""
    rows = queries.recordable_buildings(get_session(), current_user)
    return jsonify({"items": [{"id": b.id, "name": b.name, "address": b.address, "grid_id": b.grid_id,
                               "grid_code": b.grid.code} for b in rows]})


@bp.get("/cases")
def list_cases():
    """The cases the user may read, with the UI's filters, newest first, in keyset pages."""
    args = request.args
    f = {k: args.get(k, "") for k in FILTERS}
    f["q"] = f["q"].strip()
    errors = _filter_errors(f, args)
    limit = args.get("limit", str(PAGE))
    if not _is_int(limit, MAX_PAGE):
        errors.append({"field": "limit", "message": f"must be an integer from 1 to {MAX_PAGE}"})
    after = _cursor(args.get("cursor", ""), errors)
    if errors:
        return problem(400, "Bad Request", "A filter is malformed; see errors.", errors, kind="bad-filter")
    rows, more = queries.case_feed(get_session(), current_user, f, due_window(), after, int(limit), local_zone())
    return jsonify({"items": [_case(c) for c in rows],
                    "next_cursor": _make_cursor(rows[-1]) if more and rows else None})


def _filter_errors(f: Mapping[str, str], given: Mapping[str, str]) -> list[dict]:
    """Check the filters sent as the document describes them (the UI's list ignores what it cannot use)."""
    allowed = {"status": labels.STATUSES, "category": current_app.config["GRIDLOOP"]["categories"],
               "channel": labels.CHANNELS, "deadline": ("overdue", "due_soon", "mine")}
    errors = [{"field": key, "message": f"must be one of {', '.join(values)}"}
              for key, values in allowed.items() if key in given and f[key] not in values]
    for key in ("grid", "department", "handler"):
        if key in given and not _is_int(f[key], openapi.MAX_ID):
            errors.append({"field": key, "message": "must be an id (an integer)"})
    if "fig" in given and stats.figure_condition(f["fig"], due_window().now) is None:
        errors.append({"field": "fig", "message": "must name a figure (see /api/v1/openapi.json)"})
    if "outcome" in given and not set(f["outcome"].split(",")) <= set(stats.REACHED):
        errors.append({"field": "outcome", "message": f"must be a comma-separated list of {', '.join(stats.REACHED)}"})
    for key in ("date_from", "date_to"):
        if key in given and not _is_date(f[key]):
            errors.append({"field": key, "message": "must be a date, YYYY-MM-DD"})
    if len(f["q"]) > 100 or "\x00" in f["q"]:
        errors.append({"field": "q", "message": "must be text of at most 100 characters"})
    return errors


def _is_int(text: str, maximum: int) -> bool:
    """Whether ``text`` is an integer from 1 to ``maximum`` (ASCII digits: "²".isdigit() is true too)."""
    return text.isascii() and text.isdigit() and 1 <= int(text) <= maximum


def _is_date(text: str) -> bool:
    """Whether ``text`` is a YYYY-MM-DD date the list can search from and to (the day after must exist)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    try:
        return dt.date.fromisoformat(text) < dt.date.max
    except ValueError:
        return False


def _make_cursor(case: Case) -> str:
    raw = json.dumps([case.created_at.astimezone(dt.UTC).isoformat(), case.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(text: str, errors: list) -> tuple[dt.datetime, int] | None:
    """Decode a cursor this API returned: [created_at with its zone, case id]."""
    if not text:
        return None
    try:
        if len(text) > 200:  # ours are about 60 characters; a long one could nest deep enough to crash the parser
            raise ValueError("not a cursor")
        created, case_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        moment = dt.datetime.fromisoformat(created)
        if moment.tzinfo is None or not isinstance(case_id, int) or not 0 < case_id <= openapi.MAX_ID:
            raise ValueError("not a cursor")
        return moment.astimezone(dt.UTC), case_id
    except (ValueError, TypeError, OverflowError, binascii.Error):
        errors.append({"field": "cursor", "message": "is not a cursor this API returned; start without one"})
        return None


@bp.post("/cases")
def create_case():
    """Record a case through the same intake as the UI (the same checks, the same loop)."""
    grids = grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)
    if not grids:
        raise PermissionDenied(current_user.username)  # only grid staff record cases
    command = _command(RecordCase, _json_object())
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return _created(open_case(services(), current_user, command, door=Door.API))
    # A retry with the same key answers with the case already made (services.duplicates).
    if not duplicates.valid_key(key):
        return problem(400, "Bad Request", f"{IDEMPOTENCY_HEADER} must be 1 to 100 printable ASCII characters "
                                           "without spaces, e.g. a UUID.", kind="bad-idempotency-key")
    digest = duplicates.intake_digest(command)
    made = duplicates.replayed(services(), current_user, key, digest)
    if made is None:
        row = duplicates.reserve_key(services(), current_user, key, digest)
        if row is not None:
            case = open_case(services(), current_user, command, door=Door.API)
            duplicates.keep_key(row, case)
            return _created(case)
        made = duplicates.replayed(services(), current_user, key, digest)  # a parallel retry made it meanwhile
        if made is None:
            raise ConflictError(N_("A request with this Idempotency-Key is still being recorded; retry shortly."))
    response = _created(made)
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return response


#: The header making POST /cases safe to retry: a repeat with the same key answers with the case made.
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _created(case: Case) -> Response:
    """Answer with a recorded case, its address in Location."""
    response = jsonify(_case_detail(case))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_case", case_id=case.id)
    return response


@bp.get("/cases/<int:case_id>/possible-duplicates")
def possible_duplicates(case_id: int):
    """The open or recent cases a case may repeat (重复件), as the desk's intake warning finds them.

    Taken as at the case's recording (services.duplicates.find_duplicates), so asking again lists the same
    cases; only cases the caller may read (as GET /cases/{id}), and of them no more than their id, number,
    status and recording time. Its own request: recording a case stays within its statement budget.
    """
    case = _load_case(case_id)
    matches = duplicates.find_duplicates(services(), current_user, case, made=case)
    return jsonify({"case_id": case.id, "items": [
        {"id": m.case.id, "number": m.case.number, "status": m.case.status, "created_at": _time(m.case.created_at)}
        for m in matches if can(current_user, Permission.CASE_READ, m.case)]})


@bp.post("/cases/<int:case_id>/link")
def link_duplicate(case_id: int):
    """Link a case waiting for dispatch to the main case it repeats (grid leaders): it follows that case."""
    case = _load_case(case_id)
    command = _command(LinkDuplicate, _json_object())
    case = duplicates.link_duplicate(services(), current_user, case.id, command)
    return jsonify({**_case_detail(case), **_duplicates(case)})


@bp.post("/cases/<int:case_id>/unlink")
def unlink_duplicate(case_id: int):
    """Unlink a duplicate still following its main case (grid leaders): its waiting task opens again."""
    case = _load_case(case_id)
    version = _body("VersionBody")["version"]
    case = duplicates.unlink_duplicate(services(), current_user, case.id, version)
    return jsonify({**_case_detail(case), **_duplicates(case)})


@bp.get("/cases/<int:case_id>")
def get_case(case_id: int):
    """A case with its open tasks, deadline and outcome, and its duplicate links (重复件)."""
    case = _load_case(case_id)
    return jsonify({**_case_detail(case), **_duplicates(case)})


@bp.get("/cases/<int:case_id>/history")
def case_history(case_id: int):
    """Every audit event of the case, in order."""
    case = _load_case(case_id)
    events = queries.case_events(get_session(), case.id)
    return jsonify({"case_id": case.id, "number": case.number, "events": [{
        "seq": e.seq, "at": _time(e.at), "actor": _person(e.actor), "actor_name": e.actor_name, "action": e.action,
        "task_name": e.task_name, "changes": json.loads(e.changes), "prev_hash": e.prev_hash, "hash": e.hash}
        for e in events]})


@bp.get("/cases/<int:case_id>/verify")
def verify_case(case_id: int):
    """Verify the case's audit chain."""
    case = _load_case(case_id)
    report = verify_chain(get_session(), case.id)
    return jsonify({"case_id": case.id, "ok": report.ok, "events": report.events, "broken_seq": report.broken_seq,
                    "problem": report.problem, "head": report.head})


@bp.get("/tasks")
def list_tasks():
    """My open tasks (scope=mine) or the unclaimed tasks of my lanes (scope=pool)."""
    scope = request.args.get("scope", "mine")
    if scope not in ("mine", "pool"):
        return problem(400, "Bad Request", "scope must be mine or pool.",
                       [{"field": "scope", "message": "mine or pool"}], kind="bad-filter")
    rows = queries.task_list(get_session(), current_user, scope)
    return jsonify({"items": [_task(t) for t in rows]})


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):
    """One task."""
    return jsonify(_task(_load_task(task_id)))


def _version_action(task_id: str, action) -> Response:
    task = _load_task(task_id)
    data = _body("VersionBody")
    action(services(), current_user, task.id, data["version"])
    get_session().refresh(task)  # the service changed assignee_id; reload the assignee it points at
    return jsonify(_task(task))


@bp.post("/tasks/<task_id>/claim")
def claim(task_id: str):
    """Take a pool task."""
    return _version_action(task_id, claim_task)


@bp.post("/tasks/<task_id>/sign")
def sign(task_id: str):
    """Sign for (签收) a handling task."""
    return _version_action(task_id, sign_for)


@bp.post("/tasks/<task_id>/release")
def release(task_id: str):
    """Put a claimed task back in its pool (its holder's lane, or a leader of its grid)."""
    task = _load_task(task_id)
    if not (in_lane(current_user, task) or can(current_user, Permission.TASK_REASSIGN, task)):
        raise PermissionDenied(task.id)  # say so before the service says an unclaimed task is in the pool
    return _version_action(task_id, assign.release)


@bp.post("/tasks/<task_id>/complete")
def complete(task_id: str):
    """Complete a task with the data its form asks for."""
    task = _load_task(task_id, for_change=True)
    # The envelope first; then the data against this task's own command, so each error names its field
    # (the document's oneOf over every kind of task could only say "matches none of them").
    envelope = _document()["components"]["schemas"]["Completion"]
    body = _body({**envelope, "properties": {**envelope["properties"], "data": {"type": "object"}}})
    command = _command(TASKS[task.form_key].command, body["data"], prefix="data.",
                       detail=f"This task ({task.form_key}) takes other data; see errors.")
    if not can(current_user, Permission.TASK_COMPLETE, task) and task.status == TaskStatus.OPEN:
        raise PermissionDenied(task.id)
    try:
        case = complete_task(services(), current_user, task.id, body["version"], command)
    except InvalidInput as error:
        error.field = f"data.{error.field}" if error.field else error.field  # the command's fields sit under data
        raise
    return jsonify(_case_detail(case))


@bp.post("/tasks/<task_id>/reassign")
def reassign(task_id: str):
    """Give a task to a named person (grid leaders)."""
    task = _load_task(task_id)
    assign.reassign(services(), current_user, task.id, _command(ReassignTask, _json_object()))
    return jsonify(_task(get_session().get(Task, task.id)))


@bp.post("/tasks/<task_id>/recall")
def recall(task_id: str):
    """Recall (撤回) a case from the department handling it (grid leaders): back to dispatch."""
    task = _load_task(task_id)
    case = recall_case(services(), current_user, task.id, _command(Recall, _json_object()))
    return jsonify(_case_detail(case))


@bp.post("/grids/<int:grid_id>/handover")
def handover(grid_id: int):
    """Preview a handover (no fingerprint), or carry it out (with the preview's fingerprint)."""
    if _row(Grid, grid_id) is None:
        return problem(404, "Not Found", f"No grid {grid_id}.")
    command = _command(HandOverTasks, _json_object())
    if command.fingerprint:
        plan = assign.hand_over(services(), current_user, grid_id, command)
    else:
        plan = assign.plan_handover(services(), current_user, grid_id, command)
    return jsonify({"done": bool(command.fingerprint), "fingerprint": plan.fingerprint,
                    "moves": [{"task_id": t.id, "case_number": t.case.number, "to": _person(u)}
                              for t, u in plan.moves]})


@bp.get("/grids/<int:grid_id>/workload")
def grid_workload(grid_id: int):
    """Open, due soon and overdue tasks per person, the pool, and what waits for the leader."""
    grid = _row(Grid, grid_id)
    if grid is None:
        return problem(404, "Not Found", f"No grid {grid_id}.")
    if not can(current_user, Permission.GRID_MANAGE, grid):
        raise PermissionDenied(grid.code)
    board = queries.workload(get_session(), grid.id, due_window())
    return jsonify({"grid": {"id": grid.id, "code": grid.code, "name": grid.name},
                    "people": [{"user": _person(p), **board.counts_of(p.id)} for p in board.people],
                    "pool": board.pool, "waiting_for_decision": [_task(t) for t in board.decisions]})


__all__ = ["bp", "problem", "problem_for"]
