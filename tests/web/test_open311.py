"""Open311 GeoReport v2: every endpoint in JSON and XML, filing through the intake service, a real client."""

from __future__ import annotations

import itertools
import warnings

import pytest
from flask import Flask
from lxml import etree
from sqlalchemy import func, select

from tests.conftest import building_id, dispatch, latest_case, open_task, user_id
from tracker import create_app
from tracker.models import AuditEvent, Building, Case, CaseStatus, Department, User
from tracker.services import tokens

BASE = "/open311/v2"
FORMATS = ("json", "xml")
#: Gate of grid A's building, a point about 100 m from it, and one about 5 km away.
GATE_A = (39.9042, 116.4074)
NEAR_A = (39.9050, 116.4080)
FAR = (39.9500, 116.4074)
GATE_B = (39.9200, 116.4300)
RESIDENT = {"first_name": "Lei", "last_name": "Li", "phone": "13912345678", "email": "lilei@example.cn"}


@pytest.fixture
def keys(db) -> dict[str, str]:
    """Give both seed buildings a position and address; return API token secrets by username."""
    for code, (lat, lon), address in (("GA", GATE_A, "幸福路1号"), ("GB", GATE_B, "和平街9号")):
        building = db.get(Building, building_id(db, code))
        building.latitude, building.longitude, building.address = lat, lon, address
    secrets = {name: tokens.create(db, db.get(User, user_id(db, name)), f"{name} app")[1]
               for name in ("member_a", "member_b")}
    db.commit()
    return secrets


def form(keys: dict[str, str], **fields: str) -> dict[str, str]:
    """Return a valid filing for grid A as member_a, with ``fields`` changed (None drops a field)."""
    data = {"api_key": keys["member_a"], "service_code": "property_repair", "description": "3单元楼道灯不亮",
            "lat": str(NEAR_A[0]), "long": str(NEAR_A[1])}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def items(response, fmt: str) -> list[dict]:
    """Decode a list document (requests, services, errors) into dicts of strings or JSON values."""
    if fmt == "json":
        assert response.content_type == "application/json; charset=utf-8"
        return response.get_json()
    assert response.content_type == "text/xml; charset=utf-8"
    assert response.data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(response.data)
    return [{child.tag: child.text for child in item} for item in root]


def document(response, fmt: str) -> dict:
    """Decode a one-object document (discovery, service definition) into nested dicts and lists."""
    if fmt == "json":
        return response.get_json()
    return _element(etree.fromstring(response.data))


def _element(element) -> dict | list | str | None:
    """Turn an XML element into a dict, a list (for repeated children) or its text."""
    children = list(element)
    if not children:
        return element.text
    if len(children) > 1 and len({c.tag for c in children}) == 1 and children[0].tag + "s" == element.tag:
        return [_element(c) for c in children]
    if len(children) == 1 and children[0].tag + "s" == element.tag:
        return [_element(children[0])]
    return {c.tag: _element(c) for c in children}


def saved(db) -> tuple[int, int]:
    """Return how many cases and audit events are stored."""
    return (db.scalar(select(func.count()).select_from(Case)),
            db.scalar(select(func.count()).select_from(AuditEvent)))


