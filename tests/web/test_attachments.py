"""Photos: checked by content, stored by hash, served by permission, on the chain and in the bundle."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from PIL import ExifTags, Image
from sqlalchemy import func, select

from tests.conftest import configured_app, dispatch, intake, latest_case, open_task
from tracker import chain
from tracker.models import Attachment, AuditEvent, Case

#: Where the photo below was taken (kept in the original as evidence, never shown).
GPS_LATITUDE = (39.0, 54.0, 18.0)


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder, and a small per-file limit to test."""
    with configured_app(database_url, media={"store": str(tmp_path / "media"), "max_file_mb": 0.2,
                                             "max_files": 3}) as app:
        yield app


def photo(color: str = "red", size: tuple[int, int] = (640, 480), fmt: str = "JPEG", gps: bool = True) -> bytes:
    """Return an image in ``fmt``; a JPEG carries EXIF with a GPS position, as a phone's photo does."""
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    if fmt == "JPEG" and gps:
        exif = Image.Exif()
        exif[ExifTags.Base.Make] = "TestPhone"
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
        image.save(out, format=fmt, exif=exif)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def files(*blobs: tuple[bytes, str]) -> list[tuple[io.BytesIO, str]]:
    """Return uploads for the test client."""
    return [(io.BytesIO(data), name) for data, name in blobs]


def _has_gps(data: bytes) -> bool:
    """Tell whether an image carries an EXIF GPS position."""
    exif = Image.open(io.BytesIO(data)).getexif()
    return bool(exif.get_ifd(ExifTags.IFD.GPSInfo))


def _record_with_photos(login, db, *blobs: tuple[bytes, str]) -> Case:
    """Record a case at the desk with photos; return it."""
    member = login("member_a")
    response = member.submit("/cases/new", {**intake(db), "photos": files(*blobs)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return latest_case(db)


def test_intake_with_two_photos_stores_them_by_hash_and_records_the_hashes_on_the_chain(app, login, db):
    red, blue = photo("red"), photo("blue", fmt="PNG")
    case = _record_with_photos(login, db, (red, "IMG_0001.jpg"), (blue, "IMG_0002.png"))
    rows = db.scalars(select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id)).all()
    assert [(r.sha256, r.content_type, r.kind, r.file_name) for r in rows] == [
        (hashlib.sha256(red).hexdigest(), "image/jpeg", "intake", "IMG_0001.jpg"),
        (hashlib.sha256(blue).hexdigest(), "image/png", "intake", "IMG_0002.png")]
    event = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                AuditEvent.action == "case.files_attached")).one()
    recorded = json.loads(event.changes)["files"][1]
    assert [f["sha256"] for f in recorded] == [r.sha256 for r in rows]
    store = Path(app.config["GRIDLOOP"]["media"]["store"])
    original = store / rows[0].sha256[:2] / rows[0].sha256[2:4] / rows[0].sha256
    assert original.read_bytes() == red and _has_gps(red)
    page = login("member_a").get(f"/cases/{case.id}").get_data(as_text=True)
    assert f"/attachments/{rows[0].id}/thumb" in page and "照片" in page


def test_pages_show_copies_without_exif_and_the_original_only_as_a_download(app, login, db):
    case = _record_with_photos(login, db, (photo(size=(3000, 2000)), "big.jpg"))
    row = db.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
    reader = login("auditor")
    for variant, longest in (("display", 1600), ("thumb", 320)):
        response = reader.get(f"/attachments/{row.id}/{variant}")
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        shown = Image.open(io.BytesIO(response.get_data()))
        assert max(shown.size) == longest
        assert not shown.getexif() and not _has_gps(response.get_data())
    original = reader.get(f"/attachments/{row.id}/original")
    assert original.status_code == 200 and original.mimetype == "image/jpeg"
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert _has_gps(original.get_data())


def test_photos_are_served_only_to_who_may_read_the_case(app, login, db):
    case = _record_with_photos(login, db, (photo(), "a.jpg"))
    row = db.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
    assert login("member_b").get(f"/attachments/{row.id}/display").status_code == 404
    assert login("leader_b").get(f"/attachments/{row.id}/original").status_code == 404
    assert app.test_client().get(f"/attachments/{row.id}/thumb").status_code == 302  # to the login page
    assert login("leader_a").get(f"/attachments/{row.id}/thumb").status_code == 200
    assert login("leader_a").get(f"/attachments/{row.id}/other").status_code == 404


