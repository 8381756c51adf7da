"""Offline capture in Debian's chromium at 390 px: the app installs (manifest, service worker), a case and a
visit recorded without a network wait on the phone as 待发送, and arrive once when the network returns; a
visit reassigned meanwhile is shown to the member as not sent, and kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.conftest import screenshots
from tests.conftest import PASSWORD, building_id, configured_app, user_id
from tests.web.test_attachments import photo
from tests.web.test_offline_records import _households, _visit_of
from tracker import jobs
from tracker.models import Attachment, Case, DiaryNote, Visit

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def app(database_url, tmp_path) -> Iterator[Flask]:
    """The app with its photo store in the test's own folder."""
    with configured_app(database_url, media={"store": str(tmp_path / "media")}) as app:
        yield app


def _phone(browser, server: str):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    page.goto(f"{server}/login")
    page.fill("input[name=username]", "member_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_attached()
    return context, page


def test_the_app_installs_with_its_manifest_and_a_root_scoped_worker(server, browser):
    context, page = _phone(browser, server)
    manifest = page.evaluate("() => fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())")
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert {icon["sizes"] for icon in manifest["icons"]} >= {"192x192", "512x512"}
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{server}/"
    answer = page.request.get(f"{server}/sw.js")
    assert answer.headers["service-worker-allowed"] == "/" and answer.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    context.close()


def test_a_case_and_a_visit_recorded_offline_arrive_once_and_a_conflict_is_kept(app, server, browser, login, db):
    _households(login, db, ["王奶奶", "李大爷"])
    assert jobs.start_visits(app) == 2
    ours, taken = _visit_of(db, "王奶奶"), _visit_of(db, "李大爷")

    context, page = _phone(browser, server)
    page.evaluate("() => navigator.serviceWorker.ready")
    page.reload()  # now controlled by the worker: the inbox fetches today's visit pages and the intake form
    expect(page.locator(f"main a[href='/visits/{ours.id}']")).to_be_visible()
    page.wait_for_function("""async (paths) => {
        const cache = await caches.open('pages-gridloop-v1');
        return (await Promise.all(paths.map(p => cache.match(p)))).every(Boolean);
    }""", arg=["/cases/new", f"/visits/{ours.id}", f"/visits/{taken.id}"])

    context.set_offline(True)
    page.goto(f"{server}/cases/new")  # from the worker's cache
    page.fill("input[name=resident_name]", "赵大爷")
    page.fill("input[name=resident_phone]", "13912345678")
    page.select_option("select[name=building_id]", str(building_id(db)))
    page.select_option("select[name=category]", "property_repair")
    page.select_option("select[name=channel]", "visit")
    page.fill("textarea[name=description]", "地下室漏水，离线登记")
    page.locator("input[type=file][name=photos]").set_input_files(
        [{"name": "IMG_9.jpg", "mimeType": "image/jpeg", "buffer": photo("blue")}])  # kept in IndexedDB too
    page.click("button.primary")
    expect(page.locator("#outbox li")).to_have_count(1)
    expect(page.locator("#outbox")).to_contain_text("待发送")

    for waiting, (visit, note) in enumerate(((ours, "离线走访：精神好"), (taken, "离线走访：已换人")), start=2):
        page.goto(f"{server}/visits/{visit.id}")
        page.fill("textarea[name=note]", note)
        page.click("button.primary")
        expect(page.locator("#outbox li")).to_have_count(waiting)  # kept before the member moves on
    page.screenshot(path=str(screenshots() / "offline-waiting.png"), full_page=True)
    assert db.scalar(select(func.count()).select_from(Case)) == 0  # nothing reached the server yet

    # Meanwhile the leader gives 李大爷's visit to another member: the phone's record of it is now stale.
    db.execute(Visit.__table__.update().where(Visit.id == taken.id)
               .values(member_id=user_id(db, "member_a2"), version=Visit.version + 1))

    context.set_offline(False)  # the network returns: the records go out by themselves
    expect(page.locator("#outbox li")).to_have_count(1, timeout=20_000)
    left = page.locator("#outbox li")
    expect(left).to_have_class("conflict")
    expect(left).to_contain_text("李大爷")
    expect(left.locator(".error")).to_contain_text("已被他人修改")  # the server's words, in Chinese
    page.screenshot(path=str(screenshots() / "offline-after-sending.png"), full_page=True)

    db.expire_all()
    [case] = db.scalars(select(Case)).all()
    assert (case.resident_name, case.description, case.channel) == ("赵大爷", "地下室漏水，离线登记", "visit")
    [attachment] = db.scalars(select(Attachment)).all()
    assert attachment.case_id == case.id and attachment.sha256 == hashlib.sha256(photo("blue")).hexdigest()
    ours = _visit_of(db, "王奶奶")
    assert ours.status == "done" and ours.record_key
    assert db.scalars(select(DiaryNote.text)).all() == ["离线走访：精神好"]
    assert _visit_of(db, "李大爷").status == "open"

    # Sending the kept records again (a flaky network's retry) makes no second case or visit: same keys.
    page.reload()
    page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open('gridloop', 1);
        open.onsuccess = () => { const tx = open.result.transaction('outbox', 'readonly');
          const all = tx.objectStore('outbox').getAll(); all.onsuccess = () => resolve(all.result.length); };
    })""")
    page.get_by_role("button", name="重新发送").click()
    expect(page.locator("#outbox li.conflict")).to_have_count(1)
    assert db.scalar(select(func.count()).select_from(Case)) == 1
    context.close()


def test_a_record_whose_send_fails_on_a_bad_network_is_kept_and_sent_once_later(app, server, browser, login, db):
    """The phone thinks it is online (a basement with one bar), the form goes out and the network fails: the
    worker keeps the record under the form's own one-time key, and it arrives once when the network is back."""
    context, page = _phone(browser, server)
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'onLine', {get: () => true})")
    page.evaluate("() => navigator.serviceWorker.ready")
    page.reload()
    page.goto(f"{server}/cases/new")  # controlled by the worker, cached as it passes
    page.fill("input[name=resident_name]", "钱阿姨")
    page.fill("input[name=resident_phone]", "13912345678")
    page.select_option("select[name=building_id]", str(building_id(db)))
    page.select_option("select[name=category]", "property_repair")
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=description]", "信号差时登记")
    form_key = page.locator("input[name=intake_key]").input_value()
    context.set_offline(True)
    page.click("button.primary")
    expect(page.locator("#outbox li")).to_have_count(1)
    assert page.locator("#outbox li").get_attribute("data-key") == form_key
    assert db.scalar(select(func.count()).select_from(Case)) == 0

    context.set_offline(False)
    page.reload()  # any page load with a network sends what waits
    expect(page.locator("#outbox li")).to_have_count(0, timeout=20_000)
    expect(page.locator("#outbox .sent")).to_contain_text("钱阿姨")
    db.expire_all()
    assert db.scalars(select(Case.description)).all() == ["信号差时登记"]
    context.close()


