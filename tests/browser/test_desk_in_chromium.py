"""At the desk in Debian's chromium: find a resident by phone, the duplicate warning at intake, linking."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login_as, screenshots
from tests.conftest import building_id, latest_case

pytestmark = pytest.mark.browser


def _fill_intake(page: Page, db, phone: str, description: str) -> None:
    page.fill("input[name=resident_name]", "李奶奶")
    page.fill("input[name=resident_phone]", phone)
    page.select_option("select[name=building_id]", str(building_id(db)))
    page.select_option("select[name=category]", "property_repair")
    page.select_option("select[name=channel]", "phone")
    page.fill("textarea[name=description]", description)


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


def test_search_by_phone_duplicate_warning_and_linking_in_a_browser(server, browser, db):
    member = login_as(browser, server, "member_a")
    member.set_viewport_size({"width": 390, "height": 844})
    member.goto(f"{server}/cases/new")
    _fill_intake(member, db, "13912345678", "3单元楼道的灯坏了，晚上不亮")
    member.click("button.primary")
    expect(member.locator(".flash")).to_contain_text("已登记")
    main = latest_case(db)

    # Typing the phone (another written form) at intake shows the resident's open case.
    member.goto(f"{server}/cases/new")
    _no_sideways_scroll(member)
    _fill_intake(member, db, "139 1234 5678", "楼道灯不亮")
    lookup = member.locator("#resident-lookup")
    expect(lookup).to_be_visible()
    expect(lookup).to_contain_text(main.number)
    expect(lookup).to_contain_text("该居民未办结及近期的诉求")

    # Saving warns first: the same phone and similar text; nothing is recorded until confirmed.
    member.click("button.primary")
    warning = member.locator("#duplicate-warning")
    expect(warning).to_contain_text("可能是重复件")
    expect(warning).to_contain_text(main.number)
    expect(warning).to_contain_text("同一电话")
    _no_sideways_scroll(member)
    assert latest_case(db).id == main.id
    expect(member.locator("textarea[name=description]")).to_have_value("楼道灯不亮")
    member.click("#save-anyway")
    expect(member.locator(".flash")).to_contain_text("已登记")
    duplicate = latest_case(db)
    assert duplicate.id != main.id
    member.screenshot(path=str(screenshots() / "desk-recorded-anyway.png"), full_page=True)

    # Find the resident from the case page, and by searching a written form.
    member.click("#resident-cases")
    expect(member.locator("#resident-summary")).to_contain_text("139 1234 5678")
    rows = member.locator("table.list tbody td:first-child a")  # the case numbers (phones are tel: links)
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_text(duplicate.number)  # newest first
    member.goto(f"{server}/residents")
    member.fill("#phone", "+86 139-1234-5678")
    member.click("button.primary")
    expect(member.locator("table.list")).to_contain_text(main.number)
    _no_sideways_scroll(member)

    # The leader links the new case to the main one; both pages show it.
    leader = login_as(browser, server, "leader_a")
    leader.goto(f"{server}/cases/{duplicate.id}")
    leader.fill("input[name=main_number]", main.number)
    leader.click("#link")
    expect(leader.locator(".flash")).to_contain_text("已关联为重复件")
    expect(leader.locator("#main-case")).to_have_text(main.number)
    expect(leader.locator("ol.timeline")).to_contain_text("关联为重复件")
    leader.goto(f"{server}/cases/{main.id}")
    expect(leader.locator("#duplicates")).to_contain_text(duplicate.number)
    expect(leader.locator("ol.timeline")).to_contain_text("有重复件关联到本件")
    leader.screenshot(path=str(screenshots() / "desk-main-case-with-duplicate.png"), full_page=True)

    # Unlinking gives the case its own dispatch task back.
    leader.goto(f"{server}/cases/{duplicate.id}")
    leader.click("#unlink")
    expect(leader.locator(".flash")).to_contain_text("已解除关联")
    expect(leader.get_by_role("link", name="派单/转办")).to_be_visible()
