"""Mediations (矛盾调解): recorded by the handler, on the chain and in the bundle, reminded once, referred on."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import configured_app, dispatch, intake, latest_case, open_task
from tests.web.test_attachments import files, photo
from tracker import chain, jobs
from tracker.models import Attachment, AuditEvent, Mediation, Notification
from tracker.services.audit import verify_chain

TODAY = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _dispute(login, db):
    """Record a neighbours' dispute and dispatch it to member_a; return the case and its handling task."""
    assert login("member_a").submit("/cases/new", intake(db, category="dispute_mediation",
                                                         description="楼上漏水到楼下")).status_code == 302
    case = latest_case(db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    return case, open_task(db, case.id)


def _form(**overrides) -> dict:
    data = {"party1_name": "王先生", "party1_phone": "13900001111", "party2_name": "赵女士",
            "party2_phone": "13900002222", "mediators": "网格员甲、社区调解员", "agreement": "楼上修好防水，赔偿500元",
            "accepted": "yes", "follow_up_on": "2026-12-09", "referred_to": ""}
    data.update(overrides)
    return data


@time_machine.travel(TODAY, tick=False)
def test_the_handler_records_a_mediation_on_the_chain_and_in_the_bundle(app, login, db, tmp_path):
    case, _task = _dispute(login, db)
    member = login("member_a")
    url = f"/cases/{case.id}/mediations/new"
    response = member.submit(url, {**_form(), "photos": files((photo(), "site.jpg"))})
    assert response.status_code == 302, response.get_data(as_text=True)[:1500]
    row = db.scalars(select(Mediation)).one()
    assert json.loads(row.parties) == [{"name": "王先生", "phone": "+8613900001111"},
                                       {"name": "赵女士", "phone": "+8613900002222"}]
    assert row.accepted and row.follow_up_on == dt.date(2026, 12, 9)
    assert row.follow_up_at == dt.datetime(2026, 12, 9, 1, 0, tzinfo=dt.UTC)  # 09:00 in Shanghai
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                AuditEvent.action == "mediation.recorded")).one()
    changes = json.loads(event.changes)
    assert changes["mediation_agreement"] == [None, "楼上修好防水，赔偿500元"]
    assert changes["mediation_accepted"] == [None, True]
    assert db.scalar(select(Attachment.kind).where(Attachment.mediation_id == row.id)) == "mediation"
    assert verify_chain(db, case.id).ok
    page = member.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "矛盾调解" in page and "王先生" in page and "楼上修好防水" in page and "2026-12-09" in page
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(login("auditor").get(f"/cases/{case.id}/bundle.zip").get_data())
    assert chain.verify_bundle(str(bundle)).ok
    with zipfile.ZipFile(bundle) as archive:
        assert "楼上修好防水" in archive.read("events.json").decode("utf-8")


@time_machine.travel(TODAY, tick=False)
def test_bad_input_saves_nothing_and_keeps_what_was_typed(app, login, db):
    case, _task = _dispute(login, db)
    member = login("member_a")
    url = f"/cases/{case.id}/mediations/new"
    response = member.submit(url, _form(party2_phone="12345", agreement=""))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "电话号码无效" in html and "请填写达成的协议" in html
    assert 'value="王先生"' in html and 'value="赵女士"' in html
    response = member.submit(url, {**_form(), "photos": files((b"not an image", "x.jpg"))})
    assert response.status_code == 422 and "不是 JPEG、PNG 或 WebP" in response.get_data(as_text=True)
    assert member.submit(url, _form(follow_up_on="2026-12-01")).status_code == 422
    assert member.submit(url, _form(referred_to="法律援助中心")).status_code == 422  # accepted: nothing to refer
    assert db.scalar(select(func.count()).select_from(Mediation)) == 0
    assert db.scalar(select(func.count()).select_from(Attachment)) == 0
    assert verify_chain(db, case.id).ok


@time_machine.travel(TODAY, tick=False)
def test_only_the_handler_records_a_mediation(app, login, db):
    case, _task = _dispute(login, db)
    for who in ("member_a2", "auditor", "member_b", "leader_a"):
        assert login(who).get(f"/cases/{case.id}/mediations/new").status_code == 403
    assert login("member_a").get(f"/cases/{case.id}/mediations/new").status_code == 200


@time_machine.travel(TODAY, tick=False)
def test_a_failed_mediation_is_referred_on_and_shows_on_the_case(app, login, db):
    case, _task = _dispute(login, db)
    member = login("member_a")
    assert member.submit(f"/cases/{case.id}/mediations/new",
                         _form(accepted="no", agreement="双方未达成一致", follow_up_on="")).status_code == 302
    row = db.scalars(select(Mediation)).one()
    assert not row.accepted and row.follow_up_at is None and row.referred_to == ""
    response = member.submit(f"/mediations/{row.id}/refer", {"referred_to": "区法律援助中心"}, page=f"/cases/{case.id}")
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Mediation, row.id).referred_to == "区法律援助中心"
    assert "区法律援助中心" in member.get(f"/cases/{case.id}").get_data(as_text=True)
    again = member.submit(f"/mediations/{row.id}/refer", {"referred_to": "派出所"}, page=f"/cases/{case.id}")
    assert again.status_code == 302 and "已转交至区法律援助中心" in member.get(f"/cases/{case.id}").get_data(as_text=True)
    assert login("member_a2").submit(f"/mediations/{row.id}/refer", {"referred_to": "派出所"},
                                     page=f"/cases/{case.id}").status_code == 403
    assert verify_chain(db, case.id).ok


def test_the_follow_up_reminds_the_handler_once_across_a_restart(database_url, tmp_path, login, db, app):
    with time_machine.travel(TODAY, tick=False):
        case, _task = _dispute(login, db)
        assert login("member_a").submit(f"/cases/{case.id}/mediations/new", _form()).status_code == 302
    follow_up = dt.datetime(2026, 12, 9, 1, 0, tzinfo=dt.UTC)
    jobs.tick(app, follow_up - dt.timedelta(minutes=1))
    assert db.scalar(select(func.count()).select_from(Notification).where(
        Notification.kind == "mediation_follow_up")) == 0
    # A scheduler started afresh (another app on the same database) finds the reminder in the database.
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as restarted:
        jobs.tick(restarted, follow_up)
        jobs.tick(restarted, follow_up + dt.timedelta(hours=1))
    jobs.tick(app, follow_up + dt.timedelta(days=1))
    notes = db.scalars(select(Notification).where(Notification.kind == "mediation_follow_up")).all()
    assert len(notes) == 1
    assert notes[0].user_id == db.scalar(select(Mediation.recorded_by_id))
    assert json.loads(notes[0].params) == {"number": case.number, "agreement": "楼上修好防水，赔偿500元"}
    page = login("member_a").get("/notifications/").get_data(as_text=True)
    assert case.number in page and "楼上修好防水" in page


def test_photos_of_a_mediation_are_in_memory_only_once_read(app):
    """A guard that the upload reader reads a file's bytes (the check needs them all)."""
    from tracker.media import read_uploads

    class Part:
        filename = "a.jpg"
        stream = io.BytesIO(b"x" * 10)
    assert read_uploads([Part()], 4)[0].data == b"xxxxx"