def test_records_wait_for_the_person_who_made_them_on_a_shared_phone(app, server, browser, db):
    """member_a's record is still waiting when member_a2 logs in on the same phone: counted, not shown, not sent."""
    context, page = _phone(browser, server)  # member_a
    page.evaluate("() => navigator.serviceWorker.ready")
    page.evaluate("""(building) => new Promise((resolve, reject) => {
        const open = indexedDB.open('gridloop', 1);
        open.onupgradeneeded = () => open.result.createObjectStore('outbox', {keyPath: 'key'});
        open.onsuccess = () => {
          const tx = open.result.transaction('outbox', 'readwrite');
          tx.objectStore('outbox').put({key: 'shared-phone-0001', kind: 'case', url: '/cases/new', user: 'member_a',
            fields: [['resident_name', '孙奶奶'], ['resident_phone', '13912345678'], ['building_id', building],
                     ['category', 'property_repair'], ['channel', 'phone'], ['description', '共用手机上的记录'],
                     ['urgency', 'normal'], ['green_channel', ''], ['disposition', 'dispatch'], ['reply', '']],
            summary: '孙奶奶 · 共用手机上的记录', created: new Date().toISOString(), state: 'conflict',
            message: 'HTTP 500'});
          tx.oncomplete = () => resolve(); tx.onerror = () => reject(tx.error);
        };
    })""", str(building_id(db)))
    page.locator("header form[action='/logout'] button").click(force=True)
    page.fill("input[name=username]", "member_a2")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#outbox .others")).to_contain_text("1")
    expect(page.locator("#outbox")).not_to_contain_text("孙奶奶")  # another person's record: not shown
    expect(page.locator("#outbox li")).to_have_count(0)

    page.locator("header form[action='/logout'] button").click(force=True)  # member_a is back: it is theirs
    page.fill("input[name=username]", "member_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#outbox li")).to_contain_text("孙奶奶")
    page.get_by_role("button", name="重新发送").click()
    expect(page.locator("#outbox li")).to_have_count(0)
    db.expire_all()
    assert db.scalars(select(Case.description)).all() == ["共用手机上的记录"]
    context.close()


def test_a_busy_server_leaves_the_record_waiting_for_the_next_try(app, server, browser, db):
    context, page = _phone(browser, server)
    page.evaluate("() => navigator.serviceWorker.ready")
    page.goto(f"{server}/cases/new")
    context.set_offline(True)
    page.fill("input[name=resident_name]", "周大爷")
    page.fill("input[name=resident_phone]", "13912345678")
    page.select_option("select[name=building_id]", str(building_id(db)))
    page.select_option("select[name=category]", "property_repair")
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=description]", "服务器忙时的记录")
    page.click("button.primary")
    expect(page.locator("#outbox li")).to_have_count(1)
    busy = []

    def answer_busy(route):
        if route.request.method == "POST":
            busy.append(route.request.url)
            return route.fulfill(status=503, body="busy")
        return route.continue_()

    page.route("**/cases/new", answer_busy)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/cases/new")) as answer:
        context.set_offline(False)  # the network returns; the server answers 503 (a restart, say)
    assert answer.value.status == 503 and len(busy) == 1
    # Once the attempt is over the record is waiting again (a refusal would read 未发送), and nothing was saved.
    expect(page.locator("#outbox li .badge")).to_have_text("待发送")
    expect(page.locator("#outbox li.waiting")).to_have_count(1)
    assert db.scalar(select(func.count()).select_from(Case)) == 0
    page.unroute("**/cases/new")
    page.get_by_role("button", name="立即发送").click()
    expect(page.locator("#outbox li")).to_have_count(0)
    db.expire_all()
    assert db.scalars(select(Case.description)).all() == ["服务器忙时的记录"]
    context.close()
