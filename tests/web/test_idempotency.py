"""Sending an intake twice never makes two cases: the desk form's one-time key and the API's Idempotency-Key."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
import uuid

from sqlalchemy import func, select

from tests.conftest import intake, latest_case
from tests.web.test_api import make_token, new_case
from tracker.models import Case, IntakeKey


def _count(db) -> int:
    return db.scalar(select(func.count()).select_from(Case))


def _form(browser) -> dict:
    html = browser.get("/cases/new").get_data(as_text=True)
    return dict(re.findall(r'name="(csrf_token|intake_key)" type="hidden" value="([^"]+)"', html))


def test_the_intake_page_carries_a_fresh_one_time_key(login):
    member = login("member_a")
    first, second = _form(member)["intake_key"], _form(member)["intake_key"]
    assert first != second and len(first) == 32


def test_the_same_form_sent_twice_makes_one_case_and_shows_it(login, db):
    member = login("member_a")
    fields = {**_form(member), **intake(db), "duplicates": "check"}
    first = member.client.post("/cases/new", data=fields)
    assert first.status_code == 302
    case = latest_case(db)
    member.get(first.location)
    again = member.client.post("/cases/new", data=fields)  # a double click, or a retry after a lost answer
    assert again.status_code == 302 and again.location.endswith(f"/cases/{case.id}")
    assert _count(db) == 1
    assert case.number in member.get(again.location).get_data(as_text=True)
    # A new page, a new key: a second case of the same resident is recorded (after the duplicate warning).
    fields = {**_form(member), **intake(db), "duplicates": "confirmed"}
    assert member.client.post("/cases/new", data=fields).status_code == 302
    assert _count(db) == 2


def test_a_refused_intake_keeps_its_key_free(login, db):
    member = login("member_a")
    fields = {**_form(member), **intake(db, resident_phone="12")}
    assert member.client.post("/cases/new", data=fields).status_code == 422
    assert db.scalar(select(func.count()).select_from(IntakeKey)) == 0
    fields["resident_phone"] = "13912345678"
    assert member.client.post("/cases/new", data=fields).status_code == 302
    assert _count(db) == 1


def test_another_account_sending_the_same_key_gets_its_own_case(login, db):
    member, other = login("member_a"), login("member_a2")
    key = _form(member)["intake_key"]
    for browser in (member, other):
        fields = {**_form(browser), **intake(db, resident_phone="13912345678"), "intake_key": key}
        assert browser.client.post("/cases/new", data=fields).status_code == 302
    assert _count(db) == 2


def test_a_damaged_key_protects_nothing_but_loses_nothing(login, db):
    member = login("member_a")
    fields = {**_form(member), **intake(db), "intake_key": "has spaces in it"}
    assert member.client.post("/cases/new", data=fields).status_code == 302
    assert _count(db) == 1


# -- the API: Idempotency-Key ------------------------------------------------------------------------------

def _post(client, secret: str, body: dict, key: str | None):
    headers = {"Authorization": f"Bearer {secret}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/cases", json=body, headers=headers)


def test_a_repeat_with_the_same_key_answers_with_the_case_already_made(app, db):
    client, secret = app.test_client(), make_token(app, "member_a")[1]
    key = str(uuid.uuid4())
    first = _post(client, secret, new_case(db), key)
    assert first.status_code == 201
    again = _post(client, secret, new_case(db), key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"] and again.headers["Location"] == first.headers["Location"]
    assert _count(db) == 1
    # Whitespace the command strips is the same request.
    assert _post(client, secret, new_case(db, description=" 楼道灯不亮 "), key).status_code == 200
    # Without a key, or with a new one, a new case.
    assert _post(client, secret, new_case(db), None).status_code == 201
    assert _post(client, secret, new_case(db), str(uuid.uuid4())).status_code == 201
    assert _count(db) == 3


def test_the_same_key_with_another_body_is_refused_clearly(app, db):
    client, secret = app.test_client(), make_token(app, "member_a")[1]
    first = _post(client, secret, new_case(db), "key-1")
    again = _post(client, secret, new_case(db, description="另一件事"), "key-1")
    assert again.status_code == 409
    problem = again.get_json()
    assert "Idempotency-Key" in problem["detail"] and first.get_json()["number"] in problem["detail"]
    assert _count(db) == 1


def test_keys_are_per_account_and_checked(app, db):
    client = app.test_client()
    member, other = make_token(app, "member_a")[1], make_token(app, "member_a2")[1]
    assert _post(client, member, new_case(db), "shared").status_code == 201
    assert _post(client, other, new_case(db), "shared").status_code == 201
    for bad in ("", "with space", "x" * 101, "中文"):
        response = _post(client, member, new_case(db), bad)
        assert response.status_code == 400 and "Idempotency-Key" in response.get_json()["detail"], bad
    assert _count(db) == 2


def test_an_invalid_body_with_a_key_keeps_the_key_free(app, db):
    client, secret = app.test_client(), make_token(app, "member_a")[1]
    assert _post(client, secret, new_case(db, resident_phone="12"), "k").status_code == 422
    assert _post(client, secret, new_case(db, building_id=999999), "k").status_code == 422
    assert _post(client, secret, new_case(db), "k").status_code == 201


def test_two_sends_at_the_same_moment_make_one_case(app, db, server):
    secret = make_token(app, "member_a")[1]
    body, answers = json.dumps(new_case(db)).encode(), []
    start = threading.Barrier(4)

    def send() -> None:
        request = urllib.request.Request(f"{server}/api/v1/cases", data=body, method="POST", headers={
            "Authorization": f"Bearer {secret}", "Idempotency-Key": "same-moment",
            "Content-Type": "application/json"})
        start.wait()
        with urllib.request.urlopen(request, timeout=30) as answer:
            answers.append((answer.status, json.loads(answer.read())["id"]))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in answers) == [200, 200, 200, 201]
    assert len({case_id for _, case_id in answers}) == 1
    assert _count(db) == 1


def test_the_openapi_document_describes_the_header(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    post = document["paths"]["/cases"]["post"]
    header = next(p for p in post["parameters"] if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and not header["required"] and header["schema"]["maxLength"] == 100
    assert {"200", "201", "409"} <= set(post["responses"])
