"""The OpenAPI document of /api/v1: valid OpenAPI 3.1, matching the routes, and matching what the API answers."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlalchemy import select
from werkzeug.test import TestResponse

from tests.conftest import building_id, configured_app, user_id
from tracker import labels, openapi
from tracker.config import load_config
from tracker.db import get_session
from tracker.models import ApiToken, Department, TokenScope, User, utcnow
from tracker.services import tokens

PREFIX = "/api/v1"
DOCUMENT_URI = "urn:gridloop:openapi"


def _secret(app: Flask, username: str) -> str:
    """Create a token for a seed user; return its secret."""
    with app.app_context():
        session = get_session()
        _row, secret = tokens.create(session, session.scalar(select(User).where(User.username == username)), "t")
        session.commit()
    return secret


@pytest.fixture
def document(app) -> dict:
    """The document as the app serves it."""
    response = app.test_client().get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


# -- the document itself ---------------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1(document):
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": PREFIX}]
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


def _routes(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every rule the app registered under /api/v1."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
            found |= {(method.lower(), path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_route_is_documented_and_every_documented_path_is_a_route(app, document):
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert _routes(app) == documented


def test_path_parameters_match_the_route_converters(app, document):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix(PREFIX))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            params = {p["name"]: p["schema"] for p in document["paths"][path][method.lower()].get("parameters", [])
                      if p["in"] == "path"}
            assert set(params) == set(rule.arguments), (path, method)
            for name, converter in rule._converters.items():
                expected = "integer" if type(converter).__name__ == "IntegerConverter" else "string"
                assert params[name]["type"] == expected, (path, name)


# -- real answers against the documented schemas ---------------------------------------------------

class Checked:
    """An API client that validates every answer against the document: status, media type, schema."""

    def __init__(self, app: Flask, document: dict, secret: str | None):
        """Call ``app`` with ``secret`` as bearer token and check answers against ``document``."""
        self.client = app.test_client()
        self.document = document
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self.registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(
            document, default_specification=DRAFT202012))
        self.seen: set[tuple[str, str, int]] = set()

    def get(self, template: str, expect: int = 200, **params: Any) -> Any:
        """GET a documented path (``template`` with ``params`` filled in; the rest go in the query)."""
        return self.call("get", template, expect, None, params)

    def post(self, template: str, body: Any, expect: int = 200, **params: Any) -> Any:
        """POST a JSON body to a documented path."""
        return self.call("post", template, expect, body, params)

    def call(self, method: str, template: str, expect: int, body: Any, params: dict) -> Any:
        """Make the call and check the answer; return its JSON."""
        path = template.format(**params)
        query = {k: v for k, v in params.items() if "{" + k + "}" not in template}
        response = self.client.open(PREFIX + path, method=method.upper(), json=body, query_string=query,
                                    headers=self.headers)
        assert response.status_code == expect, (method, path, response.get_data(as_text=True))
        self.check(method, template, response)
        return response.get_json(force=True)

    def upload(self, template: str, fields: dict, expect: int = 201, **params: Any) -> Any:
        """POST a multipart form (files as (stream, name) pairs) to a documented path."""
        response = self.client.post(PREFIX + template.format(**params), data=fields, headers=self.headers,
                                    content_type="multipart/form-data")
        assert response.status_code == expect, (template, response.get_data(as_text=True))
        self.check("post", template, response)
        return response.get_json(force=True)

    def fetch(self, template: str, expect: int = 200, **params: Any) -> bytes:
        """GET a documented path answering a file: its status and media type are checked, the body returned."""
        response = self.client.get(PREFIX + template.format(**params), headers=self.headers)
        assert response.status_code == expect, (template, response.get_data(as_text=True))
        content = self.document["paths"][template]["get"]["responses"][str(response.status_code)]["content"]
        assert response.mimetype in content, (template, response.mimetype)
        if response.mimetype.endswith("json"):
            self.check("get", template, response)
        self.seen.add(("get", template, response.status_code))
        return response.get_data()

    def check(self, method: str, template: str, response: TestResponse) -> None:
        """Validate one answer against what the document says of this operation and status."""
        responses = self.document["paths"][template][method]["responses"]
        status = str(response.status_code)
        assert status in responses, f"{method.upper()} {template} answered {status}, which is not documented"
        content = responses[status]["content"]
        assert response.mimetype in content, (template, status, response.mimetype)
        pointer = "/".join(["#", "paths", _escape(template), method, "responses", status, "content",
                            _escape(response.mimetype), "schema"])
        validator = Draft202012Validator({"$ref": DOCUMENT_URI + pointer}, registry=self.registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(
            response.get_json(force=True))]
        assert not errors, (method, template, status, errors)
        self.seen.add((method, template, response.status_code))


def _escape(segment: str) -> str:
    """Escape a JSON pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app, its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def test_answers_of_a_scripted_run_match_the_documented_schemas(app, document, db):
    member = Checked(app, document, _secret(app, "member_a"))
    leader = Checked(app, document, _secret(app, "leader_a"))
    dept = Checked(app, document, _secret(app, "dept"))
    auditor = Checked(app, document, _secret(app, "auditor"))
    anonymous = Checked(app, document, None)
    grid_a = member.get("/me")["roles"][0]["grid_id"]
    body = {"resident_name": "张阿姨", "resident_phone": "010-12345678", "building_id": building_id(db),
            "category": "property_repair", "description": "楼道灯不亮", "channel": "wechat", "urgency": "urgent",
            "green_channel": "elderly", "address_detail": "3单元"}

    member.get("/buildings")
    anonymous.get("/me", 401)
    anonymous.get("/openapi.json")
    member.post("/cases", {**body, "resident_phone": "12"}, 422)
    member.post("/cases", {**body, "extra": 1}, 422)
    member.post("/cases", "not an object", 400)
    auditor.post("/cases", body, 403)
    case = member.post("/cases", body, 201)
    spot = member.post("/cases", {**body, "answered_on_spot": True, "reply": "已答复"}, 201)
    case_id = case["id"]
    member.get("/cases/{case_id}", case_id=case_id)
    member.get("/cases/{case_id}", 404, case_id=999999)
    member.get("/cases", limit=1)
    member.get("/cases", 400, cursor="x", status="lost")
    leader.get("/tasks", scope="pool")
    leader.get("/tasks", 400, scope="all")
    task = leader.get("/cases/{case_id}", case_id=case_id)["tasks"][0]
    leader.get("/tasks/{task_id}", task_id=task["id"])
    leader.get("/tasks/{task_id}", 404, task_id="nope")
    leader.post("/tasks/{task_id}/claim", {"version": case["version"]}, task_id=task["id"])
    leader.post("/tasks/{task_id}/claim", {"version": case["version"]}, 409, task_id=task["id"])
    version = leader.post("/tasks/{task_id}/release", {"version": case["version"] + 1}, task_id=task["id"])
    auditor.post("/tasks/{task_id}/claim", {"version": case["version"] + 2}, 403, task_id=task["id"])
    dispatch = {"dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}
    leader.post("/tasks/{task_id}/complete", {"version": 1, "data": {"satisfaction": "satisfied"}}, 422,
                task_id=task["id"])
    case = leader.post("/tasks/{task_id}/complete", {"version": case["version"] + 2, "data": dispatch},
                       task_id=task["id"])
    assert version
    task = member.get("/tasks")["items"][0]
    member.post("/tasks/{task_id}/sign", {"version": case["version"]}, task_id=task["id"])
    member.post("/tasks/{task_id}/reassign", {"version": case["version"] + 1, "assignee_id": 1, "reason": "x"},
                403, task_id=task["id"])
    reassigned = leader.post("/tasks/{task_id}/reassign", {
        "version": case["version"] + 1, "assignee_id": user_id(db, "member_a2"), "reason": "甲休假"},
        task_id=task["id"])
    leader.get("/grids/{grid_id}/workload", grid_id=grid_a)
    leader.get("/grids/{grid_id}/workload", 404, grid_id=999)
    member.get("/grids/{grid_id}/workload", 403, grid_id=grid_a)
    handover = {"member_id": user_id(db, "member_a2"), "to_ids": [user_id(db, "member_a")], "mode": "least_loaded",
                "reason": "乙调岗"}
    plan = leader.post("/grids/{grid_id}/handover", handover, grid_id=grid_a)
    leader.post("/grids/{grid_id}/handover", {**handover, "fingerprint": "f" * 16}, 409, grid_id=grid_a)
    leader.post("/grids/{grid_id}/handover", {**handover, "fingerprint": plan["fingerprint"]}, grid_id=grid_a)
    case = member.get("/cases/{case_id}", case_id=case_id)
    assert reassigned["assignee"]["name"] == "网格员乙" and case["handler"]["name"] == "网格员甲"
    member.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {
        "handle_action": "extend", "text": "等配件", "extension_days": 2}}, task_id=task["id"])
    case = leader.get("/cases/{case_id}", case_id=case_id)
    case = leader.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {"decision": "refuse"}},
                       task_id=case["tasks"][0]["id"])
    department = db.scalar(select(Department.id))
    assert department and case["status"] == "handling"
    case = member.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {
        "handle_action": "done", "text": "已修好"}}, task_id=case["tasks"][0]["id"])
    case = member.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {
        "satisfaction": "unreachable"}}, task_id=case["tasks"][0]["id"])
    for _ in range(3):  # an unreachable resident is called again, then the leader decides
        if case["tasks"][0]["form_key"] != "callback":
            break
        case = member.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {
            "satisfaction": "basic"}}, task_id=case["tasks"][0]["id"])
    leader.post("/tasks/{task_id}/complete", {"version": case["version"], "data": {"confirm": True}},
                task_id=case["tasks"][0]["id"])
    member.get("/cases/{case_id}/history", case_id=case_id)
    auditor.get("/cases/{case_id}/verify", case_id=case_id)
    auditor.get("/cases/{case_id}/history", case_id=spot["id"])
    dept.get("/tasks", scope="pool")
    dept.get("/cases/{case_id}", 404, case_id=case_id)
    # A referral recalled (撤回) by the leader before the department finishes: back to dispatch.
    referral = member.post("/cases", body, 201)
    task = leader.get("/cases/{case_id}", case_id=referral["id"])["tasks"][0]
    referral = leader.post("/tasks/{task_id}/complete", {"version": referral["version"], "data": {
        "dispatch_to": "department", "department_id": department, "deadline_class": "general",
        "dispatch_note": "请物业中心处理"}}, task_id=task["id"])
    handle = referral["tasks"][0]["id"]
    leader.post("/tasks/{task_id}/recall", {"version": referral["version"], "reason": ""}, 422, task_id=handle)
    dept.post("/tasks/{task_id}/recall", {"version": referral["version"], "reason": "x"}, 403, task_id=handle)
    recalled = leader.post("/tasks/{task_id}/recall", {"version": referral["version"], "reason": "应由城管处理"},
                           task_id=handle)
    assert recalled["status"] == "dispatching"
    # A duplicate (重复件) linked to its main case by the leader, and unlinked again.
    duplicate = member.post("/cases", body, 201)
    member.post("/cases/{case_id}/link", {"version": duplicate["version"], "main_number": referral["number"]}, 403,
                case_id=duplicate["id"])
    linked = leader.post("/cases/{case_id}/link", {"version": duplicate["version"], "main_number": referral["number"]},
                         case_id=duplicate["id"])
    assert linked["duplicate_of"]["number"] == referral["number"]
    unlinked = leader.post("/cases/{case_id}/unlink", {"version": linked["version"]}, case_id=duplicate["id"])
    assert unlinked["duplicate_of"] is None
    # The numbers, and photos: added to a case (a bad file refuses all), listed and fetched.
    leader.get("/stats", period="month", by="handler")
    leader.get("/stats", 400, period="decade")
    leader.get("/stats", 400, period="custom", **{"from": "2000-01-01", "to": "3999-01-01"})  # past 732 days
    member.get("/stats", 403)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(jpeg, format="JPEG")
    member.upload("/cases/{case_id}/attachments", {"kind": "intake", "photos": [(io.BytesIO(b"<html>"), "a.jpg")]},
                  422, case_id=duplicate["id"])
    added = member.upload("/cases/{case_id}/attachments", {"kind": "intake", "photos": [
        (io.BytesIO(jpeg.getvalue()), "light.jpg")]}, case_id=duplicate["id"])["items"]
    assert [a["id"] for a in member.get("/cases/{case_id}/attachments", case_id=duplicate["id"])["items"]] \
        == [added[0]["id"]]
    assert member.fetch("/attachments/{attachment_id}/{variant}", attachment_id=added[0]["id"],
                        variant="original") == jpeg.getvalue()
    dept.fetch("/attachments/{attachment_id}/{variant}", 404, attachment_id=added[0]["id"], variant="thumb")
    member.get("/cases/{case_id}/possible-duplicates", case_id=duplicate["id"])

    seen = member.seen | leader.seen | dept.seen | auditor.seen | anonymous.seen
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert {(method, path) for method, path, status in seen if status < 300} == operations