def file(app: Flask, keys: dict[str, str], fmt: str = "json", **fields: str):
    """POST a filing and return the response."""
    return app.test_client().post(f"{BASE}/requests.{fmt}", data=form(keys, **fields))


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_names_the_specification_and_this_server(app, fmt):
    app.config["GRIDLOOP"]["app"]["public_base_url"] = "https://gridloop.example.gov.cn/"
    response = app.test_client().get(f"{BASE}/discovery.{fmt}", headers={"Host": "evil.example"})
    assert response.status_code == 200
    doc = document(response, fmt)
    endpoint = doc["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "https://gridloop.example.gov.cn/open311/v2"  # configured, not the Host header
    assert endpoint["formats"] == ["application/json", "text/xml"]
    assert doc["changeset"] and doc["key_service"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_services_are_the_configured_categories(app, fmt):
    response = app.test_client().get(f"{BASE}/services.{fmt}")
    assert response.status_code == 200
    services = {s["service_code"]: s for s in items(response, fmt)}
    assert set(services) == set(app.config["GRIDLOOP"]["categories"])
    repair = services["property_repair"]
    assert repair["service_name"] == "物业维修"
    assert repair["description"] == "物业维修 Property repair"
    assert repair["type"] == "realtime" and repair["group"]
    assert repair["metadata"] in (True, "true")
    assert "Property repair" in repair["keywords"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_offers_urgency_and_green_channel(app, fmt):
    response = app.test_client().get(f"{BASE}/services/property_repair.{fmt}")
    assert response.status_code == 200
    doc = document(response, fmt)
    assert doc["service_code"] == "property_repair"
    attributes = {a["code"]: a for a in doc["attributes"]}
    assert set(attributes) == {"urgency", "green_channel"}
    assert attributes["urgency"]["datatype"] == "singlevaluelist"
    assert attributes["urgency"]["required"] in (False, "false")
    assert [v["key"] for v in attributes["urgency"]["values"]] == ["normal", "urgent", "emergency"]
    assert [v["key"] for v in attributes["green_channel"]["values"]] == ["elderly", "disabled", "sick"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_service_definition_is_404_in_open311_format(app, fmt):
    response = app.test_client().get(f"{BASE}/services/no_such_thing.{fmt}")
    assert response.status_code == 404
    [error] = items(response, fmt)
    assert str(error["code"]) == "404" and "no_such_thing" in error["description"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_filing_by_position_opens_a_case_in_the_nearest_building(app, db, keys, fmt):
    response = file(app, keys, fmt)
    assert response.status_code == 201, response.data
    [answer] = items(response, fmt)
    case = latest_case(db)
    assert answer["service_request_id"] == case.number
    assert case.number in answer["service_notice"] and "工作日" in answer["service_notice"]
    assert answer["account_id"] is None
    assert (case.building_id, case.channel, case.category) == (building_id(db, "GA"), "open311", "property_repair")
    assert (case.latitude, case.longitude) == NEAR_A
    assert (case.resident_name, case.resident_phone, case.resident_email) == ("匿名居民", "", "")
    assert case.created_by_id == user_id(db, "member_a")
    # Recorded and not answered on the spot: the grid leader dispatches it next.
    assert case.status == CaseStatus.DISPATCHING and open_task(db, case.id).name == "dispatch"


def test_filing_by_address_string_keeps_contact_and_attributes(app, db, keys):
    response = file(app, keys, lat=None, long=None, address_string="北京市幸福路1号 3单元", **RESIDENT,
                    media_url="https://img.example.cn/p/1.jpg", **{"attribute[urgency]": "urgent",
                                                                   "attribute[green_channel]": "elderly"})
    assert response.status_code == 201, response.data
    case = latest_case(db)
    assert case.building_id == building_id(db, "GA")
    assert (case.resident_name, case.resident_phone, case.resident_email) == ("Lei Li", "+8613912345678",
                                                                              "lilei@example.cn")
    assert (case.urgency, case.green_channel, case.media_url) == ("urgent", "elderly", "https://img.example.cn/p/1.jpg")
    assert case.address_detail == "北京市幸福路1号 3单元"
    assert (case.latitude, case.longitude) == (None, None)


def test_filing_by_address_id_and_with_a_bearer_header(app, db, keys):
    data = form(keys, lat=None, long=None, api_key=None, address_id=str(building_id(db, "GA")))
    response = app.test_client().post(f"{BASE}/requests.json", data=data,
                                      headers={"Authorization": f"Bearer {keys['member_a']}"})
    assert response.status_code == 201, response.data
    assert latest_case(db).building_id == building_id(db, "GA")


def test_description_of_4000_characters_is_accepted(app, db, keys):
    assert file(app, keys, description="灯" * 4000).status_code == 201


BAD_FILINGS = {
    "unknown service": ({"service_code": "rocket_launch"}, 400, "service_code"),
    "description too long": ({"description": "x" * 4001}, 400, "description"),
    "no description": ({"description": " "}, 400, "description"),
    "no place": ({"lat": None, "long": None}, 400, "address_string"),
    "far away": ({"lat": str(FAR[0]), "long": str(FAR[1])}, 400, "500 m"),
    "only lat": ({"long": None}, 400, "lat and long"),
    "unknown address": ({"lat": None, "long": None, "address_string": "火星基地"}, 400, "address_string"),
    "unknown address_id": ({"lat": None, "long": None, "address_id": "99999"}, 400, "address_id"),
    "bad jurisdiction": ({"jurisdiction_id": "sf.gov"}, 400, "jurisdiction_id"),
    "bad phone": ({"phone": "12345"}, 400, "phone"),
    "bad email": ({"email": "nobody"}, 400, "email"),
    "bad media_url": ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    "bad urgency": ({"attribute[urgency]": "yesterday"}, 400, "attribute[urgency]"),
    "unknown attribute": ({"attribute[colour]": "red"}, 400, "attribute[colour]"),
    "missing api_key": ({"api_key": None}, 401, "api_key"),
    "unknown api_key": ({"api_key": "glt_not-a-real-token"}, 401, "api_key"),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", BAD_FILINGS)
def test_bad_filings_are_refused_with_the_field_named_and_save_nothing(app, db, keys, name, fmt):
    fields, status, mentioned = BAD_FILINGS[name]
    response = file(app, keys, fmt, **fields)
    assert response.status_code == status, response.data
    errors = items(response, fmt)
    assert errors and all(str(e["code"]) == str(status) for e in errors)
    assert any(mentioned in e["description"] for e in errors), errors
    assert saved(db) == (0, 0)


def test_several_problems_are_reported_together(app, db, keys):
    response = file(app, keys, description="", phone="1", media_url="ftp://x")
    fields = " ".join(e["description"] for e in response.get_json())
    assert response.status_code == 400
    assert all(name in fields for name in ("description", "phone", "media_url"))


def test_missing_key_says_how_to_authenticate(app, keys):
    response = file(app, keys, api_key=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_refused(app, db, keys):
    member = db.get(User, user_id(db, "member_a"))
    for token in tokens.of(db, member):
        tokens.revoke(db, member, token.id)
    db.commit()
    response = file(app, keys, "xml")
    assert response.status_code == 401
    [error] = items(response, "xml")
    assert error["code"] == "401" and "revoked" in error["description"]
    assert saved(db) == (0, 0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_token_of_another_grid_may_not_file_there(app, db, keys, fmt):
    response = file(app, keys, fmt, api_key=keys["member_b"])
    assert response.status_code == 403
    [error] = items(response, fmt)
    assert "member_b" in error["description"] and "GA" in error["description"]
    assert saved(db) == (0, 0)
    # The same token files in its own grid.
    assert file(app, keys, fmt, api_key=keys["member_b"], lat=str(GATE_B[0]), long=str(GATE_B[1])).status_code == 201


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_list_is_public_and_never_shows_who_asked(app, db, keys, fmt):
    number = items(file(app, keys, fmt, **RESIDENT, address_string="幸福路1号 3单元301"), fmt)[0]["service_request_id"]
    response = app.test_client().get(f"{BASE}/requests.{fmt}")
    assert response.status_code == 200
    [request] = items(response, fmt)
    assert request["service_request_id"] == number
    assert (request["status"], request["service_code"], request["service_name"]) == ("open", "property_repair",
                                                                                      "物业维修")
    assert request["description"] == "3单元楼道灯不亮"
    assert request["status_notes"] == "待派单"
    assert request["agency_responsible"] == "测试社区 A网格"
    assert request["address"] == "幸福路1号 1号楼院"
    assert str(request["address_id"]) == str(building_id(db, "GA"))
    assert request["requested_datetime"].endswith("+08:00")
    assert float(request["lat"]) == NEAR_A[0] and float(request["long"]) == NEAR_A[1]
    body = response.get_data(as_text=True)
    for private in ("Lei", "13912345678", "+8613912345678", "lilei", "3单元301"):
        assert private not in body
    detail = app.test_client().get(f"{BASE}/requests/{number}.{fmt}").get_data(as_text=True)
    for private in ("Lei", "13912345678", "lilei", "3单元301"):
        assert private not in detail


def test_request_without_its_own_position_shows_the_buildings(app, db, keys):
    file(app, keys, lat=None, long=None, address_id=str(building_id(db, "GA")))
    [request] = app.test_client().get(f"{BASE}/requests.json").get_json()
    assert (request["lat"], request["long"]) == GATE_A
    assert request["expected_datetime"] is None and request["media_url"] == ""


def test_requests_filters(app, db, keys):
    client = app.test_client()
    first = file(app, keys).get_json()[0]["service_request_id"]
    second = file(app, keys, service_code="legal").get_json()[0]["service_request_id"]

    def ids(url: str) -> list[str]:
        return [r["service_request_id"] for r in client.get(url).get_json()]

    assert ids(f"{BASE}/requests.json") == [second, first]  # newest first
    assert ids(f"{BASE}/requests.json?service_code=legal") == [second]
    assert ids(f"{BASE}/requests.json?service_code=legal,property_repair") == [second, first]
    assert ids(f"{BASE}/requests.json?service_request_id={first},nope") == [first]
    assert ids(f"{BASE}/requests.json?status=closed") == []
    assert ids(f"{BASE}/requests.json?status=open,closed&jurisdiction_id=gridloop.local") == [second, first]
    assert ids(f"{BASE}/requests.json?start_date=2020-01-01T00:00:00Z&end_date=2020-03-01T00:00:00Z") == []


@pytest.mark.parametrize("query, mentioned", [
    ("start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z", "90 days"),
    ("start_date=2020-01-01", "90 days"),
    ("start_date=yesterday", "start_date"),
    ("start_date=2025-02-01T00:00:00Z&end_date=2025-01-01T00:00:00Z", "start_date"),
    ("status=pending", "status"),
    ("service_code=rocket_launch", "service_code"),
    ("jurisdiction_id=elsewhere", "jurisdiction_id"),
])
@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_request_filters_are_400(app, query, mentioned, fmt):
    response = app.test_client().get(f"{BASE}/requests.{fmt}?{query}")
    assert response.status_code == 400
    assert any(mentioned in e["description"] for e in items(response, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_request_and_its_token(app, db, keys, fmt):
    number = items(file(app, keys, fmt), fmt)[0]["service_request_id"]
    client = app.test_client()
    [request] = items(client.get(f"{BASE}/requests/{number}.{fmt}"), fmt)
    assert (request["service_request_id"], request["status"]) == (number, "open")
    [token] = items(client.get(f"{BASE}/tokens/{number}.{fmt}"), fmt)
    assert token == {"service_request_id": number, "token": number}
    for url in (f"{BASE}/requests/20990101-000001.{fmt}", f"{BASE}/tokens/nope.{fmt}"):
        response = client.get(url)
        assert response.status_code == 404
        assert str(items(response, fmt)[0]["code"]) == "404"


@pytest.mark.parametrize("url", [f"{BASE}/services.csv", f"{BASE}/requests.html", f"{BASE}/nothing.xml",
                                 f"{BASE}/requests/1/2.json"])
def test_unknown_formats_and_paths_are_404_in_open311_format(app, url):
    response = app.test_client().get(url)
    assert response.status_code == 404
    [error] = items(response, "xml" if url.endswith(".xml") else "json")
    assert str(error["code"]) == "404"


def test_a_referred_case_names_the_department_and_its_limit(app, db, keys, login):
    number = file(app, keys).get_json()[0]["service_request_id"]
    case = latest_case(db)
    department_id = db.scalar(select(Department.id).where(Department.code == "property"))
    login("leader_a").submit(f"/tasks/{open_task(db, case.id).id}", {
        "dispatch_to": "department", "handler_id": "0", "department_id": str(department_id),
        "deadline_class": "utilities"})
    [request] = app.test_client().get(f"{BASE}/requests/{number}.json").get_json()
    assert request["agency_responsible"] == "物业维修中心"
    assert request["status"] == "open" and request["status_notes"] == "办理中"
    assert request["expected_datetime"].endswith("+08:00")


def test_an_archived_case_is_closed(app, db, keys, login):
    number = file(app, keys).get_json()[0]["service_request_id"]
    case = latest_case(db)
    member, leader = login("member_a"), login("leader_a")
    assert dispatch(leader, db, case.id).status_code == 302
    for who, data in ((member, {"handle_action": "done", "text": "已更换灯泡"}),
                      (member, {"satisfaction": "satisfied"}),
                      (leader, {"confirm": "y", "comment": "同意归档"})):
        assert who.submit(f"/tasks/{open_task(db, case.id).id}", data).status_code == 302
    assert latest_case(db).status == CaseStatus.ARCHIVED
    client = app.test_client()
    for fmt in FORMATS:
        [request] = items(client.get(f"{BASE}/requests/{number}.{fmt}"), fmt)
        assert request["status"] == "closed"
        assert request["status_notes"] == "已归档（回访：满意）"
    assert [r["service_request_id"] for r in client.get(f"{BASE}/requests.json?status=closed").get_json()] == [number]
    assert client.get(f"{BASE}/requests.json?status=open").get_json() == []


def test_rate_limit_answers_in_open311_format(database_url):
    app = create_app({"app": {"database_url": database_url},
                      "api": {"ratelimit_enabled": True, "rate_limit": "2 per minute"}})
    app.config.update(TESTING=True)
    try:
        client = app.test_client()
        statuses = [client.get(f"{BASE}/services.xml").status_code for _ in range(3)]
        response = client.get(f"{BASE}/services.xml")
        assert statuses == [200, 200, 429] and response.status_code == 429
        [error] = items(response, "xml")
        assert error["code"] == "429" and "Retry-After" in error["description"]
    finally:
        app.extensions["gridloop.db"].dispose()


# -- a third-party Open311 client over real HTTP ---------------------------------------------------

def _three():
    """Import the `three` Open311 client (0.8.0, from the Python 2 days).

    Its one Python 3 break is ``from itertools import ifilter`` (Python 3's ``filter`` is the same
    thing), so the name is lent for the import. Its XML reader relies on Python 2 dict keys; JSON works.
    """
    with warnings.catch_warnings():
        # relaxml, which three imports, has a "\{" regex literal: a warning only when compiled afresh.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        itertools.ifilter = filter
        try:
            import three
        finally:
            del itertools.ifilter
    return three


def test_the_three_client_files_a_request_and_reads_it_back(app, server, db, keys):
    app.config["GRIDLOOP"]["app"]["public_base_url"] = server
    three = _three()
    client = three.Three(f"{server}/open311/v2", format="json", api_key=keys["member_a"],
                         jurisdiction="gridloop.local")
    try:
        assert client.discovery()["endpoints"][0]["url"] == f"{server}/open311/v2"
        services = client.services()
        assert "property_repair" in [s["service_code"] for s in services]
        definition = client.services("property_repair")
        assert [a["code"] for a in definition["attributes"]] == ["urgency", "green_channel"]

        created = client.post("property_repair", lat=str(NEAR_A[0]), long=str(NEAR_A[1]), name="Lei Li",
                              phone="13912345678", description="楼道灯不亮，已经三天了",
                              **{"attribute[urgency]": "urgent"})
        assert client.post_response.status_code == 201, created
        number = created[0]["service_request_id"]
        case = latest_case(db)
        assert (case.number, case.channel, case.urgency, case.resident_name) == (number, "open311", "urgent", "Lei Li")

        [request] = client.request(number)
        assert (request["service_request_id"], request["status"], request["service_code"]) == (
            number, "open", "property_repair")
        assert request["description"] == "楼道灯不亮，已经三天了"
        assert "Lei" not in str(request) and "13912345678" not in str(request)
        assert client.token(number) == [{"service_request_id": number, "token": number}]
        assert [r["service_request_id"] for r in client.requests("property_repair", status="open")] == [number]

        refused = client.post("property_repair", description="没有位置")
        assert client.post_response.status_code == 400 and "address_string" in refused[0]["description"]
    finally:
        client.session.close()


def test_address_string_prefers_the_most_specific_building_and_refuses_ties(app, db, keys):
    grid_a = db.get(Building, building_id(db, "GA")).grid_id
    db.add_all([Building(grid_id=grid_a, name="11号楼院"), Building(grid_id=grid_a, name="7号楼院"),
                Building(grid_id=grid_a, name="7号楼院")])
    db.commit()
    eleven = db.scalar(select(Building.id).where(Building.name == "11号楼院"))
    assert file(app, keys, lat=None, long=None, address_string="11号楼院 东门").status_code == 201
    assert latest_case(db).building_id == eleven
    assert file(app, keys, lat=None, long=None, address_string="1号楼院").status_code == 201
    assert latest_case(db).building_id == building_id(db, "GA")
    response = file(app, keys, lat=None, long=None, address_string="7号楼院")
    assert response.status_code == 400 and "address_id" in response.get_json()[0]["description"]


def test_xml_drops_characters_xml_cannot_carry(app, keys):
    number = file(app, keys, description="灯\x01坏了").get_json()[0]["service_request_id"]
    [request] = items(app.test_client().get(f"{BASE}/requests/{number}.xml"), "xml")
    assert request["description"] == "灯坏了"


def test_cases_recorded_elsewhere_are_not_public(app, db, keys, login):
    from tests.conftest import intake
    login("member_a").submit("/cases/new", intake(db, description="独居老人申请低保，腰椎不好"))
    counter = latest_case(db)
    assert counter.channel == "phone"
    client = app.test_client()
    public = client.get("/open311/v2/requests.json").get_json()
    assert counter.number not in [r["service_request_id"] for r in public]
    assert client.get(f"/open311/v2/requests/{counter.number}.json").status_code == 404
    # With a key (in the header: never in the URL): what its user may read, and no more.
    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys.get(name, name)}"}
    mine = client.get("/open311/v2/requests.json", headers=bearer("member_a")).get_json()
    assert counter.number in [r["service_request_id"] for r in mine]
    assert client.get(f"/open311/v2/requests/{counter.number}.json", headers=bearer("member_b")).status_code == 404
    assert client.get("/open311/v2/requests.json", headers=bearer("glt_wrong")).status_code == 401