@pytest.mark.parametrize(("blob", "name", "message"), [
    (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "x.jpg", "不是 JPEG、PNG 或 WebP"),
    (b"<html><script>alert(1)</script></html>", "photo.jpg", "不是 JPEG、PNG 或 WebP"),
    (photo()[:200], "cut.jpg", "不是 JPEG、PNG 或 WebP"),
    (photo(fmt="GIF", gps=False), "anim.gif", "不是 JPEG、PNG 或 WebP"),
    (photo(gps=False, fmt="PNG") + b"\0" * 300_000, "huge.png", "大于"),  # under the test client's 500 KB spool
])
def test_a_bad_file_refuses_the_whole_intake_and_keeps_what_was_typed(app, login, db, blob, name, message):
    before = db.scalar(select(func.count()).select_from(Case))
    member = login("member_a")
    response = member.submit("/cases/new", {**intake(db, resident_name="李大爷", description="三楼漏水"),
                                            "photos": files((photo(), "good.jpg"), (blob, name))})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and name in html
    assert 'value="李大爷"' in html and "三楼漏水" in html
    assert db.scalar(select(func.count()).select_from(Case)) == before
    assert db.scalar(select(func.count()).select_from(Attachment)) == 0


def test_more_photos_than_allowed_are_refused(app, login, db):
    member = login("member_a")
    response = member.submit("/cases/new", {**intake(db), "photos": files(*[(photo(c), f"{c}.jpg") for c in
                                                                           ("red", "blue", "green", "white")])})
    assert response.status_code == 422
    assert "最多" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Attachment)) == 0


def test_the_handler_adds_before_and_after_photos_others_may_not(app, login, db):
    case = _record_with_photos(login, db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    handle = open_task(db, case.id)
    member = login("member_a")
    task_page = f"/tasks/{handle.id}"
    assert 'name="photos"' in member.get(task_page).get_data(as_text=True)
    response = member.submit(f"/cases/{case.id}/photos", {"kind": "before", "task_id": handle.id,
                                                          "photos": files((photo("gray"), "before.jpg"))},
                             page=task_page)
    assert response.status_code == 302 and response.headers["Location"].endswith(task_page)
    response = member.submit(f"/cases/{case.id}/photos", {"kind": "after", "task_id": handle.id,
                                                          "photos": files((photo("white"), "after.jpg"))},
                             page=task_page)
    assert response.status_code == 302
    kinds = db.scalars(select(Attachment.kind).where(Attachment.case_id == case.id).order_by(Attachment.id)).all()
    assert kinds == ["before", "after"]
    # Another member of the grid is not the handler; the auditor reads but changes nothing.
    for who in ("member_a2", "auditor"):
        response = login(who).submit(f"/cases/{case.id}/photos", {"kind": "after", "photos": files((photo(), "x.jpg"))},
                                     page=f"/cases/{case.id}")
        assert response.status_code == 403
    bad = member.submit(f"/cases/{case.id}/photos", {"kind": "after", "task_id": handle.id,
                                                     "photos": files((b"not an image", "x.jpg"))}, page=task_page)
    assert bad.status_code == 302
    assert "不是 JPEG、PNG 或 WebP" in member.get(task_page).get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Attachment)) == 2


def _bundle(login, case: Case, tmp_path: Path) -> Path:
    """Download the case's bundle as the auditor into a file."""
    response = login("auditor").get(f"/cases/{case.id}/bundle.zip")
    assert response.status_code == 200
    path = tmp_path / "bundle.zip"
    path.write_bytes(response.get_data())
    return path


