"""Commands: every input rule once, the same message whichever door the input came through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import building_id, intake, latest_case
from tests.web.test_api import Api, make_token, new_case
from tracker import openapi
from tracker.forms import task_form
from tracker.models import Case
from tracker.services import commands
from tracker.services.cases import TASKS
from tracker.services.commands import InvalidCommand, build

ROOT = Path(__file__).resolve().parents[2]
#: The Chinese message for a phone number that is not one (the catalog's translation of the one rule).
PHONE_ZH = "电话号码无效"


def _cases(db) -> int:
    """Return how many cases are stored."""
    return db.scalar(select(func.count()).select_from(Case))


def test_a_bad_phone_gets_the_same_message_at_every_door(app, db, login):
    page = login("member_a").submit("/cases/new", intake(db, resident_phone="12345")).get_data(as_text=True)
    program = Api(app.test_client(), make_token(app, "member_a")[1])
    api = program.post("/cases", new_case(db, resident_phone="12345")).get_json()
    secret = make_token(app, "member_a", "app")[1]
    open311 = app.test_client().post("/open311/v2/requests.json", data={
        "api_key": secret, "service_code": "property_repair", "description": "楼道灯不亮", "phone": "12345",
        "address_id": str(building_id(db))}).get_json()
    [api_error] = [e for e in api["errors"] if e["field"] == "resident_phone"]
    [open311_error] = [e["description"] for e in open311 if e["description"].startswith("phone:")]
    assert PHONE_ZH in api_error["message"] and api_error["message"] in page
    assert open311_error == f"phone: {api_error['message']}"
    assert _cases(db) == 0


def test_the_api_names_every_wrong_field_at_once_in_the_requests_language(app, db):
    program = Api(app.test_client(), make_token(app, "member_a")[1])
    body = new_case(db, resident_phone="12345", description="", urgency="now", colour="red")
    chinese = program.post("/cases", body).get_json()
    assert {e["field"] for e in chinese["errors"]} == {"resident_phone", "description", "urgency", "colour"}
    english = program.client.post("/api/v1/cases", json=body, headers={
        "Authorization": f"Bearer {program.secret}", "Accept-Language": "en-US,en;q=0.9"}).get_json()
    messages = {e["field"]: e["message"] for e in english["errors"]}
    assert messages["resident_phone"].startswith("Not a valid phone number")
    assert messages["description"] == "Write what the resident asks (up to 4,000 characters)."
    assert messages["colour"].startswith("Unknown field")
    assert _cases(db) == 0


def test_json_types_are_json_s_while_a_form_s_text_is_converted():
    data = {"handle_action": "extend", "text": "等配件", "extension_days": "3"}
    assert build(commands.Handle, data).extension_days == 3
    with pytest.raises(InvalidCommand) as refused:
        build(commands.Handle, data, from_json=True)
    assert [e.field for e in refused.value.errors] == ["extension_days"]


@pytest.mark.parametrize(("command", "data", "field", "message"), [
    (commands.RecordReply, {"disposition": "on_spot", "reply": "  "}, "reply", "Write the reply given to the resident."),
    (commands.Dispatch, {"dispatch_to": "member", "deadline_class": "general"}, "handler_id",
     "Choose the grid member who will handle it."),
    (commands.Dispatch, {"dispatch_to": "department", "deadline_class": "general"}, "department_id",
     "Choose the department to refer it to."),
    (commands.ReviewExtension, {}, "decision", "This field is required."),
    (commands.RecordCase, {"resident_name": "张", "resident_phone": "", "building_id": 1, "category": "other",
                           "description": "x", "channel": "visit"}, "resident_phone",
     "Not a valid phone number: enter an 11-digit mobile number or a landline with area code, "
     "e.g. 13812345678 or 010-12345678."),
    (commands.RecordCase, {"resident_name": "张", "resident_phone": "", "building_id": 1, "category": "other",
                           "description": "x", "channel": "open311", "media_url": "https:///x"}, "media_url",
     "Give a web address starting with http:// or https://."),
    (commands.Handle, {"handle_action": "extend", "text": "x"}, "extension_days",
     "Say how many working days the extension is for (1-30)."),
    (commands.Handle, {"handle_action": "extend", "text": "x", "extension_days": 31}, "extension_days",
     "An extension is 1 to 30 working days."),
    (commands.ReviewArchive, {"confirm": False}, "confirm", "Tick the box to confirm the review."),
    (commands.Supervise, {"note": "意见\x00"}, "note", "Remove the NUL character (\\x00) from this field."),
    (commands.AddCover, {"member_id": 1, "stand_in_id": 2, "starts_on": "2026-12-05", "ends_on": "2026-12-01"},
     "ends_on", "The cover ends before it starts; check the dates."),
    (commands.RecordVisit, {"version": 1, "note": "一切正常", "raise_case": True}, "description",
     "Describe the request the case is for."),
])
def test_each_rule_lives_in_its_command(command, data, field, message):
    with pytest.raises(InvalidCommand) as refused:
        build(command, data)
    assert [(e.field, e.template) for e in refused.value.errors] == [(field, message)]


def test_a_phone_is_stored_in_one_normal_form_and_only_a_visit_or_open311_may_leave_it_out():
    base = {"resident_name": "张阿姨", "building_id": 1, "category": "other", "description": "x"}
    assert build(commands.RecordCase, {**base, "channel": "phone", "resident_phone": "139 1234 5678"}
                 ).resident_phone == "+8613912345678"
    assert build(commands.RecordCase, {**base, "channel": "open311", "resident_phone": ""}).resident_phone == ""
    visited = {**base, "channel": "visit", "resident_phone": ""}
    assert build(commands.RecordCase, visited, context={"household_visit": True}).resident_phone == ""
    for data in ({**base, "channel": "phone", "resident_phone": ""}, visited):  # staff at the desk give one
        with pytest.raises(InvalidCommand):
            build(commands.RecordCase, data)


def test_the_api_document_s_request_schemas_are_the_commands():
    document = openapi.document(["other"], ["phone"])
    schemas = document["components"]["schemas"]
    for key, kind in TASKS.items():
        generated = commands.json_schema(kind.command)
        generated.pop("$defs", None)
        assert schemas[f"TaskData_{key}"] == generated
    assert schemas["Reassignment"]["properties"].keys() == commands.ReassignTask.model_fields.keys()
    assert schemas["NewCase"]["required"] == [n for n, f in commands.RecordCase.model_fields.items()
                                              if f.is_required()]


def test_a_user_task_is_one_registry_entry_and_its_template():
    """Each kind of user task: a command in TASKS, a form built from it, a page template — nothing else."""
    for key, kind in TASKS.items():
        assert task_form(key).command is kind.command
        assert (ROOT / "templates" / "tasks" / f"{key}.html").exists(), key
    bpmn_keys = {key for path in (ROOT / "bpmn").glob("*.bpmn")
                 for key in re.findall(r'name="formKey" value="([^"]+)"', path.read_text(encoding="utf-8"))}
    assert bpmn_keys - {"visit"} == set(TASKS)  # the routine visit's one task is the visits service's


def test_a_task_form_is_its_command_s_fields_with_their_rules_as_html_hints(app):
    with app.test_request_context():
        form = task_form("handle")(meta={"csrf": False})
        assert set(commands.Handle.model_fields) <= set(form._fields)
        assert form.text.render_kw == {"maxlength": 4000, "required": True}
        assert form.extension_days.render_kw == {"min": 1, "max": 30}
        assert [c.value for c in form.handle_action.choices] == ["done", "return", "extend"]


def test_the_web_form_shows_every_field_error_of_the_command(login, db):
    page = login("member_a").submit("/cases/new", intake(db, resident_phone="1", description="",
                                                          disposition="on_spot", reply=""))
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    for message in (PHONE_ZH, "请填写居民诉求内容", "请填写给居民的答复"):
        assert message in text, message
    assert latest_case(db) is None


def test_the_api_requires_each_task_s_choice_and_the_web_form_offers_a_default(app, db, login):
    from tests.web.test_api import dispatched
    member, leader, case = dispatched(lambda name: Api(app.test_client(), make_token(app, name)[1]), db)
    task = next(t for t in member.get("/tasks").get_json()["items"] if t["case_id"] == case["id"])
    refused = member.post(f"/tasks/{task['id']}/complete", {"version": case["version"], "data": {"text": "修好了"}})
    assert refused.status_code == 422 and [e["field"] for e in refused.get_json()["errors"]] == ["data.handle_action"]
    page = login("member_a").get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert 'checked id="handle_action-0" name="handle_action" type="radio" value="done"' in page


def test_a_web_form_names_every_problem_at_once(app, db, login):
    from tests.conftest import dispatch, open_task
    member = login("member_a")
    member.submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    page = member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "extend", "text": "",
                                                                  "extension_days": "abc"})
    assert page.status_code == 422
    errors = re.findall(r'<p class="error" role="alert">([^<]+)</p>', page.get_data(as_text=True))
    assert len(errors) == 2, errors


def test_an_unknown_disposition_is_refused_not_taken_for_dispatch(login, db):
    page = login("member_a").submit("/cases/new", intake(db, disposition="bogus"))
    assert page.status_code == 422 and latest_case(db) is None


def test_a_case_left_for_the_grid_through_the_api_answers_with_its_waiting_task(app, db):
    program = Api(app.test_client(), make_token(app, "member_a")[1])
    answer = program.post("/cases", {**new_case(db), "answered_on_spot": None})  # null: leave it to the grid
    assert answer.status_code == 201
    [task] = answer.get_json()["tasks"]
    assert (task["case_id"], task["form_key"]) == (answer.get_json()["id"], "record_reply")


@pytest.mark.parametrize("field", ["description", "first_name", "address_string", "email"])
def test_a_nul_character_is_refused_once_at_every_door(app, db, field):
    secret = make_token(app, "member_a", "app")[1]
    filing = {"api_key": secret, "service_code": "property_repair", "description": "楼道灯不亮",
              "address_id": str(building_id(db)), "email": "a@example.cn", field: "坏\x00字"}
    answer = app.test_client().post("/open311/v2/requests.json", data=filing)
    assert answer.status_code == 400
    assert len([e for e in answer.get_json() if "\\x00" in e["description"]]) == 1
    assert _cases(db) == 0
