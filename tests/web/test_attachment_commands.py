"""Photos and mediations take commands (tracker/services/commands.py) and ask tracker/permissions.py who may.

A photo's kind is one of the command's coded choices: a bad one is refused at the API with the field named
(the invalid-input problem every command's refusal has) and at the case's pages, and nothing is stored. The
mediation commands refuse bad input with the messages they always had. Who may add photos or mediate is
``may_attach`` / ``handles_case`` of tracker/permissions.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import configured_app, dispatch, open_task
from tests.web.test_api import make_token
from tests.web.test_attachments import _record_with_photos, files, photo
from tracker.codes import AttachmentKind
from tracker.models import (
    Attachment,
    AuditEvent,
    Case,
    CaseStatus,
    Community,
    Grid,
    Membership,
    Role,
    Task,
    TaskStatus,
    User,
)
from tracker.permissions import handles_case, may_attach
from tracker.services import attachments, mediation
from tracker.services.commands import (
    PHONE_MESSAGE,
    Command,
    InvalidCommand,
    RecordMediation,
    ReferMediation,
    UploadAttachment,
    build,
)

KIND_MESSAGE = "Say what the photos show: intake (of the request), before or after (handling)."
KIND_MESSAGE_ZH = "请说明照片类型：诉求照片（intake）、处理前（before）或处理后（after）。"


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _stored(db, store: Path) -> tuple[int, int, int]:
    """Return what photos left behind: rows, chain events attaching files, files in the store."""
    rows = db.scalar(select(func.count()).select_from(Attachment))
    events = db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == attachments.ACTION))
    kept = sum(1 for p in store.rglob("*") if p.is_file()) if store.exists() else 0
    return rows, events, kept


def _handled_case(login, db) -> tuple[Case, Task]:
    """Record a case with no photos and dispatch it to member_a; return it and its handling task."""
    case = _record_with_photos(login, db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    return case, open_task(db, case.id)


# -- the API ----------------------------------------------------------------------------------------------

def test_the_api_refuses_a_bad_kind_naming_the_field_and_stores_nothing(app, login, db, tmp_path):
    case, _task = _handled_case(login, db)
    client = app.test_client()
    _id, token = make_token(app, "member_a")
    url = f"/api/v1/cases/{case.id}/attachments"
    before = _stored(db, tmp_path / "media")
    for kind in ("mediation", "visit", "BEFORE", "", " after\x01", None):
        data: dict[str, Any] = {"photos": files((photo(), "a.jpg"))}
        if kind is not None:
            data["kind"] = kind
        response = client.post(url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}, data=data)
        assert response.status_code == 422, (kind, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["type"] == "urn:gridloop:problem:invalid-input"
        assert body["errors"] == [{"field": "kind", "message": KIND_MESSAGE}], kind
    # In the request's language, as every command's error.
    chinese = client.post(url, headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
                          data={"kind": "mediation", "photos": files((photo(), "a.jpg"))})
    assert chinese.status_code == 422 and chinese.get_json()["errors"] == [{"field": "kind", "message": KIND_MESSAGE_ZH}]
    assert _stored(db, tmp_path / "media") == before
    # The same photo with a kind the command takes is added: the refusals were about the kind alone.
    good = client.post(url, headers={"Authorization": f"Bearer {token}"},
                       data={"kind": "before", "photos": files((photo(), "a.jpg"))})
    assert good.status_code == 201, good.get_data(as_text=True)
    assert [item["kind"] for item in good.get_json()["items"]] == ["before"]
    assert _stored(db, tmp_path / "media")[:2] == (before[0] + 1, before[1] + 1)


def test_the_api_document_offers_the_kinds_the_command_takes(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    body = document["paths"]["/cases/{case_id}/attachments"]["post"]["requestBody"]
    kind = body["content"]["multipart/form-data"]["schema"]["properties"]["kind"]
    assert kind["enum"] == ["intake", "before", "after"]
    assert kind["enum"] == UploadAttachment.model_json_schema()["properties"]["kind"]["enum"]


# -- the case's pages -------------------------------------------------------------------------------------

def test_the_page_refuses_a_kind_it_does_not_offer_and_stores_nothing(app, login, db, tmp_path):
    case, handle = _handled_case(login, db)
    member = login("member_a")
    page = f"/tasks/{handle.id}"
    before = _stored(db, tmp_path / "media")
    for kind in ("mediation", "visit", "nonsense", ""):
        response = member.submit(f"/cases/{case.id}/photos", {"kind": kind, "task_id": handle.id,
                                                              "photos": files((photo(), "a.jpg"))}, page=page)
        assert response.status_code == 400, kind
    assert _stored(db, tmp_path / "media") == before
    response = member.submit(f"/cases/{case.id}/photos", {"kind": "after", "task_id": handle.id,
                                                          "photos": files((photo(), "a.jpg"))}, page=page)
    assert response.status_code == 302 and response.headers["Location"].endswith(page)
    assert db.scalars(select(Attachment.kind).where(Attachment.case_id == case.id)).all() == ["after"]


# -- the commands -----------------------------------------------------------------------------------------

def _errors(command: type[Command], data: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the (field, message template) pairs building ``command`` from ``data`` refuses."""
    with pytest.raises(InvalidCommand) as refused:
        build(command, data)
    return [(e.field, e.template) for e in refused.value.errors]