# -- property-based: schemathesis ------------------------------------------------------------------

#: The document as the app builds it from config.toml (schemathesis needs it before any app exists; a
#: test checks the app serves the same). schemathesis.pytest.from_fixture would load it from each test's
#: app, but its lazy loader sets Node._nodeid, which pytest 9.2 no longer has.
DOCUMENT = openapi.document(list(load_config()["categories"]), list(labels.CHANNELS))
#: A grid A leader's token, stored in each test's fresh database; schemathesis sends it as the document's
#: bearer scheme, so it also knows which calls it sent without it (those must get 401).
LEADER_SECRET = tokens.PREFIX + "schemathesis-leader-of-grid-a"
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(
    {"auth": {"openapi": {"bearer": {"bearer": LEADER_SECRET}}}}))


def test_schemathesis_runs_on_the_document_the_app_serves(document):
    assert document == DOCUMENT


@dataclass
class Live:
    """Real rows for schemathesis to aim at: a grid and cases with open tasks."""

    app: Flask
    grid_id: int
    case_ids: list[int]

    def aim(self, case: Any) -> None:
        """Point many ids (and versions) of valid calls at real rows, so they get past the 404 to the services."""
        if case.meta is None or case.meta.generation.mode is not schemathesis.GenerationMode.POSITIVE:
            return  # a call built to be invalid stays invalid
        params = case.path_parameters or {}
        if isinstance(params.get("case_id"), int) and params["case_id"] % 2 == 0:
            params["case_id"] = self.case_ids[params["case_id"] % len(self.case_ids)]
        if isinstance(params.get("grid_id"), int) and params["grid_id"] % 2 == 0:
            params["grid_id"] = self.grid_id
        if isinstance(params.get("task_id"), str) and len(params["task_id"]) % 2 == 1:
            detail = self.app.test_client().get(
                f"{PREFIX}/cases/{self.case_ids[len(params['task_id']) % len(self.case_ids)]}",
                headers={"Authorization": f"Bearer {LEADER_SECRET}"}).get_json()
            if detail["tasks"]:
                params["task_id"] = detail["tasks"][0]["id"]
                if isinstance(case.body, dict) and isinstance(case.body.get("version"), int):
                    case.body["version"] = detail["version"]


