"""GET /api/v1/cases/{id}/possible-duplicates tells the program that recorded a case which open or recent cases it
may repeat (重复件), as the desk's intake warning does."""

from __future__ import annotations

import datetime as dt
import uuid

import time_machine
from jsonschema import Draft202012Validator

from tests.conftest import building_id
from tests.web.test_api import make_token, new_case

PHONE = "13812345678"
FIELDS = {"id", "number", "status", "created_at"}


def _post(client, secret: str, body: dict, key: str | None = None):
    headers = {"Authorization": f"Bearer {secret}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/cases", json=body, headers=headers)


def _possible(client, secret: str, case_id: int) -> dict:
    response = client.get(f"/api/v1/cases/{case_id}/possible-duplicates", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    return response.get_json()


def _record(client, secret: str, body: dict, key: str | None = None) -> dict:
    """Record a case; return the answer with the cases it may repeat as ``possible_duplicates``."""
    response = _post(client, secret, body, key)
    assert response.status_code == 201, response.get_data(as_text=True)[:800]
    answer = response.get_json()
    assert "possible_duplicates" not in answer  # asked for on its own: recording stays lean
    return {**answer, "possible_duplicates": _possible(client, secret, answer["id"])["items"]}


def _listed(answer: dict) -> list[str]:
    return [case["number"] for case in answer["possible_duplicates"]]


def _conforms(app, name: str, instance: dict) -> None:
    """Validate an answer against a component schema of the document the app serves."""
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(instance)


def test_the_answer_lists_a_same_phone_case_but_not_one_of_a_grid_the_caller_cannot_read(app, db):
    client = app.test_client()
    member_a, member_b = make_token(app, "member_a")[1], make_token(app, "member_b")[1]
    first = _record(client, member_a, new_case(db))
    assert first["possible_duplicates"] == []  # nothing before it
    # The same resident, in another grid: member_a may not read that case.
    elsewhere = _record(client, member_b, new_case(db, building_id=building_id(db, "GB"),
                                                     category="city_management", description="垃圾没人清运"))
    assert client.get(f"/api/v1/cases/{elsewhere['id']}",
                      headers={"Authorization": f"Bearer {member_a}"}).status_code == 404
    # Another resident, another matter: no duplicate of anything.
    other = _record(client, member_a, new_case(db, resident_phone="13700001111", category="city_management",
                                               description="垃圾桶满了"))
    assert other["possible_duplicates"] == []

    again = _record(client, member_a, new_case(db, description="孩子入学要开居住证明", category="certificates"))
    assert _listed(again) == [first["number"]]  # the same phone; not itself, not the other grid's case
    listed = again["possible_duplicates"][0]
    assert set(listed) == FIELDS  # nothing more of another resident (no name, phone, address, text)
    assert listed == {"id": first["id"], "number": first["number"], "status": first["status"],
                      "created_at": first["created_at"]}
    _conforms(app, "PossibleDuplicates", _possible(client, member_a, again["id"]))
    # The grid B member recording for the same resident is told of the case in grid B, not the ones in grid A.
    in_b = _record(client, member_b, new_case(db, building_id=building_id(db, "GB"), description="路灯坏了"))
    assert _listed(in_b) == [elsewhere["number"]]


def test_the_same_building_and_category_with_alike_text_matches_within_the_window(app, db):
    start = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
    client = app.test_client()
    with time_machine.travel(start, tick=False):
        secret = make_token(app, "member_a")[1]
        first = _record(client, secret, new_case(db, description="3单元楼道的灯坏了，晚上不亮"))
        neighbour = _record(client, secret, new_case(db, resident_phone="13700001111", description="楼道灯不亮"))
        assert _listed(neighbour) == [first["number"]]  # another phone, same building and category, alike
        unlike = _record(client, secret, new_case(db, resident_phone="13700002222", description="水管漏水"))
        assert unlike["possible_duplicates"] == []
    with time_machine.travel(start + dt.timedelta(days=31), tick=False):  # [duplicates] window_days = 30
        late = _record(client, secret, new_case(db, resident_phone="13700003333", description="楼道灯不亮"))
        assert late["possible_duplicates"] == []  # recorded too long ago to count as recent
        same_phone = _record(client, secret, new_case(db, description="楼道灯还是不亮"))
        assert first["number"] in _listed(same_phone)  # the same phone: still open, so still listed


def test_asking_again_later_lists_the_same_cases(app, db):
    client, secret = app.test_client(), make_token(app, "member_a")[1]
    earlier = _record(client, secret, new_case(db))
    key = str(uuid.uuid4())
    first = _post(client, secret, new_case(db, description="楼道灯又不亮了"), key)
    assert first.status_code == 201
    case_id = first.get_json()["id"]
    assert [c["number"] for c in _possible(client, secret, case_id)["items"]] == [earlier["number"]]
    later = _record(client, secret, new_case(db, description="楼道灯一直不亮"))
    assert set(_listed(later)) == {first.get_json()["number"], earlier["number"]}
    again = _post(client, secret, new_case(db, description="楼道灯又不亮了"), key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == case_id
    # The case recorded after it is not listed: the match is taken as at the case's recording.
    assert [c["number"] for c in _possible(client, secret, case_id)["items"]] == [earlier["number"]]
    # Another grid's member may not ask about this case at all.
    other = make_token(app, "member_b")[1]
    assert client.get(f"/api/v1/cases/{case_id}/possible-duplicates",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 404


def test_the_document_describes_the_endpoint(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    post = document["paths"]["/cases"]["post"]["responses"]
    for status in ("200", "201"):
        assert post[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CaseDetail"}
    path = document["paths"]["/cases/{case_id}/possible-duplicates"]["get"]["responses"]["200"]
    assert path["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PossibleDuplicates"}
    item = document["components"]["schemas"]["PossibleDuplicates"]["properties"]["items"]["items"]
    assert set(item["properties"]) == FIELDS and item["additionalProperties"] is False
