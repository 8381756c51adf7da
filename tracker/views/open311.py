"""Open311 GeoReport v2 under /open311/v2: services, service definitions, requests and tokens.

Reading is public (as the specification intends) and never shows a resident's name, phone,
e-mail, unit or green-channel group. Filing needs an API token of scope open311 or full (``api_key``
in the POST body, or a bearer header) whose user may record cases in the building's grid; the case
goes through the same intake service as the web form. A token is never taken from the URL: request
lines are logged. Every answer is JSON or XML by the path's extension, errors in Open311's format.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask_babel import force_locale
from flask_limiter.errors import RateLimitExceeded

from .. import clock, labels, media, queries
from ..codes import AttachmentKind
from ..db import get_session
from ..errors import DomainError
from ..models import Building, Case, CaseStatus, TokenScope, User
from ..open311 import (
    CHANGESET,
    NEAR_METRES,
    SPECIFICATION,
    Open311Error,
    buildings_named_in,
    error_response,
    iso_local,
    nearest_building,
    parse_w3c,
    render,
)
from ..permissions import Permission, PermissionDenied, can
from ..services import attachments, tokens
from ..services.cases import Door, open_case
from ..services.commands import InvalidCommand, RecordCase, build
from . import hide_keys_in_access_logs, presented_api_token, presented_token, public_base_url, services, token_expired

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FMT = "<any(json, xml):fmt>"
#: GET requests looks at most this far back by default, and no further in one query.
WINDOW = dt.timedelta(days=90)
MAX_RESULTS = 1000
ANONYMOUS = "匿名居民"
#: Service groups for the configured categories; a category added in config.toml falls in "其他".
GROUPS = {
    "civil_affairs": "民政社保", "pension": "民政社保", "medical_insurance": "民政社保", "employment": "民政社保",
    "certificates": "证明办理", "legal": "平安法治", "security": "平安法治", "dispute_mediation": "平安法治",
    "property_repair": "环境设施", "city_management": "环境设施",
}
#: The service definition's attributes: code -> (description, values allowed); all optional.
ATTRIBUTES = {
    "urgency": ("紧急程度 Urgency", labels.URGENCIES),
    "green_channel": ("绿色通道：老年人、残疾人、患病者优先办理，时限缩短 "
                      "Green channel: elderly, disabled or sick residents are served first, with shorter limits",
                      {k: v for k, v in labels.GREEN_CHANNEL.items() if k}),
}


@bp.url_value_preprocessor
def _preprocess(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Note the answer's format and refuse a jurisdiction_id this server does not serve."""
    g.open311_format = (values or {}).get("fmt") or ("xml" if request.path.endswith(".xml") else "json")
    jurisdiction = request.values.get("jurisdiction_id", "").strip()
    served = current_app.config["GRIDLOOP"]["api"]["open311_jurisdiction"]
    if jurisdiction and jurisdiction != served:
        raise Open311Error(400, f"jurisdiction_id {jurisdiction!r} is not served here; send {served!r} or leave "
                                "jurisdiction_id out")


@bp.record_once
def _quiet_logs(_state) -> None:
    """Keep a key a program still puts in a URL out of the access log (the request is refused anyway)."""
    hide_keys_in_access_logs()


@bp.before_request
def _authenticate() -> None:
    """Refuse a key in the URL; check a presented key once: live (401) and of a scope for this call (403)."""
    if any(key.lower() in ("api_key", "access_token") for key in request.args):
        raise Open311Error(400, "api_key is not accepted in the URL: URLs are written to access logs. Send it as "
                                "the header Authorization: Bearer <api_key> (to file, also as the api_key field of "
                                "the POST body), and have this key revoked if it was logged")
    if not presented_token(api_key_field=True):
        return
    token = presented_api_token(api_key_field=True)
    if token is None:
        expired = token_expired()
        raise Open311Error(401, f"api_key is not valid: {expired}" if expired else
                           "api_key is not valid: the token is unknown or revoked, or its user is disabled; "
                           "ask the administrator for a new token, or leave it out to read the public requests")
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    if refused := tokens.refusal(token, "open311", writes, f"{request.method} {request.path}"):
        raise Open311Error(403, refused)