@pytest.fixture
def live(app, db) -> Live:
    """The leader's token and three cases in grid A: two waiting for dispatch, one in handling."""
    with app.app_context():
        session = get_session()
        leader = session.scalar(select(User).where(User.username == "leader_a"))
        session.add(ApiToken(user_id=leader.id, name="schemathesis", token_hash=tokens.digest(LEADER_SECRET),
                             prefix=LEADER_SECRET[:10], scope=TokenScope.FULL, created_at=utcnow()))
        session.commit()
    member = {"Authorization": f"Bearer {_secret(app, 'member_a')}"}
    leader = {"Authorization": f"Bearer {LEADER_SECRET}"}
    body = {"resident_name": "王先生", "resident_phone": "13812345678", "building_id": building_id(db),
            "category": "property_repair", "description": "水管漏水", "channel": "phone"}
    client = app.test_client()
    cases = [client.post(f"{PREFIX}/cases", json=body, headers=member).get_json() for _ in range(3)]
    dispatch = {"dispatch_to": "member", "handler_id": user_id(db, "member_a"), "deadline_class": "general"}
    response = client.post(f"{PREFIX}/tasks/{cases[2]['tasks'][0]['id']}/complete", headers=leader,
                           json={"version": cases[2]["version"], "data": dispatch})
    assert response.status_code == 200
    return Live(app, cases[0]["grid"]["id"], [c["id"] for c in cases])


@schema.parametrize()
@hypothesis.settings(max_examples=int(os.environ.get("GRIDLOOP_FUZZ_EXAMPLES", "15")), deadline=None, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_the_api_keeps_to_its_document_whatever_it_is_sent(case, live):
    live.aim(case)
    case.call_and_validate(app=live.app, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
        response_headers_conformance, negative_data_rejection, unsupported_method])
