"""Photos on visit records: checked like intake's, stored as the visit's (kind visit), shown on the visit page;
a case the visit raises gets them too, their hashes on its chain and in its bundle; a bad one refuses it all."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import configured_app
from tests.web.test_attachments import _bundle, _rezip, files, photo
from tests.web.test_offline_records import _households, _visit_of
from tracker import chain, jobs
from tracker.models import Attachment, AuditEvent, Case, DiaryNote


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


@pytest.fixture
def visit(app, login, db):
    """Today's visit of 王奶奶, member_a's to record."""
    _households(login, db, ["王奶奶"])
    assert jobs.start_visits(app) == 1
    return _visit_of(db, "王奶奶")


def test_the_visit_form_takes_photos_from_the_camera(app, login, db, visit):
    html = login("member_a").get(f"/visits/{visit.id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in html
    assert '<input type="file" id="photos" name="photos" accept="image/*" capture multiple>' in html


def test_photos_of_a_visit_are_stored_as_the_visits_and_shown_on_its_page(app, login, db, visit):
    red = photo("red")
    member = login("member_a")
    response = member.submit(f"/visits/{visit.id}", {"note": "精神很好", "photos": files((red, "IMG_1.jpg"))})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    [row] = db.scalars(select(Attachment)).all()
    assert (row.visit_id, row.case_id, row.kind, row.sha256) == (visit.id, None, "visit", hashlib.sha256(red).hexdigest())
    page = member.get(f"/visits/{visit.id}").get_data(as_text=True)
    assert f"/attachments/{row.id}/thumb" in page and "照片" in page
    assert member.get(f"/attachments/{row.id}/thumb").status_code == 200
    assert login("leader_a").get(f"/attachments/{row.id}/display").status_code == 200
    assert login("member_b").get(f"/attachments/{row.id}/display").status_code == 404  # another grid's


def test_a_visit_that_opens_a_case_puts_its_photos_on_the_cases_chain_and_bundle(app, login, db, visit, tmp_path):
    red, blue = photo("red"), photo("blue", fmt="PNG")
    member = login("member_a")
    response = member.submit(f"/visits/{visit.id}", {
        "note": "家里水管漏水", "raise_case": "y", "category": "property_repair", "description": "厨房水管漏水",
        "photos": files((red, "a.jpg"), (blue, "b.png"))})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    case = db.scalars(select(Case)).one()
    rows = db.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(r.visit_id, r.case_id, r.kind) for r in rows] == [(visit.id, case.id, "visit")] * 2
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                AuditEvent.action == "case.files_attached")).one()
    assert [f["sha256"] for f in json.loads(event.changes)["files"][1]] == [r.sha256 for r in rows]
    assert f"/attachments/{rows[0].id}/thumb" in member.get(f"/cases/{case.id}").get_data(as_text=True)

    bundle = _bundle(login, case, tmp_path)
    red_name = f"files/{hashlib.sha256(red).hexdigest()}.jpg"
    with zipfile.ZipFile(bundle) as archive:
        assert archive.read(red_name) == red
        assert archive.read(f"files/{hashlib.sha256(blue).hexdigest()}.png") == blue
    assert chain.verify_bundle(str(bundle)).ok
    swapped = chain.verify_bundle(str(_rezip(bundle, tmp_path / "swapped.zip", {red_name: photo("green")})))
    assert not swapped.ok and f"{red_name} was replaced" in swapped.problem


def test_a_bad_photo_refuses_the_whole_visit_record_and_keeps_what_was_typed(app, login, db, visit):
    member = login("member_a")
    response = member.submit(f"/visits/{visit.id}", {
        "note": "老人说腿疼", "raise_case": "y", "category": "property_repair", "description": "楼梯扶手松了",
        "photos": files((photo(), "good.jpg"), (b"<html>not a photo</html>", "bad.jpg"))})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "不是 JPEG、PNG 或 WebP" in html and "bad.jpg" in html
    assert "老人说腿疼" in html and "楼梯扶手松了" in html
    assert _visit_of(db, "王奶奶").status == "open"
    for model in (Attachment, Case, DiaryNote):
        assert db.scalar(select(func.count()).select_from(model)) == 0
    again = member.submit(f"/visits/{visit.id}", {"note": "老人说腿疼", "photos": files((photo(), "good.jpg"))})
    assert again.status_code == 302 and db.scalar(select(func.count()).select_from(Attachment)) == 1