def _rezip(source: Path, target: Path, replace: dict[str, bytes | None]) -> Path:
    """Copy a bundle, replacing (or, with None, dropping; or adding) the named entries."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in replace:
                if replace[info.filename] is not None:
                    new.writestr(info.filename, replace[info.filename])
            else:
                new.writestr(info, old.read(info))
        for name, data in replace.items():
            if data is not None and name not in old.namelist():
                new.writestr(name, data)
    return target


def test_the_bundle_carries_the_photos_and_its_verifier_detects_a_swapped_one(app, login, db, tmp_path):
    red, blue = photo("red"), photo("blue")
    case = _record_with_photos(login, db, (red, "a.jpg"), (blue, "b.jpg"))
    bundle = _bundle(login, case, tmp_path)
    red_name = f"files/{hashlib.sha256(red).hexdigest()}.jpg"
    with zipfile.ZipFile(bundle) as archive:
        assert archive.read(red_name) == red  # the original, GPS and all
        assert f"files/{hashlib.sha256(blue).hexdigest()}.jpg" in archive.namelist()
    report = chain.verify_bundle(str(bundle))
    assert report.ok, report.problem
    event_seq = db.scalar(select(AuditEvent.seq).where(AuditEvent.case_id == case.id,
                                                      AuditEvent.action == "case.files_attached"))

    swapped = chain.verify_bundle(str(_rezip(bundle, tmp_path / "swapped.zip", {red_name: photo("green")})))
    assert not swapped.ok and swapped.broken_seq == event_seq
    assert f"{red_name} was replaced" in swapped.problem

    missing = chain.verify_bundle(str(_rezip(bundle, tmp_path / "missing.zip", {red_name: None})))
    assert not missing.ok and f"lacks {red_name}" in missing.problem

    extra_name = f"files/{'0' * 64}.jpg"
    extra = chain.verify_bundle(str(_rezip(bundle, tmp_path / "extra.zip", {extra_name: photo("green")})))
    assert not extra.ok and "no event attached" in extra.problem

    stray = chain.verify_bundle(str(_rezip(bundle, tmp_path / "stray.zip", {"files/notes.txt": b"hello"})))
    assert not stray.ok and "unexpected file" in stray.problem


def test_a_photo_replaced_in_the_store_shows_in_the_next_bundle(app, login, db, tmp_path):
    red = photo("red")
    case = _record_with_photos(login, db, (red, "a.jpg"))
    digest = hashlib.sha256(red).hexdigest()
    stored = Path(app.config["GRIDLOOP"]["media"]["store"]) / digest[:2] / digest[2:4] / digest
    stored.write_bytes(photo("black"))
    report = chain.verify_bundle(str(_bundle(login, case, tmp_path)))
    assert not report.ok and "was replaced" in report.problem


def test_an_unpacked_bundle_with_photos_verifies_too(app, login, db, tmp_path):
    case = _record_with_photos(login, db, (photo(), "a.jpg"))
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(_bundle(login, case, tmp_path)) as archive:
        archive.extractall(folder)
    assert chain.verify_bundle(str(folder)).ok
    (next((folder / "files").iterdir())).write_bytes(photo("green"))
    assert "was replaced" in chain.verify_bundle(str(folder)).problem


def test_the_api_adds_lists_and_sends_photos_and_refuses_a_bad_one(app, login, db):
    from tests.web.test_api import make_token
    case = _record_with_photos(login, db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    client = app.test_client()
    _id, member = make_token(app, "member_a")
    _id, other = make_token(app, "member_a2")
    url = f"/api/v1/cases/{case.id}/attachments"
    good = photo("white")
    response = client.post(url, headers={"Authorization": f"Bearer {member}"},
                           data={"kind": "after", "photos": files((good, "after.jpg"))})
    assert response.status_code == 201, response.get_data(as_text=True)
    [item] = response.get_json()["items"]
    assert item["sha256"] == hashlib.sha256(good).hexdigest() and item["kind"] == "after"
    shown = client.get(item["urls"]["thumb"], headers={"Authorization": f"Bearer {member}"})
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg"
    bad = client.post(url, headers={"Authorization": f"Bearer {member}", "Accept-Language": "en"},
                      data={"kind": "after", "photos": files((photo(), "a.jpg"), (b"%PDF-1.4", "b.jpg"))})
    assert bad.status_code == 422 and "b.jpg" in bad.get_json()["detail"]
    assert client.post(url, headers={"Authorization": f"Bearer {other}"},
                       data={"kind": "after", "photos": files((photo(), "a.jpg"))}).status_code == 403
    assert client.post(url, headers={"Authorization": f"Bearer {member}"},
                       data={"kind": "mediation", "photos": files((photo(), "a.jpg"))}).status_code == 422
    listed = client.get(url, headers={"Authorization": f"Bearer {member}"}).get_json()["items"]
    assert [i["kind"] for i in listed] == ["after"]


def test_open311_takes_a_photo_file_and_never_fetches_media_url(app, db):
    from tracker.models import Building, User
    from tracker.services import tokens
    building = db.get(Building, db.scalar(select(Building.id).order_by(Building.id)))
    building.latitude, building.longitude = 39.9050, 116.4080
    db.commit()
    secret = tokens.create(db, db.scalar(select(User).where(User.username == "member_a")), "app")[1]
    db.commit()
    client = app.test_client()
    data = {"api_key": secret, "service_code": "property_repair", "description": "楼道灯不亮",
            "lat": "39.9050", "long": "116.4080", "media_url": "http://169.254.169.254/latest/meta-data/"}
    response = client.post("/open311/v2/requests.json", data={**data, "media": files((photo(), "p.jpg"))})
    assert response.status_code == 201, response.get_data(as_text=True)
    case = latest_case(db)
    assert case.media_url == "http://169.254.169.254/latest/meta-data/"  # kept as a link, not requested
    assert db.scalar(select(func.count()).select_from(Attachment).where(Attachment.case_id == case.id)) == 1
    refused = client.post("/open311/v2/requests.json", data={**data, "media": files((b"GIF89a", "p.gif"))})
    assert refused.status_code == 400 and "media" in refused.get_data(as_text=True)
    assert latest_case(db).id == case.id