def _mediation(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"parties": [{"name": "王先生", "phone": "13900001111"},
                                        {"name": "赵女士", "phone": "010-12345678"}],
                            "mediators": "网格员甲", "agreement": "楼上修好防水", "accepted": True,
                            "follow_up_on": "2026-12-09", "referred_to": ""}
    data.update(overrides)
    return data


def test_record_mediation_takes_good_input_and_refuses_bad_with_its_messages():
    command = build(RecordMediation, _mediation())
    assert [(p.name, p.phone) for p in command.parties] == [("王先生", "+8613900001111"), ("赵女士", "+861012345678")]
    assert command.follow_up_on == dt.date(2026, 12, 9) and command.accepted
    only_one = _mediation(parties=[{"name": "王先生", "phone": "13900001111"}])
    assert _errors(RecordMediation, only_one) == [("parties", "Name both parties of the dispute, each with a phone.")]
    unnamed = _mediation(parties=[{"name": " ", "phone": "13900001111"}, {"name": "赵女士", "phone": "12345"}])
    # A party's missing name reads as the parties' message (the command's own message for its field "parties",
    # as it always did); the phone's own rule speaks for itself.
    assert _errors(RecordMediation, unnamed) == [
        ("parties.0.name", "Name both parties of the dispute, each with a phone."), ("parties.1.phone", PHONE_MESSAGE)]
    assert _errors(RecordMediation, _mediation(mediators="", agreement="\u200b")) == [
        ("mediators", "Name who mediated."),
        ("agreement", "Write what was agreed, or why no agreement was reached.")]
    assert _errors(RecordMediation, _mediation(referred_to="法律援助中心")) == [
        ("referred_to", "Only a failed mediation is referred on; leave this empty when both accept.")]
    assert build(RecordMediation, _mediation(accepted=False, referred_to="法律援助中心")).referred_to == "法律援助中心"
    assert _errors(RecordMediation, _mediation(follow_up_on="9.12.2026")) == [
        ("follow_up_on", "Not a date: write it as YYYY-MM-DD, e.g. 2026-12-01.")]


def test_refer_mediation_refuses_an_empty_or_long_target():
    assert build(ReferMediation, {"referred_to": " 区法律援助中心 "}).referred_to == "区法律援助中心"
    assert _errors(ReferMediation, {"referred_to": "  "}) == [
        ("referred_to", "Say where the dispute is referred, e.g. legal aid.")]
    assert _errors(ReferMediation, {"referred_to": "援" * 201}) == [("referred_to", "At most %(max_length)s characters.")]