@bp.errorhandler(Open311Error)
def _refuse(error: Open311Error) -> Response:
    """Undo the request's work and answer in Open311's error format."""
    get_session().rollback()
    return error_response(g.get("open311_format", "json"), error)


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded) -> Response:
    """Answer a rate-limited client in Open311's error format."""
    return error_response(g.get("open311_format", "json"), Open311Error(
        429, f"too many requests ({error.description}); wait and retry, see the Retry-After header"))


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str) -> Response:
    """Describe this endpoint: specification, base URL and formats."""
    base = public_base_url() + bp.url_prefix
    return render(fmt, "discovery", None, {
        "changeset": CHANGESET,
        "contact": "请联系所在社区的网格长 Contact the grid leader of your community",
        "key_service": "API 密钥由系统管理员签发（flask create-token，权限 open311），放在 POST 请求体或 "
                       "Authorization: Bearer 请求头中，不要放在网址里 API keys are issued by the administrator with "
                       "`flask create-token USERNAME --name PROGRAM --scope open311`; send them in the POST body or an "
                       "Authorization: Bearer header, never in the URL",
        "endpoints": [{"specification": SPECIFICATION, "url": base, "changeset": CHANGESET, "type": "production",
                       "formats": ["application/json", "text/xml"]}],
    })


@bp.get(f"/services.{FMT}")
def service_list(fmt: str) -> Response:
    """List the case categories as Open311 services."""
    categories = current_app.config["GRIDLOOP"]["categories"]
    return render(fmt, "services", "service", [_service(code, pair) for code, pair in categories.items()])


def _service(code: str, pair: list[str]) -> dict[str, Any]:
    """Describe one category as a service: zh name, zh and English description."""
    zh, en = pair
    return {"service_code": code, "service_name": zh, "description": f"{zh} {en}", "metadata": True,
            "type": "realtime", "keywords": f"{zh}, {en}, {code}", "group": GROUPS.get(code, "其他")}


@bp.get(f"/services/<service_code>.{FMT}")
def service_definition(service_code: str, fmt: str) -> Response:
    """Describe the attributes a request of one service may carry."""
    if service_code not in current_app.config["GRIDLOOP"]["categories"]:
        raise Open311Error(404, f"service_code {service_code!r} is not a service here; GET services.{fmt} lists them")
    attributes = [_attribute(order, code) for order, code in enumerate(ATTRIBUTES, start=1)]
    return render(fmt, "service_definition", None, {"service_code": service_code, "attributes": attributes})


def _attribute(order: int, code: str) -> dict[str, Any]:
    """Describe one optional single-choice attribute, values named in Chinese and English."""
    description, table = ATTRIBUTES[code]
    with force_locale("zh_CN"):
        zh = {key: str(text) for key, text in table.items()}
    with force_locale("en"):
        en = {key: str(text) for key, text in table.items()}
    return {"variable": True, "code": code, "datatype": "singlevaluelist", "required": False,
            "datatype_description": None, "order": order, "description": description,
            "values": [{"key": key, "name": f"{zh[key]} {en[key]}"} for key in table]}


@bp.post(f"/requests.{FMT}")
def create_request(fmt: str) -> Response:
    """File a service request as the token's user: one case through the intake service."""
    user = _token_user()
    fields, errors = _read_filing(request.form)
    building = None
    if not errors:
        building, problem = _locate(fields)
        errors += [problem] if problem else []
    # The intake's own rules (phone, e-mail, lengths, link), named by Open311's field names; all at once.
    try:
        intake = build(RecordCase, {**_intake_fields(fields), "building_id": building.id if building else 1})
    except InvalidCommand as exc:
        errors += [f"{OPEN311_NAMES.get(e.field, e.field)}: {e.localized()}" for e in exc.errors]
    # A photo sent as the file field ``media`` (multipart) is checked by content like any upload; media_url
    # stays a link staff may open: the server never fetches it (no request to addresses a client chose).
    try:
        photos = attachments.check_uploads(services(), media.request_uploads("media"), field="media")
    except DomainError as exc:
        errors.append(f"media: {exc.localized()}")
    if errors:
        raise Open311Error(400, *errors)
    if not can(user, Permission.CASE_CREATE, building.grid):
        raise Open311Error(403, _not_in_grid(user, building))
    try:
        case = open_case(services(), user, intake, door=Door.OPEN311)
        attachments.attach(services(), media.current_store(), user, case, photos, AttachmentKind.INTAKE)
    except PermissionDenied as exc:
        raise Open311Error(403, f"{_not_in_grid(user, building)} ({exc})") from None
    except DomainError as exc:
        raise Open311Error(400, str(exc)) from None
    notice = _notice(case.number)
    return render(fmt, "service_requests", "request",
                  [{"service_request_id": case.number, "service_notice": notice, "account_id": None}], 201)


