"""Phone-first screens at 390 px in Debian's chromium: no page scrolls sideways for any role, lists are cards,
the menu is collapsed behind a button, phones are tap-to-call links and touch targets are at least 44 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import screenshots
from tests.conftest import PASSWORD, PASSWORD_HASH, dispatch, intake, latest_case, open_task
from tracker.models import User

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
#: GET pages with no id that answer something other than a page a person reads (files, JSON, the worker).
NOT_PAGES = ("/cases/export.csv", "/cases/export.xlsx", "/healthz", "/sw.js", "/manifest.webmanifest",
             "/map/nearest", "/residents/lookup", "/demo/clock")
ROLES = ("member_a", "leader_a", "auditor", "admin")


def walk_pages(app) -> list[str]:
    """Every page of the walk: the blueprints' GET routes that need no id (files and JSON left out)."""
    rules = [r for r in app.url_map.iter_rules() if "GET" in (r.methods or ()) and not r.arguments]
    return sorted({r.rule for r in rules if not r.rule.startswith(("/api/", "/open311/", "/static/"))
                   and r.rule not in NOT_PAGES and not r.rule.startswith("/public/")} | {"/public/"})


def _phone_page(browser, server: str, username: str):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=1)
    page = context.new_page()
    page.on("console", lambda message: "Content Security Policy" in message.text
            and browser.csp_refusals.append(f"{page.url}: {message.text}"))
    page.goto(f"{server}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_be_attached()
    return page


def _overflow(page) -> int:
    """Return how far the page scrolls sideways (0: not at all)."""
    return page.evaluate("() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")


@pytest.fixture
def walk(app, db, login):
    """A case waiting in member_a's handling, so lists, the board and the notifications have rows."""
    db.add(User(username="admin", display_name="管理员", phone="13900001111", password_hash=PASSWORD_HASH,
                is_admin=True))
    db.flush()
    member, leader = login("member_a"), login("leader_a")
    for _ in range(2):
        member.submit("/cases/new", intake(db, description="楼道灯不亮，" * 20))
    case = latest_case(db)
    dispatch(leader, db, case.id)
    return case.id, open_task(db, case.id).id


def test_no_page_of_the_walk_scrolls_sideways_at_390_px_for_any_role(app, server, browser, walk):
    case_id, task_id = walk
    pages = [*walk_pages(app), f"/cases/{case_id}", f"/tasks/{task_id}", f"/cases/{case_id}/history"]
    assert {"/", "/cases/", "/board", "/notifications/", "/cases/new", "/households"} <= set(pages)
    wide, visited = [], set()
    for username in ROLES:
        page = _phone_page(browser, server, username)
        for path in pages:
            kind = page.request.get(f"{server}{path}", max_redirects=5).headers.get("content-type", "")
            if not kind.startswith("text/html"):
                continue  # a file, an image or JSON: no page to scroll (the browser would show its own)
            page.goto(f"{server}{path}")
            visited.add(path)
            if (extra := _overflow(page)) > 0:
                wide.append(f"{username} {path}: {extra} px too wide")
                page.screenshot(path=str(screenshots() / f"wide-{username}-{path.strip('/').replace('/', '_')}.png"))
        page.context.close()
    assert wide == [], "\n".join(wide)
    assert {"/", "/cases/", "/board", "/notifications/", "/profile/messages", f"/tasks/{task_id}"} <= visited


def test_lists_are_cards_the_menu_folds_and_phones_are_tap_to_call(server, browser, walk, db):
    case_id, _ = walk
    leader = _phone_page(browser, server, "leader_a")
    nav = leader.locator("header nav")
    expect(nav).to_be_hidden()  # folded behind the menu button
    toggle = leader.locator("button.menu-toggle")
    box = toggle.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    toggle.click()
    expect(nav).to_be_visible()
    for link in nav.locator("a").all():
        assert link.bounding_box()["height"] >= 44, link.inner_text()
    leader.screenshot(path=str(screenshots() / "phone-menu-open.png"))

    for path, table in (("/", "table.list"), ("/cases/", "table.list"), ("/board", "table.board"),
                        ("/board", "#decisions table.list")):
        leader.goto(f"{server}{path}")
        row = leader.locator(f"{table} tbody tr:has(td[data-label])").first
        expect(row).to_be_visible()
        # A card: the row is a block, its cells stacked, each named by its column.
        assert row.evaluate("(r) => getComputedStyle(r).display") == "block"
        cell = row.locator("td[data-label]").first
        assert cell.evaluate("(c) => getComputedStyle(c).display") == "block"
        label = cell.evaluate("(c) => getComputedStyle(c, '::before').content")
        assert label.strip('"') == cell.get_attribute("data-label")
        leader.screenshot(path=str(screenshots() / f"phone-cards-{path.strip('/') or 'inbox'}.png"), full_page=True)

    leader.goto(f"{server}/cases/{case_id}")
    call = leader.locator("a[href^='tel:']").first
    expect(call).to_have_attribute("href", "tel:+8613812345678")
    assert call.bounding_box()["height"] >= 44
    for button in leader.locator("main button:visible, main input[type=submit]:visible").all():
        assert button.bounding_box()["height"] >= 44, button.inner_text()


def test_desktop_stays_a_dense_table(server, browser, walk):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/login")
    page.fill("input[name=username]", "leader_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{server}/cases/")
    expect(page.locator("header nav")).to_be_visible()
    expect(page.locator("button.menu-toggle")).to_be_hidden()
    row = page.locator("table.list tbody tr").first
    assert row.evaluate("(r) => getComputedStyle(r).display") == "table-row"
    assert row.bounding_box()["height"] < 80  # one line per case, not a card
    context.close()


def test_staff_phones_are_tap_to_call_too(server, browser, walk, db):
    # The board lists the grid's people; a member with a phone is called with one tap.
    db.execute(User.__table__.update().where(User.username == "member_a").values(phone="+8613700001234"))
    leader = _phone_page(browser, server, "leader_a")
    leader.goto(f"{server}/board")
    expect(leader.locator("a[href='tel:+8613700001234']")).to_be_visible()
    assert db.scalar(select(User.phone).where(User.username == "member_a")) == "+8613700001234"