def test_upload_attachment_takes_the_kinds_a_person_adds_and_no_other():
    for kind in ("intake", "before", "after"):
        assert build(UploadAttachment, {"kind": kind}).kind == AttachmentKind(kind)
        assert build(UploadAttachment, {"kind": kind}, from_json=True).kind == AttachmentKind(kind)
    for data in ({"kind": "mediation"}, {"kind": "visit"}, {"kind": ""}, {}, {"kind": 1}):
        assert _errors(UploadAttachment, data) == [("kind", KIND_MESSAGE)], data
    assert _errors(UploadAttachment, {"kind": "after", "photos": "x"})[0][0] == "photos"  # closed, as every command


def test_every_command_is_declared_in_the_commands_module(app):
    """Input rules live once: no adapter or service declares a command of its own (the app imports them all)."""
    assert not hasattr(mediation, "RecordMediation") or mediation.RecordMediation is RecordMediation
    found, todo = [], list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    assert {RecordMediation, ReferMediation, UploadAttachment} <= set(found)
    assert [c.__qualname__ for c in found if c.__module__ != "tracker.services.commands"] == []


# -- who may (tracker/permissions.py), on plain objects ---------------------------------------------------

COMMUNITY = Community(id=1, name="一社区")
GRID_A = Grid(id=10, code="GA", name="A网格", community_id=1, community=COMMUNITY)
GRID_B = Grid(id=20, code="GB", name="B网格", community_id=1, community=COMMUNITY)


def _user(user_id: int, *memberships: Membership, admin: bool = False, active: bool = True) -> User:
    return User(id=user_id, username=f"u{user_id}", display_name=f"u{user_id}", password_hash="", is_admin=admin,
                active=active, memberships=list(memberships))


HANDLER = _user(1, Membership(role=Role.GRID_MEMBER, grid_id=GRID_A.id))
COLLEAGUE = _user(2, Membership(role=Role.GRID_MEMBER, grid_id=GRID_A.id))
LEADER = _user(3, Membership(role=Role.GRID_LEADER, grid_id=GRID_A.id))
OTHER_GRID = _user(4, Membership(role=Role.GRID_MEMBER, grid_id=GRID_B.id))
AUDITOR = _user(5, Membership(role=Role.AUDITOR, community_id=1))
ADMIN = _user(6, admin=True)
GONE = _user(7, Membership(role=Role.GRID_MEMBER, grid_id=GRID_A.id), active=False)
PEOPLE = {"handler": HANDLER, "colleague": COLLEAGUE, "leader": LEADER, "other_grid": OTHER_GRID,
          "auditor": AUDITOR, "admin": ADMIN, "gone": GONE}


def _case(status: CaseStatus = CaseStatus.HANDLING, task_status: TaskStatus = TaskStatus.OPEN) -> Case:
    """A case of grid A whose handling task is member u1's."""
    case = Case(id=100, number="GA-0001", grid_id=GRID_A.id, grid=GRID_A, status=status)
    case.tasks = [Task(id="t-1", name="handle", form_key="handle", case_id=case.id, case=case, role=Role.GRID_MEMBER,
                       grid_id=GRID_A.id, status=task_status, assignee_id=HANDLER.id)]
    return case


def _who(check, *args: Any) -> set[str]:
    return {name for name, user in PEOPLE.items() if check(user, *args)}


def test_who_may_add_photos_of_each_kind_and_mediate():
    case = _case()
    assert _who(handles_case, case) == {"handler"}
    assert _who(may_attach, case, AttachmentKind.BEFORE) == _who(may_attach, case, AttachmentKind.AFTER) == {"handler"}
    assert _who(may_attach, case, AttachmentKind.INTAKE) == {"handler", "colleague", "leader"}
    assert _who(may_attach, case, AttachmentKind.VISIT) == _who(may_attach, case, AttachmentKind.MEDIATION) == set()


def test_nobody_adds_to_an_archived_case_or_handles_a_case_without_an_open_handling_task():
    archived = _case(CaseStatus.ARCHIVED)
    for kind in AttachmentKind:
        assert _who(may_attach, archived, kind) == set()
    assert _who(handles_case, archived) == set()
    done = _case(task_status=TaskStatus.DONE)
    assert _who(handles_case, done) == set()
    assert _who(may_attach, done, AttachmentKind.INTAKE) == {"handler", "colleague", "leader"}