def _token_user() -> User:
    """Return the user of the request's API token (checked before the view), or refuse when there is none."""
    token = presented_api_token(api_key_field=True)
    if token is None:
        raise Open311Error(401, "api_key is required to file a request: send the API token as the api_key field "
                                "(or an Authorization: Bearer header); the administrator issues tokens")
    return token.user


def _reader() -> User | None:
    """Say whose view a GET shows: with a read or full key, its user's (the cases they may read); without one
    (or with an open311 key), the public's (None: only the requests filed through Open311 apps, as other cases
    can hold a resident's circumstances). A presented key was checked before the view."""
    token = presented_api_token(api_key_field=True)
    return None if token is None or token.scope == TokenScope.OPEN311 else token.user


def _not_in_grid(user: User, building: Building) -> str:
    """Explain a refusal to file in a building's grid."""
    return (f"the api_key's user {user.username} may not record cases in grid {building.grid.code} "
            f"({building.grid.name}), where {building.name} lies; use a token of a grid member of that grid")


def _read_filing(form: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Check every posted field but the place; return the cleaned fields and one message per problem."""
    fields: dict[str, Any] = {key: (form.get(key) or "").strip() for key in (
        "service_code", "description", "first_name", "last_name", "phone", "email", "media_url",
        "address_string", "address_id", "lat", "long")}
    errors = [problem] if (problem := _check_service(fields)) else []
    fields["resident_name"] = " ".join(p for p in (fields["first_name"], fields["last_name"]) if p) or ANONYMOUS
    errors += _read_attributes(form, fields)
    errors += _read_place(fields)
    return fields, errors


def _check_service(fields: dict[str, Any]) -> str | None:
    """Require a known service_code."""
    code = fields["service_code"]
    if not code:
        return "service_code is required; GET services.json lists the codes"
    if code not in current_app.config["GRIDLOOP"]["categories"]:
        return f"service_code {code!r} is not a service here; GET services.json lists the codes"
    return None


def _read_attributes(form: Mapping[str, str], fields: dict[str, Any]) -> list[str]:
    """Read attribute[urgency] and attribute[green_channel]; refuse unknown codes and values."""
    errors, fields["urgency"], fields["green_channel"] = [], "normal", ""
    for key in form:
        if not key.startswith("attribute["):
            continue
        code, value = key.removeprefix("attribute[").split("]", 1)[0], form[key].strip()
        if code not in ATTRIBUTES:
            errors.append(f"{key} is not an attribute here; use attribute[urgency] or attribute[green_channel] "
                          "(GET services/{service_code}.json describes them)")
        elif value and value not in ATTRIBUTES[code][1]:
            errors.append(f"{key} {value!r} is not allowed; use one of {', '.join(ATTRIBUTES[code][1])}")
        elif value:
            fields[code] = value
    return errors


def _read_place(fields: dict[str, Any]) -> list[str]:
    """Parse lat/long and address_id; require a place (lat and long, address_string or address_id)."""
    errors = []
    lat, lon = fields.pop("lat"), fields.pop("long")
    fields["position"] = None
    if lat or lon:
        try:
            position = float(lat), float(lon)
        except ValueError:
            position = None
        if position is None or not all(map(math.isfinite, position)) \
                or not (-90 <= position[0] <= 90 and -180 <= position[1] <= 180):
            errors.append("lat and long must both be given as WGS-84 decimal degrees, e.g. lat=39.9042&long=116.4074")
        else:
            fields["position"] = position
    if fields["address_id"] and not (fields["address_id"].isascii() and fields["address_id"].isdigit()):
        errors.append(f"address_id {fields['address_id'][:40]!r} is not a building id; it is a whole number")
    if len(fields["address_string"]) > 200:
        errors.append("address_string may have at most 200 characters")
    if not (lat or lon or fields["address_string"] or fields["address_id"]):
        errors.append("the place is required: send lat and long, or address_string (the building's name or "
                      "address), or address_id (a building id)")
    return errors


def _locate(fields: dict[str, Any]) -> tuple[Building | None, str | None]:
    """Find the building: by address_id, else the nearest to lat/long, else by name in address_string."""
    db, problems = get_session(), []
    if fields["address_id"]:
        building_id = int(fields["address_id"])
        building = db.get(Building, building_id) if building_id < 2**31 else None
        if building is not None:
            return building, None
        problems.append(f"address_id {fields['address_id']} is not a building of this service area")
    if fields["position"]:
        building = nearest_building(db, *fields["position"])
        if building is not None:
            return building, None
        problems.append(f"no building of the served area is within {NEAR_METRES:.0f} m of lat/long "
                        f"{fields['position'][0]}, {fields['position'][1]}; check the position (WGS-84) or send "
                        "address_string or address_id")
    if fields["address_string"]:
        found = buildings_named_in(db, fields["address_string"])
        if len(found) == 1:
            return found[0], None
        problems.append(f"address_string {fields['address_string'][:80]!r} "
                        + ("names no building of the served area; give the building's name or address"
                           if not found else "matches several buildings; send address_id instead"))
    return None, "; ".join(problems)


#: The intake's field names as Open311 calls them, for error messages.
OPEN311_NAMES = {"resident_name": "first_name/last_name", "resident_phone": "phone", "resident_email": "email",
                 "category": "service_code", "address_detail": "address_string", "latitude": "lat",
                 "longitude": "long"}


def _intake_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Map checked Open311 fields onto the intake service's fields."""
    lat, lon = fields["position"] or (None, None)
    return {"resident_name": fields["resident_name"], "resident_phone": fields["phone"],
            "category": fields["service_code"], "description": fields["description"], "channel": "open311",
            "urgency": fields["urgency"], "green_channel": fields["green_channel"],
            "address_detail": fields["address_string"], "answered_on_spot": False,
            "resident_email": fields["email"], "latitude": lat, "longitude": lon, "media_url": fields["media_url"]}


def _notice(number: str | None = None) -> str:
    """Tell the resident what happens next and the configured time limits (in Chinese)."""
    d = current_app.config["GRIDLOOP"]["deadlines"]
    head = f"诉求已登记（编号 {number}），" if number else "诉求登记后"
    return (f"{head}由网格长派单或转职能部门办理。办理时限：紧急事项 {d['emergency_hours']:g} 小时，"
            f"水电气暖 {d['utilities_hours']:g} 小时，一般事项 {d['general_days']:g} 个工作日，"
            f"复杂事项 {d['complex_days']:g} 个工作日；老年人、残疾人、患病者走绿色通道，时限缩短为 "
            f"{d['green_channel_factor']:.0%}。办结后回访，可凭编号查询进度。")


@bp.get(f"/requests.{FMT}")
def request_list(fmt: str) -> Response:
    """List requests, newest first: by id, or by service, status and a window of at most 90 days."""
    rows = queries.open311_requests(get_session(), _reader(), _request_filters(request.args), MAX_RESULTS)
    return render(fmt, "service_requests", "request", [_public(case) for case in rows])


def _request_filters(args: Mapping[str, str]) -> queries.RequestFilters:
    """Check the GET requests filters; raise 400 naming every bad filter."""
    numbers = [n.strip() for n in args.get("service_request_id", "").replace("\x00", "").split(",") if n.strip()]
    if numbers:  # the specification: service_request_id overrides every other filter
        if len(numbers) > MAX_RESULTS:
            raise Open311Error(400, f"service_request_id lists {len(numbers)} ids; ask for at most {MAX_RESULTS}")
        return queries.RequestFilters(numbers=tuple(numbers))
    errors = []
    codes = [c.strip() for c in args.get("service_code", "").split(",") if c.strip()]
    if unknown := [c for c in codes if c not in current_app.config["GRIDLOOP"]["categories"]]:
        errors.append(f"service_code {', '.join(unknown)} is not a service here; GET services.json lists them")
    statuses = {s.strip() for s in args.get("status", "").split(",") if s.strip()}
    if statuses - {"open", "closed"}:
        errors.append("status must be open, closed, or both comma-separated (open,closed)")
    start, end = _window(args, errors)
    if errors:
        raise Open311Error(400, *errors)
    return queries.RequestFilters(codes=tuple(codes), statuses=frozenset(statuses), start=start, end=end)


def _window(args: Mapping[str, str], errors: list[str]) -> tuple[dt.datetime, dt.datetime]:
    """Return the start_date..end_date window (default: the last 90 days); note problems in ``errors``."""
    zone = current_app.config["GRIDLOOP"]["app"]["timezone"]
    given = {}
    for name in ("start_date", "end_date"):
        if value := args.get(name, "").strip():
            try:
                given[name] = parse_w3c(value, zone)
                if not 1900 <= given[name].year <= 9000:
                    raise ValueError(value)
            except (ValueError, OverflowError):
                given.pop(name, None)
                errors.append(f"{name} {value[:40]!r} is not a W3C datetime from 1900 to 9000; "
                              "use e.g. 2026-01-01T00:00:00+08:00")
    end = given.get("end_date") or clock.now()
    start = given.get("start_date") or end - WINDOW
    if start > end:
        errors.append("start_date is after end_date")
    elif end - start > WINDOW:
        errors.append("start_date to end_date spans more than 90 days; ask for at most 90 days at a time "
                      "(without end_date the window ends now)")
    return start, end


@bp.get(f"/requests/<service_request_id>.{FMT}")
def request_detail(service_request_id: str, fmt: str) -> Response:
    """Show one request, as a one-element list."""
    return render(fmt, "service_requests", "request", [_public(_case(service_request_id))])


@bp.get(f"/tokens/<token_id>.{FMT}")
def token(token_id: str, fmt: str) -> Response:
    """Resolve a token: cases are created at once, so the token is the request's own id."""
    case = _case(token_id)
    return render(fmt, "service_requests", "request", [{"service_request_id": case.number, "token": token_id}])


@bp.route("/<path:unknown>", methods=["GET", "POST"])
def not_found(unknown: str) -> Response:
    """Answer any other path (or format) under /open311/v2 with Open311's 404."""
    raise Open311Error(404, f"{unknown!r} is not an Open311 resource here; see discovery.json "
                            "(formats: .json and .xml)")


def _case(number: str) -> Case:
    """Load a case by its number (the service_request_id), or answer 404."""
    case = None if "\x00" in number else queries.open311_request(get_session(), _reader(), number)
    if case is None:
        raise Open311Error(404, f"service_request_id {number[:40]!r} is not a request here")
    return case


def _public(case: Case) -> dict[str, Any]:
    """Return a case's Open311 fields: what the public may see, never who asked or how to reach them."""
    zone = current_app.config["GRIDLOOP"]["app"]["timezone"]
    building = case.building
    lat, lon = ((case.latitude, case.longitude) if case.latitude is not None and case.longitude is not None
                else (building.latitude, building.longitude))
    category = current_app.config["GRIDLOOP"]["categories"].get(case.category)
    return {
        "service_request_id": case.number,
        "status": "closed" if case.status == CaseStatus.ARCHIVED else "open",
        "status_notes": _status_notes(case),
        "service_name": category[0] if category else case.category,
        "service_code": case.category,
        "description": case.description,
        "agency_responsible": (case.department.name if case.department_id is not None
                               else f"{case.grid.community.name} {case.grid.name}"),
        "service_notice": _notice(),
        "requested_datetime": iso_local(case.created_at, zone),
        "updated_datetime": iso_local(case.updated_at, zone),
        "expected_datetime": iso_local(case.due_at, zone),
        "address": f"{building.address} {building.name}".strip(),
        "address_id": building.id,
        "zipcode": "",
        "lat": lat,
        "long": lon,
        "media_url": case.media_url,
    }


def _status_notes(case: Case) -> str:
    """Name the case's current step in Chinese, with the callback's answer once archived."""
    with force_locale("zh_CN"):
        step = labels.label(labels.STATUSES, case.status)
        if case.status == CaseStatus.ARCHIVED and case.outcome:
            return f"{step}（回访：{labels.label(labels.OUTCOMES, case.outcome)}）"
    return step
