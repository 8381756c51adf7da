"""The field walk of issue 17 at 390 px: a member records a case with two photos, goes offline and records a
visit with a photo, comes back online and the visit arrives once with its photo; the auditor's bundle of the
case verifies with both photos inside, and fails once one is swapped. No page scrolls sideways."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.test_photos_in_chromium import _no_sideways_scroll, _phone, bundle_holds_and_guards
from tests.conftest import configured_app
from tests.web.test_attachments import photo
from tests.web.test_offline_records import _households, _visit_of
from tracker import jobs
from tracker.models import Attachment, Case, DiaryNote

pytestmark = pytest.mark.browser


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def test_a_case_with_photos_and_an_offline_visit_with_a_photo_reach_the_auditors_bundle(
        app, server, browser, login, db, tmp_path):
    _households(login, db, ["王奶奶"])
    assert jobs.start_visits(app) == 1
    visit = _visit_of(db, "王奶奶")
    member = _phone(browser, server, "member_a")
    member.evaluate("() => navigator.serviceWorker.ready")
    member.reload()  # controlled by the worker: the inbox caches today's visit page for offline use
    member.wait_for_function("""async (path) => !!(await (await caches.open('pages-gridloop-v1')).match(path))""",
                             arg=f"/visits/{visit.id}")

    # Online: a case with two photos from the camera.
    member.goto(f"{server}/cases/new")
    _no_sideways_scroll(member)
    member.fill("#resident_name", "张阿姨")
    member.fill("#resident_phone", "13812345678")
    member.select_option("#building_id", label="GA · 1号楼院")
    member.select_option("#category", "property_repair")
    member.fill("#description", "楼道灯不亮")
    red, blue, white = photo("red"), photo("blue"), photo("white")
    member.locator("input[type=file][name=photos]").set_input_files(
        [{"name": "IMG_1.jpg", "mimeType": "image/jpeg", "buffer": red},
         {"name": "IMG_2.jpg", "mimeType": "image/jpeg", "buffer": blue}])
    member.locator("button.primary[type=submit]").click()
    expect(member.locator("ul.gallery img")).to_have_count(2)
    _no_sideways_scroll(member)
    case_id = member.url.split("#")[0].split("?")[0].rstrip("/").split("/")[-1]

    # Offline: the visit, with a photo, waits on the phone.
    member.context.set_offline(True)
    member.goto(f"{server}/visits/{visit.id}")  # from the worker's cache
    _no_sideways_scroll(member)
    member.fill("textarea[name=note]", "离线走访：老人精神好，拍了门口")
    visit_input = member.locator("input[type=file][name=photos]")
    assert visit_input.get_attribute("accept") == "image/*" and visit_input.get_attribute("capture") is not None
    visit_input.set_input_files([{"name": "IMG_3.jpg", "mimeType": "image/jpeg", "buffer": white}])
    member.click("button.primary")
    expect(member.locator("#outbox li")).to_have_count(1)
    expect(member.locator("#outbox")).to_contain_text("待发送")
    _no_sideways_scroll(member)
    assert db.scalar(select(func.count()).select_from(DiaryNote)) == 0

    # Online again: the visit goes out by itself, once, with its photo.
    member.context.set_offline(False)
    expect(member.locator("#outbox li")).to_have_count(0, timeout=20_000)
    db.expire_all()
    assert _visit_of(db, "王奶奶").status == "done"
    assert db.scalars(select(DiaryNote.text)).all() == ["离线走访：老人精神好，拍了门口"]
    [shot] = db.scalars(select(Attachment).where(Attachment.visit_id == visit.id)).all()
    assert shot.kind == "visit" and shot.sha256 == hashlib.sha256(white).hexdigest()
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    member.reload()  # a later page load sends nothing more
    expect(member.locator("#outbox li")).to_have_count(0)
    assert db.scalar(select(func.count()).select_from(DiaryNote)) == 1
    assert db.scalar(select(func.count()).select_from(Attachment)) == 3
    member.goto(f"{server}/visits/{visit.id}")
    expect(member.locator("ul.gallery img")).to_have_count(1)
    member.wait_for_function("() => [...document.querySelectorAll('ul.gallery img')].every("
                             "img => img.complete && img.naturalWidth > 0)", timeout=10_000)
    _no_sideways_scroll(member)

    # The auditor's bundle of the case: both photos inside, it verifies; a swapped photo is detected.
    auditor = _phone(browser, server, "auditor")
    auditor.goto(f"{server}/cases/{case_id}")
    expect(auditor.locator("ul.gallery img")).to_have_count(2)
    _no_sideways_scroll(auditor)
    bundle_holds_and_guards(auditor, f"{server}/cases/{case_id}/bundle.zip", tmp_path, [red, blue])
