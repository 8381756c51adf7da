"""A phone at 390 px records a case with two photos; the auditor's bundle verifies, and fails once a photo is swapped."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD
from tests.conftest import configured_app
from tests.web.test_attachments import photo
from tracker import chain

WIDTH = 390


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _phone(browser, base: str, username: str) -> Page:
    """Log in on a 390 px wide phone screen."""
    page = browser.new_context(viewport={"width": WIDTH, "height": 844}, is_mobile=True, has_touch=True).new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_visible()
    return page


def _no_sideways_scroll(page: Page) -> None:
    """The page is no wider than the screen."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width}px wide at {WIDTH}px"


def bundle_holds_and_guards(page: Page, url: str, folder, photos: list[bytes]) -> None:
    """Download a case bundle as ``page``'s user: it holds exactly ``photos`` and verifies; with one photo
    swapped for another it fails, naming the replaced file."""
    response = page.request.get(url)
    assert response.status == 200
    bundle = folder / "bundle.zip"
    bundle.write_bytes(response.body())
    with zipfile.ZipFile(bundle) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("files/"))
        assert len(names) == len(photos)
        assert {archive.read(n) for n in names} == set(photos)
    report = chain.verify_bundle(str(bundle))
    assert report.ok, report.problem

    swapped = folder / "swapped.zip"
    with zipfile.ZipFile(bundle) as old, zipfile.ZipFile(swapped, "w") as new:
        for info in old.infolist():
            new.writestr(info, photo("green") if info.filename == names[0] else old.read(info))
    broken = chain.verify_bundle(str(swapped))
    assert not broken.ok and "was replaced" in broken.problem


def test_two_photos_at_intake_travel_in_the_bundle_and_a_swapped_one_is_detected(browser, server, tmp_path):
    member = _phone(browser, server, "member_a")
    member.goto(f"{server}/cases/new")
    _no_sideways_scroll(member)
    file_input = member.locator("input[type=file][name=photos]")
    assert file_input.get_attribute("accept") == "image/*" and file_input.get_attribute("multiple") is not None
    assert file_input.get_attribute("capture") is not None
    member.fill("#resident_name", "张阿姨")
    member.fill("#resident_phone", "13812345678")
    member.select_option("#building_id", label="GA · 1号楼院")
    member.select_option("#category", "property_repair")
    member.fill("#description", "楼道灯不亮")
    red, blue = photo("red"), photo("blue")
    file_input.set_input_files([{"name": "IMG_1.jpg", "mimeType": "image/jpeg", "buffer": red},
                                {"name": "IMG_2.jpg", "mimeType": "image/jpeg", "buffer": blue}])
    member.locator("button.primary[type=submit]").click()
    expect(member.locator("#photos")).to_be_visible()
    thumbs = member.locator("ul.gallery img")
    expect(thumbs).to_have_count(2)
    # Both thumbnails load (waited for: on a busy machine they may still be on their way).
    member.wait_for_function("() => [...document.querySelectorAll('ul.gallery img')].every("
                             "img => img.complete && img.naturalWidth > 0)", timeout=10_000)
    _no_sideways_scroll(member)
    case_url = member.url
    case_id = case_url.split("#")[0].split("?")[0].rstrip("/").split("/")[-1]
    member.goto(f"{server}/cases/{case_id}/print/file")
    _no_sideways_scroll(member)

    auditor = _phone(browser, server, "auditor")
    auditor.goto(f"{server}/cases/{case_id}")
    _no_sideways_scroll(auditor)
    bundle_holds_and_guards(auditor, f"{server}/cases/{case_id}/bundle.zip", tmp_path, [red, blue])
